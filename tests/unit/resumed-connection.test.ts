/**
 * A SessionConnection whose client resumes with the last count it saw (exactly
 * once, DESIGN.md), in-process over a store the test answers by hand: the lease
 * taken before any increment, each increment naming its expected count, re-sends
 * answered with the counts the store already gave them, and a stale lease ending
 * the connection with 4505.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Resume } from '../../services/gateway/resume-plan.js';
import { STALE_LEASE } from '../../services/gateway/store/session-store.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { settled, type ManualStore } from '../support/manual-store.js';
import { RecordingSink } from '../support/recording-sink.js';
import { sessionHarness, type SessionHarness } from '../support/session-harness.js';

const SESSION = randomSessionId();

function resumed(resume: Resume): SessionHarness {
  const harness = sessionHarness({}, new RecordingSink(), SESSION, resume);
  harness.connection.open();
  return harness;
}

/** The store's calls after the open, without the session id. */
const incrementsOf = (store: ManualStore): string[] =>
  store.calls.filter((call) => call.startsWith('increment')).map((call) => call.replace(` ${SESSION}`, ''));

describe('SessionConnection resumed with last (unit)', () => {
  it('takes the lease before any increment, then counts what arrived meanwhile with its expected counts, in order', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    assert.deepEqual(store.calls, [`open-leased ${SESSION} last=5`]);
    connection.receive(1);
    connection.receive(1);
    await settled();
    assert.deepEqual(incrementsOf(store), [], 'no increment before the lease is known');
    store.leasedOpens[0]!.resolve({ count: 5, resumed: true, lease: 3, raisedBy: 0 });
    await settled();
    connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=3 expected=5', 'increment-leased lease=3 expected=6', 'increment-leased lease=3 expected=7']);
    for (const [index, count] of [6, 7, 8].entries()) store.nthIncrement(index + 1).resolve(count);
    await settled();
    assert.deepEqual(sink.events, ['count 6', 'count 7', 'count 8']);
  });

  it('answers the first re-sends with the counts the store gave them, counting only the rest', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 3 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=2 expected=7'], 'two re-sends were counted already');
    store.nthIncrement(1).resolve(8);
    await settled();
    // The answered re-sends are marked (socket.io carries replay: true); the new count is not.
    assert.deepEqual(sink.events, ['count 6 replay', 'count 7 replay', 'count 8']);
  });

  it('answers re-sends that arrived before the open in the same way, and acks them on socket.io', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 2 });
    const acked: number[] = [];
    connection.receive(1, ({ count }) => acked.push(count));
    connection.receive(1, ({ count }) => acked.push(count));
    store.leasedOpens[0]!.resolve({ count: 6, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=2 expected=6']);
    store.nthIncrement(1).resolve(7);
    await settled();
    assert.deepEqual(sink.events, ['count 6 replay', 'count 7']);
    assert.deepEqual(acked, [6, 7]);
  });

  it("says bye with the client's last until the replayed counts went out", async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 2 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['bye 5', 'close 1001']);
  });

  it('says bye with the stored count, not last, when nothing is replayed', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    store.leasedOpens[0]!.resolve({ count: 7, resumed: true, lease: 2, raisedBy: 0 });
    await settled();
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['bye 7', 'close 1001']);
  });

  it('counts the messages that waited for the lease when a drain starts before it, with their expected counts, then says bye', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 0 });
    connection.receive(1);
    connection.receive(1);
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(incrementsOf(store), [], 'still no increment: the lease is not known');
    store.leasedOpens[0]!.resolve({ count: 5, resumed: true, lease: 3, raisedBy: 0 });
    await settled();
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=3 expected=5', 'increment-leased lease=3 expected=6']);
    store.nthIncrement(1).resolve(6);
    store.nthIncrement(2).resolve(7);
    await settled();
    assert.deepEqual(sink.events, ['count 6', 'count 7', 'bye 7', 'close 1001']);
  });

  it('lets MAX_INFLIGHT messages wait for the lease, and pauses the reader at the next one', async () => {
    const { connection, store, sink } = sessionHarness({ maxInflight: 3 }, new RecordingSink(), SESSION, { last: 0, pending: 0 });
    connection.open();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.deepEqual(sink.events, [], 'three wait without a pause');
    connection.receive(1);
    assert.deepEqual(sink.events, ['pause']);
    store.leasedOpens[0]!.resolve({ count: 0, resumed: false, lease: 1, raisedBy: 0 });
    await settled();
    assert.equal(incrementsOf(store).length, 3, 'the bound holds once the lease is known');
  });

  it('closes a transport that cannot pause with 4501 at the message after MAX_INFLIGHT waiting for the lease', () => {
    const sink = new RecordingSink('socketio');
    sink.canPause = false;
    const { connection } = sessionHarness({ maxInflight: 3 }, sink, SESSION, { last: 0, pending: 0 });
    connection.open();
    for (let i = 0; i < 3; i += 1) connection.receive(1);
    assert.equal(connection.status.state, 'open');
    connection.receive(1);
    assert.deepEqual(connection.status, { state: 'closing', reason: CLOSE.tooManyInflight });
  });

  it('replays nothing when the gap is larger than what the client has unanswered (another connection counted)', async () => {
    const { connection, store, sink } = resumed({ last: 5, pending: 1 });
    store.leasedOpens[0]!.resolve({ count: 9, resumed: true, lease: 4, raisedBy: 0 });
    await settled();
    connection.receive(1);
    assert.deepEqual(incrementsOf(store), ['increment-leased lease=4 expected=9']);
    store.nthIncrement(1).resolve(10);
    connection.close(CLOSE.shuttingDown);
    await settled();
    assert.deepEqual(sink.events, ['count 10', 'bye 10', 'close 1001']);
  });

  it('ends with bye + 4505 when the store says a newer connection holds the lease, and sends no count after it', async () => {
    const { connection, store, sink } = resumed({ last: 0, pending: 0 });
    store.leasedOpens[0]!.resolve({ count: 0, resumed: false, lease: 1, raisedBy: 0 });
    await settled();
    connection.receive(1);
    connection.receive(1);
    connection.receive(1);
    store.nthIncrement(1).resolve(1);
    store.nthIncrement(2).resolve(STALE_LEASE);
    store.nthIncrement(3).resolve(STALE_LEASE);
    await settled();
    assert.deepEqual(sink.events, ['count 1', 'bye 1', 'close 4505']);
    assert.equal(sink.closedWith, CLOSE.sessionTaken);
    connection.receive(1);
    assert.equal(incrementsOf(store).length, 3, 'nothing more is counted');
  });

  it('fails messages waiting for the lease when the open fails: bye-less 1013, nothing counted', async () => {
    const { connection, store, sink } = resumed({ last: 3, pending: 0 });
    connection.receive(1);
    store.leasedOpens[0]!.reject(new Error('Command timed out'));
    await settled();
    assert.deepEqual(incrementsOf(store), []);
    assert.deepEqual(sink.events, ['close 1013']);
  });

  it('ends with 4506, no bye and nothing counted when the store refuses a last too far ahead of its count', async () => {
    const { connection, store, sink } = resumed({ last: 60_000_000, pending: 0 });
    connection.receive(1);
    store.leasedOpens[0]!.resolve({ refused: 'too_far_ahead', count: 3 });
    await settled();
    connection.receive(1);
    await settled();
    assert.deepEqual(incrementsOf(store), []);
    assert.deepEqual(sink.events, ['close 4506']);
    assert.equal(sink.closedWith, CLOSE.invalidResume);
  });

  it('costs what its limits allow, whatever last, pending and re-sends the client chose', async () => {
    const MAX_INFLIGHT = 8;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: Number.MAX_SAFE_INTEGER }),
        fc.nat({ max: MAX_INFLIGHT }),
        fc.nat({ max: 4 * MAX_INFLIGHT }),
        async (stored, last, pending, sent) => {
          const sink = new RecordingSink();
          const { connection, store } = sessionHarness({ maxInflight: MAX_INFLIGHT }, sink, SESSION, { last, pending });
          connection.open();
          for (let i = 0; i < sent; i += 1) connection.receive(1);
          store.leasedOpens[0]!.resolve({ count: stored, resumed: true, lease: 1, raisedBy: 0 });
          await settled();
          const gap = stored - last;
          const replayed = gap > 0 && gap <= pending ? Math.min(gap, sent) : 0;
          const counted = incrementsOf(store).length;
          // What waits is bounded by the limit: the rest of the re-sends paused the reader.
          assert.ok(counted <= MAX_INFLIGHT, `${counted} increments in flight`);
          assert.equal(counted, Math.min(sent - replayed, MAX_INFLIGHT));
          const replies = sink.written.filter((event) => event.endsWith('replay'));
          assert.deepEqual(replies, Array.from({ length: replayed }, (_, i) => `count ${last + 1 + i} replay`));
        },
      ),
      { numRuns: 300 },
    );
  });
});
