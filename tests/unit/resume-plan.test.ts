import assert from 'node:assert/strict';
import { planResume } from '../../services/gateway/resume-plan.js';

const NOTHING = { firstReplay: 1, lastReplay: 0, discard: 0 };

describe('resume plan (a connection that resumes with the last count its client saw)', () => {
  it('replays nothing when the store holds what the client saw', () => {
    assert.deepEqual(planResume(7, 7, 3), NOTHING);
  });

  it("replays the counts beyond the client's last, oldest first, and discards as many re-sends", () => {
    assert.deepEqual(planResume(9, 7, 3), { firstReplay: 8, lastReplay: 9, discard: 2 });
    assert.deepEqual(planResume(10, 7, 3), { firstReplay: 8, lastReplay: 10, discard: 3 }, 'every unanswered message was counted');
  });

  it('replays nothing when the gap is more than the client has unanswered: another connection counted', () => {
    assert.deepEqual(planResume(11, 7, 3), NOTHING);
    assert.deepEqual(planResume(8, 7, 0), NOTHING);
  });

  it('replays nothing when the store is behind the client (the leased open raises it first)', () => {
    assert.deepEqual(planResume(5, 7, 3), NOTHING);
  });

  it('describes a replay of any size in constant space', () => {
    const plan = planResume(Number.MAX_SAFE_INTEGER, 0, Number.MAX_SAFE_INTEGER);
    assert.deepEqual(plan, { firstReplay: 1, lastReplay: Number.MAX_SAFE_INTEGER, discard: Number.MAX_SAFE_INTEGER });
  });
});
