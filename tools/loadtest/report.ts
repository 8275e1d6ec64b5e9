/**
 * One load-test run's report (tools/loadtest.ts): its shape, the server figures
 * derived from two samples, and its Markdown.
 */
import type { FanOutHistogram, ServerSample } from './protocol.js';
import type { ProcessesCpu } from './proc-cpu.js';

export interface LoadTestOptions {
  url: string;
  sockets: number;
  socketIoShare: number;
  ramp: number;
  handshakes: number;
  rate: number;
  messages: number;
  durationS: number;
  heartbeatMs: number;
  workers: number;
  metricsUrls: string[];
  reportDir: string;
  reference: boolean;
  /** fair: the reference server with one INCR per message and the heartbeat; bare: neither. */
  ceiling: 'fair' | 'bare';
  /** The Redis the product uses (the fair ceiling increments in it, and its CPU is read from it). */
  redisUrl: string | undefined;
  /** With --reference: product/ceiling pairs, run alternately. */
  repeat: number;
  /** Every socket names its own session and resumes from last=0: the leased (exactly-once) path. */
  resume: boolean;
  /** With --reference: the ceiling as a fleet on the idle colour's ports behind the stack's own Nginx (nginx-comparison.ts). */
  behindNginx: boolean;
  /**
   * The think time (ms) of the latency probe: one more plain socket in a process of its
   * own, a closed loop that pauses this long after each count; undefined: no probe.
   */
  probeMs: number | undefined;
}

export interface Latency {
  count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** A latency's tail, for the probe's round trips. */
export interface Tail {
  count: number;
  p50_ms: number;
  p99_ms: number;
  p999_ms: number;
  max_ms: number;
}

/**
 * The latency probe's round trips over the hold window, split by whether they were in
 * flight during a tick: sent before the tick's last socket read it (the latest of every
 * worker's reading, the probe's included) and answered after the tick's instant.
 */
export interface ProbeFigures {
  think_ms: number;
  held: boolean;
  ticks: number;
  round_trips_per_second: number;
  during_ticks: Tail;
  between_ticks: Tail;
}

/** A server's own heartbeat fan-out over the hold window: tick instant to its last socket write. */
export interface OwnFanOut {
  /** Ticks delivered (summed over processes: a replica delivers each tick once). */
  ticks: number;
  mean_ms: number;
  /** The bucket bound at or under which half (99%) of the ticks fell; null above the last bound. */
  p50_le_ms: number | null;
  p99_le_ms: number | null;
}

export interface ServerFigures {
  /** Server processes measured: the replicas, or 1 for the reference server. */
  replicas: number;
  rss_per_connection_kib: number;
  /** CPU of every server process over the hold window. */
  cpu_seconds: number;
  /**
   * Window CPU over the window's round trips; null unless round trips are at least half
   * the frames (a heartbeat scenario's CPU is its fan-out's: read cpu_us_per_frame).
   */
  cpu_us_per_message: number | null;
  /** Window CPU over every frame the generator received in the window (counts, heartbeats, pings). */
  cpu_us_per_frame: number | null;
  connections_at_hold: number;
  own_fan_out: OwnFanOut | null;
  /** The worst replica's event-loop delay over the hold window (ms), when its /metrics report it. */
  event_loop_lag_ms: { p50: number; p99: number; max: number } | null;
}

/** Nginx's workers (children of its master) over the hold window. */
export interface NginxFigures {
  workers: number;
  cpu_seconds: number;
  /** Window CPU over every frame the generator received: each crossed Nginx once, and its answer or pong once back. */
  cpu_us_per_frame: number | null;
}

/** What the load generator itself spent over the hold window (its worker processes). */
export interface GeneratorFigures {
  workers: number;
  cpu_seconds: number;
  round_trips: number;
  frames: number;
  heartbeat_frames: number;
  /** WebSocket pings among the frames (each answered with a pong by ws): the product's liveness sweep. */
  pings: number;
  cpu_us_per_frame: number | null;
  cpu_us_per_round_trip: number | null;
}

export interface Report {
  date: string;
  ok: boolean;
  /** product, or the ceiling it is compared with. */
  target: 'product' | 'ceiling';
  options: LoadTestOptions;
  sockets: { requested: number; held: number };
  connect: { seconds: number; per_second: number; handshake: Latency };
  messages: { total: number; round_trips_per_second: number; round_trip: Latency };
  heartbeat: {
    ticks_checked: number;
    missed: number;
    duplicated: number;
    fan_out: Latency;
    /** Per tick checked: ms from the tick to the last socket reading it (all workers), the time to read one heartbeat. */
    tick_to_last_socket_ms: number[];
  };
  errors: Record<string, number>;
  closes: Record<string, number>;
  server: ServerFigures | string;
  /** Redis's own CPU over the hold window per round trip (null as for the server), when its URL is known. */
  redis: { cpu_us_per_message: number | null } | null;
  /** Nginx's workers over the hold window (from /proc), when the run went through the stack's Nginx and knew its pid. */
  nginx: NginxFigures | null;
  load_generator: GeneratorFigures;
  /** With --probe. */
  latency_probe: ProbeFigures | null;
}

const round = (value: number, digits = 1): number => Math.round(value * 10 ** digits) / 10 ** digits;

/** µs of `seconds` per one of `count` (null when there are none). */
export function microsPer(seconds: number, count: number): number | null {
  return count > 0 ? round((seconds * 1e6) / count, 2) : null;
}

/** The later histogram minus the earlier: what was recorded in between. */
function fanOutBetween(from: FanOutHistogram, to: FanOutHistogram): FanOutHistogram {
  return {
    count: to.count - from.count,
    sum: to.sum - from.sum,
    buckets: to.buckets.map(({ le, count }) => ({ le, count: count - (from.buckets.find((b) => b.le === le)?.count ?? 0) })),
  };
}

function ownFanOut(from: FanOutHistogram | undefined, to: FanOutHistogram | undefined): OwnFanOut | null {
  if (from === undefined || to === undefined) return null;
  const window = fanOutBetween(from, to);
  if (window.count <= 0) return null;
  const bound = (quantile: number): number | null => {
    const bucket = [...window.buckets].sort((a, b) => a.le - b.le).find(({ count }) => count >= quantile * window.count);
    return bucket === undefined || !Number.isFinite(bucket.le) ? null : bucket.le * 1000;
  };
  return { ticks: window.count, mean_ms: round((window.sum / window.count) * 1000, 2), p50_le_ms: bound(0.5), p99_le_ms: bound(0.99) };
}

/** The server's figures from its samples before the run, at hold and at stop. */
export function serverFigures(
  samples: { before: ServerSample; held: ServerSample; stopped: ServerSample },
  window: { roundTrips: number; frames: number },
): ServerFigures {
  const { before, held, stopped } = samples;
  const cpuSeconds = stopped.cpuSeconds - held.cpuSeconds;
  return {
    replicas: held.processes,
    rss_per_connection_kib: round((held.rssBytes - before.rssBytes) / Math.max(1, held.connections) / 1024),
    cpu_seconds: round(cpuSeconds, 2),
    cpu_us_per_message: window.roundTrips * 2 >= window.frames ? microsPer(cpuSeconds, window.roundTrips) : null,
    cpu_us_per_frame: microsPer(cpuSeconds, window.frames),
    connections_at_hold: held.connections,
    own_fan_out: ownFanOut(held.fanOut, stopped.fanOut),
    event_loop_lag_ms:
      stopped.eventLoopLag === undefined
        ? null
        : { p50: round(stopped.eventLoopLag.p50 * 1000, 2), p99: round(stopped.eventLoopLag.p99 * 1000, 2), max: round(stopped.eventLoopLag.max * 1000, 2) },
  };
}

const ms = (h: Latency): string => `p50 ${h.p50_ms} / p95 ${h.p95_ms} / p99 ${h.p99_ms} / max ${h.max_ms} ms`;
const tail = (h: Tail): string => `${h.count} round trips, p50 ${h.p50_ms} / p99 ${h.p99_ms} / p99.9 ${h.p999_ms} / max ${h.max_ms} ms`;

function probeLine(p: ProbeFigures | null): string {
  if (p === null) return 'none (pass --probe MS)';
  const state = p.held ? '' : ' (its socket closed: FAIL)';
  return `think ${p.think_ms} ms, ${p.round_trips_per_second} round trips/s${state}; during ${p.ticks} ticks: ${tail(p.during_ticks)}; between ticks: ${tail(p.between_ticks)}`;
}

/** The run's table; a failing run says what failed. */
/** Nginx's workers' figures from their CPU at hold and at stop (proc-cpu.ts), per frame the generator read. */
export function nginxFigures(held: ProcessesCpu | undefined, stopped: ProcessesCpu | undefined, frames: number): NginxFigures | null {
  if (held === undefined || stopped === undefined) return null;
  const cpuSeconds = stopped.cpuSeconds - held.cpuSeconds;
  return { workers: stopped.processes, cpu_seconds: round(cpuSeconds, 2), cpu_us_per_frame: microsPer(cpuSeconds, frames) };
}

export function runMarkdown(r: Report, title = `Load test ${r.date}: ${r.ok ? 'PASS' : 'FAIL'}`): string {
  const g = r.load_generator;
  return [
    `# ${title}`,
    '',
    `| | |`,
    `|---|---|`,
    `| sockets held / requested | ${r.sockets.held} / ${r.sockets.requested} |`,
    `| connect | ${r.connect.seconds} s, ${r.connect.per_second}/s; handshake ${ms(r.connect.handshake)} |`,
    `| messages | ${r.messages.total}, ${r.messages.round_trips_per_second} round trips/s while held; ${ms(r.messages.round_trip)} |`,
    `| heartbeat | ${r.heartbeat.ticks_checked} ticks checked, ${r.heartbeat.missed} missed, ${r.heartbeat.duplicated} duplicated; fan-out ${ms(r.heartbeat.fan_out)}; tick to last socket ${r.heartbeat.tick_to_last_socket_ms.join(', ') || 'n/a'} ms |`,
    `| errors | ${JSON.stringify(r.errors)} |`,
    `| server | ${JSON.stringify(r.server)} |`,
    `| nginx | ${r.nginx === null ? 'not read' : `${r.nginx.workers} workers, ${r.nginx.cpu_seconds} s CPU while held, ${r.nginx.cpu_us_per_frame ?? 'n/a'} µs per frame received`} |`,
    `| redis | ${r.redis === null ? 'not read (no --redis)' : `${r.redis.cpu_us_per_message ?? 'n/a'} µs CPU per round trip`} |`,
    `| latency probe | ${probeLine(r.latency_probe)} |`,
    `| load generator | ${g.workers} workers, ${g.cpu_seconds} s CPU while held: ${g.cpu_us_per_frame ?? 'n/a'} µs per frame received, ${g.cpu_us_per_round_trip ?? 'n/a'} µs per round trip |`,
    '',
  ].join('\n');
}
