/**
 * The messages of the protocol, defined once: what the server sends (and the
 * replicas pass each other on the fleet channel), and the decoder of what a client
 * receives into one discriminated union. Pure: no socket, no state, no Node or DOM
 * import, so the replica, the browser page, the reconnecting client and the load
 * test (which must see raw server behaviour) share one definition.
 */

/**
 * Reply to every text message. On the plain endpoint no other keys, ever; socket.io's
 * count events and acks add `replay: true` to a count answered from the store (a
 * resumed connection's re-send that was counted before its reply was lost).
 */
export interface CountMessage {
  count: number;
  replay?: true;
}

/** Sent to every open socket once per heartbeat tick. */
export interface HeartbeatMessage {
  /** The tick's wall-clock instant, ISO-8601 UTC with milliseconds and Z. */
  ts: string;
}

/**
 * A heartbeat on the fleet channel addressed to one session, not a tick: the release
 * smoke test publishes it to prove a new colour receives the fleet's heartbeat path
 * (the same Redis, adapter channel, event and handler a tick takes) without waiting
 * for the next tick. A replica writes it as a plain heartbeat `{ts}` to the sockets of
 * session `probe` it holds, and to no other socket; it counts in no heartbeat metric.
 */
export interface HeartbeatProbe extends HeartbeatMessage {
  probe: string;
}

/** What travels between replicas on the fleet channel. */
export type FleetHeartbeat = HeartbeatMessage | HeartbeatProbe;

/** Sent before a server-initiated close of a healthy connection (a close whose ending is 'bye'). */
export interface ByeMessage {
  bye: true;
  /** The session's count as last confirmed to this connection. */
  total: number;
}

/**
 * socket.io's bye: socket.io has no close code, so its bye also says which close
 * follows (the plain endpoint's close frame carries them instead).
 */
export interface SocketIoByeMessage extends ByeMessage {
  code: number;
  reason: string;
}

export const PLAIN_PATH = '/ws/chat/';
export const SOCKETIO_PATH = '/socket.io/';

/** The server's frames, plus `unknown` for anything that is none of them. */
export type ServerFrame =
  | { readonly type: 'count'; readonly count: number }
  | { readonly type: 'heartbeat'; readonly ts: string }
  | { readonly type: 'bye'; readonly total: number }
  | { readonly type: 'unknown'; readonly text: string };

/** Decodes one text frame; never throws (text that is not a known frame is `unknown`). */
export function parseServerFrame(text: string): ServerFrame {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { type: 'unknown', text };
  }
  return toServerFrame(value, text);
}

/**
 * Classifies a frame that is already an object (socket.io delivers its events
 * decoded). A count and a bye total are whole numbers from 0; a heartbeat's `ts`
 * is a string.
 */
export function toServerFrame(value: unknown, text?: string): ServerFrame {
  if (typeof value === 'object' && value !== null) {
    const frame = value as { count?: unknown; ts?: unknown; bye?: unknown; total?: unknown };
    if (isWhole(frame.count)) return { type: 'count', count: frame.count };
    if (typeof frame.ts === 'string') return { type: 'heartbeat', ts: frame.ts };
    if (frame.bye === true && isWhole(frame.total)) return { type: 'bye', total: frame.total };
  }
  return { type: 'unknown', text: text ?? safeStringify(value) };
}

function isWhole(value: unknown): value is number {
  // Stryker disable next-line ConditionalExpression: equivalent, Number.isSafeInteger is false for every non-number.
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
