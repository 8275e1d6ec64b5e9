/**
 * The drain's time budget, in one place. The entry point starts the clock at the
 * signal: SHUTDOWN_TIMEOUT_MS from then is the one deadline, passed down (as
 * centrifuge's Shutdown(ctx) passes its context); each step waits only for what is
 * left of it, less what it keeps back for the steps after it. Nothing downstream
 * recomputes the budget from the configuration.
 *
 *   signal                                                                deadline
 *     |-- closing handshakes --|-- Redis report, quit, exit --|-- last log lines --|
 *                deadline - DRAIN_RESERVE_MS          deadline - LOG_FLUSH_BUDGET_MS
 *                (stragglers destroyed)               (the watchdog logs and exits 1)
 */

/** Kept back from the closing handshakes for what follows them (the drain's report to Redis, quit, exit). */
export const DRAIN_RESERVE_MS = 1000;

/** Kept back by the watchdog to write the last log lines before it exits. */
export const LOG_FLUSH_BUDGET_MS = 250;

/**
 * Time a client needs to answer its close frame once its last count and the bye are
 * out. Not a step of the drain: a message waiting on Redis must leave it, and
 * DRAIN_RESERVE_MS, within SHUTDOWN_TIMEOUT_MS (config.ts checks the command timeout).
 */
export const CLOSE_HANDSHAKE_ALLOWANCE_MS = 1000;

/** A point in time on a monotonic clock (performance.now by default; a wall clock can jump). */
export class Deadline {
  private constructor(
    private readonly at: number,
    private readonly now: () => number,
  ) {}

  /** `ms` from now; `now` is injectable for tests. */
  static in(ms: number, now: () => number = () => performance.now()): Deadline {
    return new Deadline(now() + ms, now);
  }

  /** Milliseconds left, never below 0. */
  remainingMs(): number {
    return Math.max(0, this.at - this.now());
  }

  /** The deadline of a step that must leave `ms` to the steps after it. */
  before(ms: number): Deadline {
    return new Deadline(this.at - ms, this.now);
  }
}
