/**
 * A walk over many sockets spread over event-loop turns: a slice visits a bounded
 * number of items, or stops once its time budget is spent, then the walk yields and
 * the next slice runs later. Every walk over all of a replica's sockets goes through
 * it (the heartbeat's fan-out and its probes, the liveness sweep, the drain's and a
 * store stall's closes), so no walk holds the event loop for longer than one slice:
 * messages, their Redis replies, probes and handshakes run between two slices.
 *
 * How a walk yields is its own choice: `yieldToIo` (setImmediate) goes on as soon as
 * the I/O that is ready has been handled, so a walk finishes as fast as a synchronous
 * loop would on an idle replica; `pauseFor(ms)` spreads a walk over time on purpose
 * (the liveness sweep).
 *
 * What the walk visits is the iterator it is given: a snapshot (an array) visits the
 * items there were when it began, a live Set iterator also reaches the ones added
 * meanwhile and skips the ones deleted. The visit decides what to do with an item
 * that went stale meanwhile (a closed session writes nothing).
 */

/** Schedules the next slice; the function returned cancels it. */
export type Yielder = (next: () => void) => () => void;

/** Yields to I/O: the next slice runs in the check phase after the poll phase's callbacks. */
export const yieldToIo: Yielder = (next) => {
  const immediate = setImmediate(next);
  return () => clearImmediate(immediate);
};

/** Spreads the slices over time: each one `gapMs` after the previous one ended. */
export function pauseFor(gapMs: number): Yielder {
  return (next) => {
    const timer = setTimeout(next, gapMs);
    return () => clearTimeout(timer);
  };
}

export interface SlicePolicy {
  /** At most this many items in one slice. */
  maxItems: number;
  /**
   * A slice that has run this long yields to I/O (yieldToIo) and goes on with the rest
   * of its items right after: the budget bounds how long the loop is held, `maxItems`
   * and `yielder` how the walk is spread. Infinity: `maxItems` alone bounds a slice.
   */
  budgetMs: number;
  /** How the walk waits between two slices of `maxItems`. */
  yielder: Yielder;
  /** Monotonic milliseconds; performance.now unless a test moves time by hand. */
  now?: () => number;
}

/**
 * How often a slice reads the clock: a clock read costs far less than a write to a
 * socket, but not nothing, and a few items past the budget are a few microseconds.
 */
const ITEMS_PER_CLOCK_READ = 16;

/**
 * The yielding walk of the heartbeat's fan-out, its probes and the drain: a slice of at
 * most 2 ms. A message that arrives during a fan-out waits for at most the slice that
 * is running, and its Redis reply for at most one more, so a slice's budget is about
 * half the latency a message may gain during a tick. Smaller slices would buy little:
 * each yield costs an event-loop turn (microseconds), not a write.
 */
export const FAN_OUT_SLICE: SlicePolicy = { maxItems: 2000, budgetMs: 2, yielder: yieldToIo };

export class SlicedWalk<T> {
  private cancelNext: (() => void) | undefined;
  private finished = false;
  private readonly now: () => number;
  private readonly whenDone: Promise<void>;
  private resolveDone: () => void = () => undefined;

  /**
   * Builds the walk; nothing is visited before start(). `onDone` runs once, after the
   * last item's visit, whether the walk ended in slices or by finish(), and not at all
   * when it is cancelled.
   */
  constructor(
    private readonly items: Iterator<T, unknown>,
    private readonly visit: (item: T) => void,
    private readonly policy: SlicePolicy,
    private readonly onDone?: () => void,
  ) {
    this.now = policy.now ?? (() => performance.now());
    this.whenDone = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
  }

  /** Runs the first slice now; the others follow on the policy's yields. */
  start(): this {
    this.slice(this.policy.maxItems);
    return this;
  }

  /** True once every item was visited (or the walk was cancelled). */
  get done(): boolean {
    return this.finished;
  }

  /** Resolves once every item was visited; never, for a cancelled walk. */
  get completed(): Promise<void> {
    return this.whenDone;
  }

  /**
   * Visits every item left, now, in one go: for a new walk that must not overlap the
   * one still running (the next tick's fan-out, the next sweep), so items keep their
   * order across walks and none is left out.
   */
  finish(): void {
    if (this.finished) return;
    this.cancelNext?.();
    this.cancelNext = undefined;
    this.slice(Infinity, Infinity);
  }

  /** Stops the walk where it is: no more visits, no onDone. */
  cancel(): void {
    this.cancelNext?.();
    this.cancelNext = undefined;
    this.finished = true;
  }

  /** Visits up to `items` items, or fewer once the budget is spent; then yields, or ends the walk. */
  private slice(items: number, budgetMs = this.policy.budgetMs): void {
    this.cancelNext = undefined;
    const started = budgetMs === Infinity ? 0 : this.now();
    let visited = 0;
    for (; visited < items; visited += 1) {
      if (visited > 0 && visited % ITEMS_PER_CLOCK_READ === 0 && budgetMs !== Infinity && this.now() - started >= budgetMs) break;
      const next = this.items.next();
      if (next.done === true) return this.end();
      this.visit(next.value);
    }
    const left = items - visited;
    if (left > 0) this.cancelNext = yieldToIo(() => this.slice(left));
    else this.cancelNext = this.policy.yielder(() => this.slice(this.policy.maxItems));
  }

  private end(): void {
    this.finished = true;
    this.onDone?.();
    this.resolveDone();
  }
}
