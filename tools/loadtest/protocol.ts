/** Messages between tools/loadtest.ts (coordinator) and tools/loadtest/worker.ts. */

export interface WorkerConfig {
  wsUrl: string;
  httpUrl: string;
  sockets: number;
  /** The first this many of the worker's sockets use socket.io, the rest plain ws. */
  socketIoSockets: number;
  /** Loopback source addresses to spread connections over (ephemeral ports are per address). */
  sourceAddresses: string[];
  rampPerSecond: number;
  maxHandshakes: number;
  /** Messages per second per socket; 0 is a closed loop (next message on each count). */
  messageRate: number;
  /** Messages per socket, 0 for no limit. */
  messagesPerSocket: number;
  /** Each socket names a fresh session with last=0&pending=0 (auth on socket.io): the store's leased path. */
  resume: boolean;
  /** With messageRate 0: the pause between a count and the next message (0: at once). */
  thinkMs?: number;
  /** Keep every round trip of the hold window (its send instant and duration), not only the histogram. */
  recordRoundTrips?: boolean;
}

/** One round trip: when its message was sent (wall-clock ms) and how long its count took (µs). */
export type RoundTripSample = [sentAtMs: number, micros: number];

/** The heartbeat ticks every socket held through the window must have received once. */
export interface TickWindow {
  ticks: string[];
}

export interface WorkerResult {
  type: 'result';
  requested: number;
  held: number;
  messages: number;
  errors: Record<string, number>;
  /** Closes that happened before the end, by code or socket.io reason. */
  closes: Record<string, number>;
  heartbeatsMissed: number;
  heartbeatsDuplicated: number;
  /** HDR histograms (microseconds), compressed base64; fan-out only for ticks after every socket connected. */
  handshake: string;
  roundTrip: string;
  fanOut: string;
  /** Per tick (its `ts`, steady-state ticks only): ms from the tick to this worker's last socket reading it. */
  tickToLast: Record<string, number>;
  /** What the worker did and spent between the coordinator's hold and stop: its own cost. */
  window: WorkerWindow;
  /** With recordRoundTrips: every round trip sent between hold and stop. */
  roundTrips?: RoundTripSample[];
}

export interface WorkerWindow {
  /** This worker process's CPU (user + system). */
  cpuSeconds: number;
  roundTrips: number;
  /** Every frame received: counts, heartbeats, pings, anything else. */
  frames: number;
  heartbeatFrames: number;
  pings: number;
}

/** Coordinator to worker: start; every socket of every worker is connected (since); stop and report. */
export type CoordinatorMessage =
  | { type: 'start'; config: WorkerConfig }
  | { type: 'hold'; since: number }
  | { type: 'stop'; window: TickWindow };

export type WorkerMessage =
  | { type: 'progress'; connected: number; messages: number; errors: number }
  | { type: 'connected' }
  | WorkerResult;

/**
 * The upper bounds (seconds) of the product's wschat_heartbeat_fanout_seconds
 * (services/gateway/metrics.ts): the reference server records its own fan-out in the
 * same buckets, so both are read the same way.
 */
export const FAN_OUT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

/** A server's own heartbeat fan-out (tick instant to its last socket write), cumulative like Prometheus's. */
export interface FanOutHistogram {
  /** Ticks recorded. */
  count: number;
  /** Seconds, summed over the ticks. */
  sum: number;
  /** Ticks at or under each bound of FAN_OUT_BUCKETS (or of the scraped `le` labels), cumulative. */
  buckets: Array<{ le: number; count: number }>;
}

/** What a server process reports about itself: the replicas through /metrics, the reference server over IPC. */
export interface ServerSample {
  /** How many server processes the figures sum. */
  processes: number;
  rssBytes: number;
  cpuSeconds: number;
  connections: number;
  /** Undefined for a server that has no heartbeat. */
  fanOut?: FanOutHistogram;
  /**
   * Event-loop delay since the previous read (prom-client's nodejs_eventloop_lag_*,
   * which restart on every scrape), the worst replica's; undefined for a server that
   * does not report it.
   */
  eventLoopLag?: EventLoopLag;
}

/** Seconds. */
export interface EventLoopLag {
  p50: number;
  p99: number;
  max: number;
}

/** Messages from tools/loadtest/reference-server.ts, forked by the load test. */
export type ReferenceMessage = { type: 'listening'; port: number } | ({ type: 'sample' } & ServerSample);
