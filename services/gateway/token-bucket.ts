/**
 * Per-connection message rate limit (MAX_MESSAGES_PER_SECOND): a token bucket
 * refilled continuously at `perSecond`, holding at most `burst` tokens, so a client
 * may send in bursts but not sustain more than the rate. Two numbers per connection.
 */
export class TokenBucket {
  private tokens: number;
  private refilledAt: number;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    now: number = performance.now(),
  ) {
    this.tokens = burst;
    this.refilledAt = now;
  }

  /** Takes one token; false when the bucket is empty (the caller is over the rate). */
  take(now: number = performance.now()): boolean {
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.refilledAt) * this.perSecond) / 1000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
