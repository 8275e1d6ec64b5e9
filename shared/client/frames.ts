/**
 * What the server sends on /ws/chat/, decoded into one discriminated union. Pure:
 * no socket, no state, no Node or DOM import, so the browser page, the reconnecting
 * client and the load test (which must see raw server behaviour) share one decoder.
 */

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
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
