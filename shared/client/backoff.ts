/**
 * Reconnect delays: exponential back-off with full jitter (AWS Architecture Blog,
 * "Exponential Backoff And Jitter"). Attempt n waits a uniformly random time in
 * [0, min(maxMs, initialMs * factor^n)). Full jitter spreads a fleet of clients that
 * were all closed at the same instant (a drain says bye to every socket at once),
 * so the next colour is not hit by one synchronised wave of handshakes.
 */

export interface BackoffOptions {
  /** Ceiling of the first attempt's delay. @default 250 */
  initialMs: number;
  /** Ceiling that no delay exceeds. @default 30000 */
  maxMs: number;
  /** Growth of the ceiling per attempt. @default 2 */
  factor: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({ initialMs: 250, maxMs: 30_000, factor: 2 });

/** Merges `options` over the defaults and checks them; throws a RangeError naming the bad field. */
export function backoffOptions(options: Partial<BackoffOptions> = {}): Readonly<BackoffOptions> {
  const merged = { ...DEFAULT_BACKOFF, ...options };
  if (!(Number.isFinite(merged.initialMs) && merged.initialMs >= 0)) throw new RangeError(`backoff.initialMs must be >= 0 (got ${merged.initialMs})`);
  if (!(Number.isFinite(merged.maxMs) && merged.maxMs >= merged.initialMs)) {
    throw new RangeError(`backoff.maxMs must be >= initialMs (got ${merged.maxMs})`);
  }
  if (!(Number.isFinite(merged.factor) && merged.factor >= 1)) throw new RangeError(`backoff.factor must be >= 1 (got ${merged.factor})`);
  return Object.freeze(merged);
}

/** The ceiling of attempt `attempt` (0-based): min(maxMs, initialMs * factor^attempt). */
export function backoffCeiling(options: Readonly<BackoffOptions>, attempt: number): number {
  return Math.min(options.maxMs, options.initialMs * options.factor ** attempt);
}

/**
 * The delay before attempt `attempt` (0-based), in whole milliseconds. `random`
 * returns a number in [0, 1), as Math.random does; tests inject their own.
 */
export function backoffDelay(options: Readonly<BackoffOptions>, attempt: number, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCeiling(options, attempt));
}
