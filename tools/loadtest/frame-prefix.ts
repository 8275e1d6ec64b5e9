/**
 * The load test's fast path for the plain endpoint's two frequent frames, read off
 * the raw bytes by their exact shape: `{"count":N}` and `{"ts":"<24-char ISO>"}`.
 * A heartbeat reaches every socket with the same bytes, so it is decoded once per
 * tick, not once per socket: the generator must cost less per frame than the server
 * it measures. Anything of another shape returns "not this" and goes through the
 * full decoder (shared/protocol/messages.ts parseServerFrame), so a frame the fast
 * path does not know is still classified, never dropped.
 */

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const QUOTE = 0x22;
const ZERO = 0x30;
const NINE = 0x39;
const COUNT_PREFIX = Buffer.from('{"count":');
const TS_PREFIX = Buffer.from('{"ts":"');
const ISO_LENGTH = 24;
const HEARTBEAT_LENGTH = TS_PREFIX.length + ISO_LENGTH + 2;
/** Digits of a count the fast path reads; more could pass Number.MAX_SAFE_INTEGER, so the full decoder judges those. */
const MAX_DIGITS = 15;

function startsWith(data: Buffer, prefix: Buffer): boolean {
  return data.length > prefix.length && data[0] === OPEN_BRACE && data.compare(prefix, 0, prefix.length, 0, prefix.length) === 0;
}

/** The count of a `{"count":N}` frame (N whole, no leading zero), or -1 for any other frame. */
export function scanCount(data: Buffer): number {
  if (!startsWith(data, COUNT_PREFIX) || data[data.length - 1] !== CLOSE_BRACE) return -1;
  const first = COUNT_PREFIX.length;
  const end = data.length - 1;
  if (end === first || end - first > MAX_DIGITS || (data[first] === ZERO && end - first > 1)) return -1;
  let count = 0;
  for (let at = first; at < end; at += 1) {
    const byte = data[at]!;
    if (byte < ZERO || byte > NINE) return -1;
    count = count * 10 + (byte - ZERO);
  }
  return count;
}

/** Recognises heartbeat frames, remembering the last tick's bytes, string and instant. */
export class HeartbeatScanner {
  private lastBytes = Buffer.alloc(ISO_LENGTH);
  private lastTs: string | undefined;
  /** The instant (ms) of the last heartbeat scanned; NaN when its `ts` is not a date. */
  lastTickAt = Number.NaN;

  /** The `ts` of a `{"ts":"..."}` frame (the same string for every socket of one tick), or undefined. */
  scan(data: Buffer): string | undefined {
    if (data.length !== HEARTBEAT_LENGTH || !startsWith(data, TS_PREFIX)) return undefined;
    const end = TS_PREFIX.length + ISO_LENGTH;
    if (data[end] !== QUOTE || data[end + 1] !== CLOSE_BRACE) return undefined;
    if (this.lastTs !== undefined && data.compare(this.lastBytes, 0, ISO_LENGTH, TS_PREFIX.length, end) === 0) return this.lastTs;
    this.lastBytes = Buffer.from(data.subarray(TS_PREFIX.length, end));
    this.lastTs = this.lastBytes.toString('latin1');
    this.lastTickAt = Date.parse(this.lastTs);
    return this.lastTs;
  }
}
