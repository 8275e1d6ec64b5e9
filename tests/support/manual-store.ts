/**
 * A SessionStore whose every answer the test gives by hand, in any order: each
 * open() and increment() returns a promise the test resolves or rejects later
 * through `opens[i]` / `increments[i]` (in call order). A real Redis connection
 * always answers in order, so only this store can show what SessionConnection
 * does when answers come back out of order or a failure sits between successes.
 */
import type { LeasedSession, OpenedSession, ResumeTooFar, SessionStore } from '../../services/gateway/store/session-store.js';

export class Deferred<T> {
  readonly promise: Promise<T>;
  resolve!: (value: T) => void;
  reject!: (error: Error) => void;

  constructor() {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

export class ManualStore implements SessionStore {
  readonly opens: Array<Deferred<OpenedSession>> = [];
  readonly leasedOpens: Array<Deferred<LeasedSession | ResumeTooFar>> = [];
  readonly increments: Array<Deferred<number>> = [];
  /**
   * Every call, in order: `open <id>`, `increment <id>`, and for resumed connections
   * `open-leased <id> last=<n>`, `increment-leased <id> lease=<l> expected=<e>`.
   */
  readonly calls: string[] = [];

  open(sessionId: string): Promise<OpenedSession> {
    this.calls.push(`open ${sessionId}`);
    const answer = new Deferred<OpenedSession>();
    this.opens.push(answer);
    return answer.promise;
  }

  increment(sessionId: string): Promise<number> {
    this.calls.push(`increment ${sessionId}`);
    const answer = new Deferred<number>();
    this.increments.push(answer);
    return answer.promise;
  }

  openLeased(sessionId: string, last: number): Promise<LeasedSession | ResumeTooFar> {
    this.calls.push(`open-leased ${sessionId} last=${last}`);
    const answer = new Deferred<LeasedSession | ResumeTooFar>();
    this.leasedOpens.push(answer);
    return answer.promise;
  }

  /** Answered through `increments`, with the unleased ones, in call order. */
  incrementLeased(sessionId: string, lease: number, expected: number): Promise<number> {
    this.calls.push(`increment-leased ${sessionId} lease=${lease} expected=${expected}`);
    const answer = new Deferred<number>();
    this.increments.push(answer);
    return answer.promise;
  }

  /** Increment number `n` (1-based, in call order); fails the test if it was never asked for. */
  nthIncrement(n: number): Deferred<number> {
    const answer = this.increments[n - 1];
    if (answer === undefined) throw new Error(`increment ${n} was never started (${this.increments.length} were)`);
    return answer;
  }
}

/**
 * Lets every promise reaction that the answers given so far set off run to the end
 * (a macrotask runs only after the microtask queue is empty), so a test asserts
 * what the connection did with them, with no timer or polling.
 */
export function settled(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
