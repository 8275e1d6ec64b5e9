/**
 * One heartbeat per tick for the whole fleet.
 *
 * Ticks fall on wall-clock multiples of HEARTBEAT_INTERVAL_MS, so every replica
 * (either colour, same Redis) wakes for the same tick. Each one tries
 *   SET <prefix>heartbeat:<tick index> <replica id> NX PX <ttl>
 * and the single winner publishes ONE message to the fleet through the socket.io
 * adapter, then writes it to its own sockets; every other replica writes what it
 * receives to its sockets. A replica can die at any moment: the next tick is
 * simply won by another.
 *
 * Requires clocks within a fraction of the interval of each other (NTP).
 *
 * The channel also carries probes (shared/protocol/messages.ts, HeartbeatProbe): a heartbeat
 * addressed to one session, which tools/promote.sh's smoke test publishes to see a
 * new colour receive the fleet's heartbeat path within milliseconds, not at the next tick.
 *
 * The fan-out to local sockets is written in slices (sliced-walk.ts), yielding to I/O
 * between two of them, so messages, their counts, probes and handshakes go on during a
 * tick instead of waiting for its last write. What a tick guarantees, sliced:
 * - it goes to the sessions open when it came (the registry's snapshot): a socket that
 *   joins during the fan-out gets the next tick, not this one; a socket that closes
 *   during it is skipped (a closed session writes nothing);
 * - each socket gets it once, serialised once and encoded once per transport for the
 *   whole fan-out (one HeartbeatPacket shared by every slice);
 * - in order with the socket's counts: a count and a heartbeat are each written to the
 *   socket when they are made, so the client reads them in the order the replica wrote
 *   them (a count answered between two slices comes before the tick on the sockets of
 *   later slices, after it on those of earlier ones);
 * - ticks do not overlap: a tick that comes while the previous one is still being
 *   written first finishes the previous one, at once, then starts its own, so every
 *   socket gets tick n before tick n+1 and none misses either.
 */
import type { Config } from './config.js';
import { errorFields, sessionTag, type Logger } from './logger.js';
import type { Metrics, Transport } from './metrics.js';
import { isValidSessionId } from '../../shared/protocol/session-id.js';
import { type FleetHeartbeat, type HeartbeatMessage } from '../../shared/protocol/messages.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { FleetChannel } from './fleet-channel.js';
import { HeartbeatPacket } from './heartbeat-packet.js';
import type { SessionConnection } from './session-connection.js';
import { FAN_OUT_SLICE, SlicedWalk, type SlicePolicy } from './sliced-walk.js';

/**
 * The two Redis facts an election needs: SET NX PX and whether the connection is
 * ready. A RedisClient is one as it is; the unit tier passes a fake that answers by hand.
 */
export interface ElectionRedis {
  readonly status: string;
  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null>;
}

/**
 * Wall-clock time and one-shot timers. Production uses Date.now and setTimeout; the
 * unit tier passes a clock it moves by hand, so tick alignment, timers that fire
 * early or late, and stop/start are tested without waiting for real ticks.
 */
export interface HeartbeatClock {
  now(): number;
  /** Runs `run` once after `delayMs`; the function returned cancels it. */
  schedule(run: () => void, delayMs: number): () => void;
}

export const systemClock: HeartbeatClock = {
  now: () => Date.now(),
  schedule(run, delayMs) {
    const timer = setTimeout(run, delayMs);
    return () => clearTimeout(timer);
  },
};

export interface HeartbeatDeps {
  config: Config;
  redis: ElectionRedis;
  fleet: FleetChannel;
  registry: ConnectionRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Also run on every tick, winner or not, before its election. */
  onTick?: () => void;
  /** Defaults to the system clock. */
  clock?: HeartbeatClock;
  /** How the fan-out and probes are sliced; FAN_OUT_SLICE unless a test drives the slices. */
  slices?: SlicePolicy;
}

/**
 * A lock outlives its tick by far, so a replica whose timer fires very late
 * (a blocked event loop) cannot win the same tick again.
 */
const MIN_LOCK_TTL_MS = 10_000;
const LOCK_TTL_TICKS = 10;

const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export class Heartbeat {
  /** Cancels the timer of the next tick; undefined while stopped. */
  private cancelTimer: (() => void) | undefined;
  private lastTick = 0;
  private readonly lockTtlMs: number;
  private readonly clock: HeartbeatClock;
  private readonly slices: SlicePolicy;
  /** The last tick's fan-out, until its last slice is written. */
  private fanOut: SlicedWalk<SessionConnection> | undefined;

  constructor(private readonly deps: HeartbeatDeps) {
    this.clock = deps.clock ?? systemClock;
    this.slices = deps.slices ?? FAN_OUT_SLICE;
    this.lockTtlMs = Math.max(MIN_LOCK_TTL_MS, deps.config.heartbeatIntervalMs * LOCK_TTL_TICKS);
    deps.fleet.subscribe((message) => this.received(message));
  }

  start(): void {
    if (this.cancelTimer === undefined) this.scheduleNext();
  }

  stop(): void {
    this.cancelTimer?.();
    this.cancelTimer = undefined;
  }

  private scheduleNext(): void {
    const interval = this.deps.config.heartbeatIntervalMs;
    const now = this.clock.now();
    // A timer may fire a little early on the wall clock; never run the same tick twice.
    const next = Math.max(Math.floor(now / interval) * interval + interval, this.lastTick + interval);
    this.cancelTimer = this.clock.schedule(() => this.tick(next), next - now);
  }

  private tick(tickTime: number): void {
    this.lastTick = tickTime;
    this.scheduleNext();
    this.deps.onTick?.();
    void this.elect(tickTime);
  }

  private async elect(tickTime: number): Promise<void> {
    const { config, redis, metrics, logger } = this.deps;
    const tickIndex = tickTime / config.heartbeatIntervalMs;
    let won: boolean;
    try {
      const key = `${config.redisKeyPrefix}heartbeat:${tickIndex}`;
      won = (await redis.set(key, config.replicaId, 'PX', this.lockTtlMs, 'NX')) === 'OK';
    } catch (error) {
      // Nobody can win without Redis: this tick is skipped by the whole fleet.
      metrics.error('heartbeat_election');
      logger.warn('heartbeat election failed', { event: 'heartbeat_skipped', tick: tickIndex, ...errorFields(error) });
      return;
    }
    if (!won) return;
    const message: HeartbeatMessage = { ts: new Date(tickTime).toISOString() };
    // A PUBLISH that fails cannot become an unhandled rejection: the gateway hands the
    // adapter a client that catches it and counts an adapter_error (publishFailuresHandled,
    // socketio-gateway.ts). This check keeps a stale tick off the fleet: on a connection
    // that is not ready, ioredis holds the PUBLISH in its offline queue and sends it
    // whenever the connection is back, late, or fails it after its retries. The tick is
    // skipped instead (on this replica's sockets too, as on every other) and counted as
    // heartbeat_publish.
    if (redis.status !== 'ready') {
      metrics.error('heartbeat_publish');
      logger.warn('heartbeat won but redis not ready; not published', { event: 'heartbeat_skipped', tick: tickIndex });
      return;
    }
    this.deps.fleet.publish(message);
    metrics.heartbeatsPublished.inc();
    logger.info('heartbeat won', { event: 'heartbeat_won', tick: tickIndex, ts: message.ts });
    this.deliver(message);
  }

  private received(message: FleetHeartbeat): void {
    if (typeof message?.ts !== 'string' || !ISO_TIMESTAMP.test(message.ts)) {
      this.deps.metrics.error('heartbeat_malformed');
      return;
    }
    if ('probe' in message) this.probed(message.ts, message.probe);
    else this.deliver({ ts: message.ts });
  }

  /** A probe: the heartbeat goes to the sockets of one session only, and is not a tick. */
  private probed(ts: string, session: unknown): void {
    const { registry, metrics, logger } = this.deps;
    if (!isValidSessionId(session)) {
      metrics.error('heartbeat_malformed');
      return;
    }
    const packet = new HeartbeatPacket(ts);
    let sockets = 0;
    const visit = (connection: SessionConnection): void => {
      if (connection.sessionId !== session || connection.status.state === 'gone') return;
      connection.sendHeartbeat(packet);
      sockets += 1;
    };
    const done = (): void => {
      if (sockets > 0) logger.info('heartbeat probe delivered', { event: 'heartbeat_probe', session: sessionTag(session), sockets, ts });
    };
    new SlicedWalk(registry.snapshot(), visit, this.slices, done).start();
  }

  /**
   * Writes the heartbeat to every local socket open now, serialised once and encoded once
   * per transport, in slices; the tick's fan-out time is observed after its last slice.
   */
  private deliver(message: HeartbeatMessage): void {
    const { registry, metrics } = this.deps;
    // Ticks never overlap on a socket: the previous one is written to its end first.
    this.fanOut?.finish();
    const packet = new HeartbeatPacket(message.ts);
    const delivered: Record<Transport, number> = { plain: 0, socketio: 0 };
    const visit = (connection: SessionConnection): void => {
      if (connection.status.state === 'gone') return;
      connection.sendHeartbeat(packet);
      delivered[connection.transport] += 1;
    };
    const done = (): void => {
      metrics.heartbeatTicksDelivered.inc();
      metrics.heartbeatFanOut.observe((this.clock.now() - Date.parse(message.ts)) / 1000);
      for (const [transport, count] of Object.entries(delivered)) {
        metrics.heartbeatsDelivered.inc({ transport }, count);
      }
    };
    const fanOut = new SlicedWalk(registry.snapshot(), visit, this.slices, () => {
      if (this.fanOut === fanOut) this.fanOut = undefined;
      done();
    });
    this.fanOut = fanOut;
    fanOut.start();
  }
}
