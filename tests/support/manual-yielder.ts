/**
 * A sliced walk's yield (sliced-walk.ts, Yielder) that the test runs by hand: the next
 * slice runs only on `runNext`, so what happens between two slices (a count answered,
 * a socket joining or closing, the next tick) is put there by the test.
 */
import type { SlicePolicy, Yielder } from '../../services/gateway/sliced-walk.js';

export class ManualYielder {
  private readonly queue: Array<{ run: () => void; cancelled: boolean }> = [];

  readonly yielder: Yielder = (next) => {
    const entry = { run: next, cancelled: false };
    this.queue.push(entry);
    return () => {
      entry.cancelled = true;
    };
  };

  /** Slices waiting to run, cancelled ones left out. */
  get pending(): number {
    return this.queue.filter((entry) => !entry.cancelled).length;
  }

  /** Runs the earliest waiting slice; fails the test if there is none. */
  runNext(): void {
    for (let entry = this.queue.shift(); entry !== undefined; entry = this.queue.shift()) {
      if (entry.cancelled) continue;
      entry.run();
      return;
    }
    throw new Error('no slice is waiting');
  }

  /** Runs slices until none waits; returns how many ran. */
  runAll(): number {
    let ran = 0;
    while (this.pending > 0) {
      this.runNext();
      ran += 1;
    }
    return ran;
  }

  /** A policy of `maxItems` a slice, no time budget, yielding here. */
  policy(maxItems: number): SlicePolicy {
    return { maxItems, budgetMs: Infinity, yielder: this.yielder };
  }
}
