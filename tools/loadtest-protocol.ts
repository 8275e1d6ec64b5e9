/** Messages between tools/loadtest.ts (coordinator) and tools/loadtest-worker.ts. */

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
}

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
  /** HDR histograms (microseconds), compressed base64. */
  handshake: string;
  roundTrip: string;
  fanOut: string;
}

export type WorkerMessage =
  | { type: 'progress'; connected: number; messages: number; errors: number }
  | { type: 'connected' }
  | WorkerResult;
