/**
 * The drain's one deadline, in-process with a clock the test moves: what is left of
 * it, what a step keeps back for the steps after it, and the budget's order.
 */
import assert from 'node:assert/strict';
import { DRAIN_RESERVE_MS, Deadline, LOG_FLUSH_BUDGET_MS } from '../../services/gateway/drain-deadline.js';

/** A clock that moves only when the test says so. */
function manualClock(start = 1000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return { now: () => time, advance: (ms) => void (time += ms) };
}

describe('drain deadline', () => {
  it('counts down from the instant it was made, and never below 0', () => {
    const clock = manualClock();
    const deadline = Deadline.in(8000, clock.now);
    assert.equal(deadline.remainingMs(), 8000);
    clock.advance(2500);
    assert.equal(deadline.remainingMs(), 5500, 'time spent in earlier steps is gone for the later ones');
    clock.advance(6000);
    assert.equal(deadline.remainingMs(), 0);
  });

  it("a step's deadline keeps back what the steps after it need, on the same clock", () => {
    const clock = manualClock();
    const deadline = Deadline.in(8000, clock.now);
    const handshakes = deadline.before(DRAIN_RESERVE_MS);
    clock.advance(300);
    assert.equal(handshakes.remainingMs(), 8000 - DRAIN_RESERVE_MS - 300);
    assert.equal(deadline.remainingMs(), 8000 - 300, 'the whole deadline is unchanged');
    clock.advance(8000 - DRAIN_RESERVE_MS - 300);
    assert.equal(handshakes.remainingMs(), 0, 'the handshakes are over');
    assert.equal(deadline.remainingMs(), DRAIN_RESERVE_MS, 'the rest of the drain still has its reserve');
  });

  it('reserves in order: the stragglers are cut before the watchdog fires', () => {
    const deadline = Deadline.in(1000, manualClock().now);
    const cut = deadline.before(DRAIN_RESERVE_MS).remainingMs();
    const watchdog = deadline.before(LOG_FLUSH_BUDGET_MS).remainingMs();
    assert.ok(cut < watchdog, `sockets cut at ${cut} ms, watchdog at ${watchdog} ms`);
  });
});
