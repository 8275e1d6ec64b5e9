/** The message rate limit (GCRA), its clock injected. */
import assert from 'node:assert/strict';
import { FULL_BUCKET, takeToken } from '../../services/gateway/token-bucket.js';

/** A bucket as a connection keeps it (one number), taken from at the instants a test gives. */
function bucket(perSecond: number, burst: number): (now: number) => boolean {
  let fullAt = FULL_BUCKET;
  return (now) => {
    const next = takeToken(fullAt, now, perSecond, burst);
    if (next === undefined) return false;
    fullAt = next;
    return true;
  };
}

describe('token bucket (MAX_MESSAGES_PER_SECOND)', () => {
  it('allows a full burst at once, then refuses until time refills a token', () => {
    const take = bucket(10, 3);
    assert.deepEqual([take(0), take(0), take(0), take(0)], [true, true, true, false]);
    assert.equal(take(99), false, '0.99 of a token after 99 ms at 10/s');
    assert.equal(take(100), true, 'one token after 100 ms');
    assert.equal(take(100), false);
  });

  it('never holds more than its burst, however long the connection was idle', () => {
    const take = bucket(10, 2);
    const taken = [1, 2, 3].map(() => take(3_600_000));
    assert.deepEqual(taken, [true, true, false]);
  });

  it('sustains exactly the rate: 50 messages at 100/s over 0.5 s after the burst is spent', () => {
    const take = bucket(100, 1);
    assert.equal(take(0), true);
    const accepted = Array.from({ length: 100 }, (_, index) => take((index + 1) * 5)).filter(Boolean).length;
    assert.equal(accepted, 50);
  });

  it('refills continuously: a part-spent burst gets back what the elapsed time gave, never more than the burst', () => {
    const take = bucket(10, 4);
    assert.deepEqual([take(0), take(0), take(0)], [true, true, true], 'one token left');
    // 250 ms later: 1 + 2.5 tokens, so three messages pass and the fourth does not.
    assert.deepEqual([take(250), take(250), take(250), take(250)], [true, true, true, false]);
    // A refusal takes nothing: 50 ms later the half token left has become one.
    assert.equal(take(300), true);
  });
});
