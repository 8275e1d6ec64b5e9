/**
 * A replica's phase, which drives /readyz, upgrade refusal and the drain:
 *
 *   starting -> running -> draining -> stopped
 *        \________________/
 *
 * It only moves forward, one allowed step at a time; any other change is a bug and
 * throws, instead of (say) a listen() that completes after a signal quietly putting
 * a draining replica back to running.
 */
export type Phase = 'starting' | 'running' | 'draining' | 'stopped';

/** The phases each phase may move to. A signal can arrive while the replica is still starting. */
const NEXT: Readonly<Record<Phase, readonly Phase[]>> = {
  starting: ['running', 'draining'],
  running: ['draining'],
  draining: ['stopped'],
  stopped: [],
};

export class Lifecycle {
  private current: Phase = 'starting';

  get phase(): Phase {
    return this.current;
  }

  /** Draining or past it: nothing new is accepted. */
  get draining(): boolean {
    return this.current === 'draining' || this.current === 'stopped';
  }

  /** Moves to `next`; throws, changing nothing, when `next` is not one step ahead of the current phase. */
  enter(next: Phase): void {
    if (!NEXT[this.current].includes(next)) throw new Error(`phase change ${this.current} -> ${next} is not allowed`);
    this.current = next;
  }
}
