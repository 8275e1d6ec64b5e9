/**
 * A HeartbeatClock the test moves by hand: `now` is whatever the test set, and a
 * timer runs only when the test fires it, on time (`advanceTo`), early or late
 * (`fireNext(at)`), so tick alignment and timers that misfire are tested without
 * waiting for a real tick.
 */
import type { HeartbeatClock } from '../../services/gateway/heartbeat.js';

interface Timer {
  readonly due: number;
  readonly run: () => void;
  cancelled: boolean;
}

export class ManualClock implements HeartbeatClock {
  /** Every delay asked for, in order (what the heartbeat computed, before any firing). */
  readonly delays: number[] = [];
  private readonly timers: Timer[] = [];

  constructor(public time: number) {}

  now(): number {
    return this.time;
  }

  schedule(run: () => void, delayMs: number): () => void {
    this.delays.push(delayMs);
    const timer: Timer = { due: this.time + delayMs, run, cancelled: false };
    this.timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  }

  /** Timers neither fired nor cancelled. */
  get pending(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }

  /** When the earliest pending timer is due; fails the test if there is none. */
  get nextDue(): number {
    return this.earliest().due;
  }

  /** Fires the earliest pending timer with the clock at `at` (its due time unless told: early or late). */
  fireNext(at?: number): void {
    const timer = this.earliest();
    this.timers.splice(this.timers.indexOf(timer), 1);
    this.time = at ?? timer.due;
    timer.run();
  }

  /** Moves the clock to `time`, firing on time every timer due by then, in order. */
  advanceTo(time: number): void {
    while (this.timers.some((timer) => !timer.cancelled && timer.due <= time)) this.fireNext();
    this.time = time;
  }

  private earliest(): Timer {
    const live = this.timers.filter((timer) => !timer.cancelled);
    const first = live.reduce<Timer | undefined>((soonest, timer) => (soonest === undefined || timer.due < soonest.due ? timer : soonest), undefined);
    if (first === undefined) throw new Error('no timer is pending');
    return first;
  }
}
