/**
 * Per-connection message rate limit (MAX_MESSAGES_PER_SECOND): a token bucket
 * refilled continuously at `perSecond`, holding at most `burst` tokens, so a client
 * may send in bursts but not sustain more than the rate.
 *
 * A connection keeps its bucket as one number, the instant the bucket is full again
 * (GCRA's "theoretical arrival time"), instead of an object holding the tokens and
 * the last refill: the tokens at `now` are `burst - max(0, fullAt - now) * perSecond
 * / 1000`, the same bucket, with nothing allocated per connection.
 */

/** The bucket of a connection that has not sent yet: full at any instant (performance.now() starts at 0). */
export const FULL_BUCKET = 0;

/**
 * Takes one token at `now` from the bucket that is full again at `fullAt`. Returns
 * the bucket's new `fullAt`, or undefined when it holds less than one token (the
 * caller is over the rate; the bucket is unchanged).
 */
export function takeToken(fullAt: number, now: number, perSecond: number, burst: number): number | undefined {
  const tokenMs = 1000 / perSecond;
  // A bucket full before `now` stayed full: it never holds more than `burst`.
  const from = Math.max(fullAt, now);
  // The tokens missing at `now` are (from - now) / tokenMs; at least one must be left.
  if (from - now > (burst - 1) * tokenMs) return undefined;
  return from + tokenMs;
}
