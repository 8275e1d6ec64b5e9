/**
 * The plain endpoint's liveness sweep. A peer that vanished without a FIN (a closed
 * laptop, a NAT that forgot the flow) would hold its socket forever; every interval,
 * sockets that did not answer the previous ping are dropped and the others are pinged.
 *
 * A sweep is spread over the middle quarter of the interval, half-way between two
 * wall-clock multiples of it, in SWEEP_SLICES slices of the registry in its order.
 * Half-way: the interval is HEARTBEAT_INTERVAL_MS, whose ticks fall on those
 * multiples, and a sweep near a tick would hold the tick's fan-out behind a ping to
 * every socket. Spread: every replica sweeps at the same wall-clock phase, so a
 * sweep at one instant would be a ping and a pong for every socket of the fleet at
 * once through Nginx, a burst that can hold Nginx's workers past
 * proxy_connect_timeout and fail handshakes with 504 (docs/benchmarks.md).
 *
 * A socket keeps its place in the registry's order, so it is checked about one
 * interval after its ping; its slice can move up to a quarter interval sooner (when
 * sockets before it closed, or the registry grew, meanwhile), and a peer whose ping
 * is younger than the interval is left to the next sweep. So a peer is dropped only
 * once a ping has gone a whole interval unanswered, at most two intervals after it.
 */
import type { ConnectionRegistry } from './connection-registry.js';
import type { Metrics } from './metrics.js';
import type { SessionConnection } from './session-connection.js';
import { FAN_OUT_SLICE, pauseFor, SlicedWalk } from './sliced-walk.js';

/** The liveness clock wraps here, so a ping's instant stays a small integer that V8 keeps in the socket object itself. */
const LIVENESS_CLOCK_WRAP = 2 ** 30;

/** Milliseconds on a monotonic clock that wraps every 2^30 ms (12 days): when a socket was pinged. */
export function livenessClock(): number {
  return Math.floor(performance.now()) % LIVENESS_CLOCK_WRAP;
}

/** Milliseconds from `then` to `now` on the liveness clock (right for spans under 12 days). */
export function elapsedSince(then: number, now: number): number {
  return (now - then + LIVENESS_CLOCK_WRAP) % LIVENESS_CLOCK_WRAP;
}

/** Slices of the registry one sweep visits, one after the other. */
const SWEEP_SLICES = 32;
/** The share of the interval a sweep's slices span. */
const SWEEP_SPAN = 1 / 4;

/** A socket the sweep checks: the plain endpoint's ChatWebSocket. */
export interface LivenessPeer {
  /** Paused for backpressure: the server is not reading it. */
  readonly isPaused: boolean;
  /** Forgets the ping it owes: its silence while paused is the server's. */
  excuseSilence(): void;
  /** Pings a peer that answered since its last ping; false once a ping is `patienceMs` old unanswered. */
  answersPings(now: number, patienceMs: number): boolean;
  terminate(): void;
}

export interface LivenessSweepDeps {
  registry: ConnectionRegistry;
  metrics: Pick<Metrics, 'error'>;
  /** Liveness period: each socket is pinged once per period, and dropped once a ping is a period old unanswered. */
  intervalMs: number;
  /** The socket a session answers pings on; undefined for a transport that runs its own (socket.io). */
  peerOf: (connection: SessionConnection) => LivenessPeer | undefined;
}

export class LivenessSweep {
  private timer: NodeJS.Timeout | undefined;
  /** The running sweep's walk of the registry, until its last slice; stop() ends it. */
  private walk: SlicedWalk<SessionConnection> | undefined;
  /** The wall-clock instant the last sweep was scheduled for. */
  private lastSweep = 0;

  constructor(private readonly deps: LivenessSweepDeps) {}

  start(): void {
    if (this.timer === undefined) this.schedule();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.walk?.cancel();
    this.walk = undefined;
  }

  private schedule(): void {
    const interval = this.deps.intervalMs;
    const phase = interval / 2 - (interval * SWEEP_SPAN) / 2;
    const now = Date.now();
    // A timer may fire a little early on the wall clock: never sweep twice within an
    // interval, or the second would drop every socket whose pong is still on its way.
    const aligned = Math.floor((now - phase) / interval) * interval + interval + phase;
    const next = Math.max(aligned, this.lastSweep + interval);
    this.timer = setTimeout(() => {
      this.lastSweep = next;
      this.sweep();
      this.schedule();
    }, next - now);
  }

  /**
   * Starts a walk of the registry's sessions (a live one: a socket that came since the
   * last sweep is pinged in this one). The walk's slices are a share of the registry
   * each, a fixed gap apart (sliced-walk.ts, pauseFor), so the sweep spans its share of
   * the interval; within a slice, the fan-out's time budget yields to I/O, so a slice
   * of a large registry holds the loop no longer than a slice of a tick does.
   */
  private sweep(): void {
    // A walk still running (its slices late on an overloaded event loop) is finished
    // first: cut short, it would leave the sockets at its end unchecked, sweep after sweep.
    this.walk?.finish();
    const { registry, intervalMs } = this.deps;
    const maxItems = Math.max(1, Math.ceil(registry.size / SWEEP_SLICES));
    const sliceGapMs = (intervalMs * SWEEP_SPAN) / SWEEP_SLICES;
    const walk = new SlicedWalk(registry.walk(), (connection) => this.visit(connection), {
      maxItems,
      budgetMs: FAN_OUT_SLICE.budgetMs,
      yielder: pauseFor(sliceGapMs),
    }, () => {
      if (this.walk === walk) this.walk = undefined;
    });
    this.walk = walk;
    walk.start();
  }

  private visit(connection: SessionConnection): void {
    const peer = this.deps.peerOf(connection);
    if (peer !== undefined) this.check(peer);
  }

  private check(peer: LivenessPeer): void {
    // A socket paused for backpressure cannot have read its pong: its silence is ours.
    if (peer.isPaused) return peer.excuseSilence();
    if (peer.answersPings(livenessClock(), this.deps.intervalMs)) return;
    this.deps.metrics.error('peer_unresponsive');
    peer.terminate();
  }
}
