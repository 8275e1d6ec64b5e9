/**
 * What a closed-loop client's session must show, from what the client recorded
 * (tests/support/loop-clients.ts) and what Redis stored: after a fault, whatever the
 * fault (assertSessionIntact for clients that do not resume with `last`,
 * assertLoopSession, assertByesConsistent), and after
 * releases under live traffic, where nothing may be lost at all (assertUnbroken).
 */
import assert from 'node:assert/strict';
import { loopClientLabel, PlainLoopClient, type LoopClient } from './loop-clients.js';

/**
 * What a session whose client does not resume with `last` (at least once) must show
 * after a fault, whatever the fault:
 * - counts start at 1 and only go up (never backwards, never repeated);
 * - Redis holds at least the last count the client saw (nothing it saw is lost);
 * - Redis counted a message the client never saw a count for only when a
 *   connection was lost while that message awaited its count (`lostInFlight`):
 *   the client re-sends that message, and only that one, and the lost one may
 *   have been counted before its reply was lost (a skip, DESIGN.md "Failure modes").
 * Returns how many counts the client never saw (skips).
 */
export function assertSessionIntact(
  label: string,
  counts: number[],
  stored: number,
  lostInFlight: number,
  trace?: string[],
): number {
  assert.ok(counts.length > 0, `${label}: no count at all`);
  assert.equal(counts[0], 1, `${label}: first count ${counts[0]}`);
  for (let i = 1; i < counts.length; i += 1) {
    assert.ok(counts[i]! > counts[i - 1]!, `${label}: count ${counts[i - 1]} then ${counts[i]} (position ${i})`);
  }
  const last = counts.at(-1)!;
  assert.ok(stored >= last, `${label}: the client saw ${last}, Redis has ${stored}`);
  const unseen = stored - counts.length;
  assert.ok(
    unseen <= lostInFlight,
    `${label}: Redis counted ${unseen} message(s) the client never saw a count for, ` +
      `with ${lostInFlight} connection(s) lost while a message awaited its count` +
      (trace === undefined ? '' : `; its last events:\n${trace.join('\n')}`),
  );
  return unseen;
}

/**
 * A loop client's session after any fault: exactly once. Loop clients resume with
 * the last count they saw and their unanswered message (`last`, `pending`), so a
 * count the store gave a message whose reply was lost comes back as that message's
 * answer, and a count the store lost is raised back (DESIGN.md, "Exactly once"):
 * counts 1..N with no gap and no repeat, one per message sent, and Redis holds N.
 */
export function assertLoopSession(label: string, client: LoopClient, stored: number): void {
  const events = `; its last events:\n${client.trace.join('\n')}`;
  assert.equal(client.counts.length, client.answered, `${label}: ${client.counts.length} counts for ${client.answered} messages${events}`);
  const exact = Array.from({ length: client.counts.length }, (_, at) => at + 1);
  assert.deepEqual(client.counts, exact, `${label}: counts are 1..N, no gap, no repeat${events}`);
  assert.equal(stored, client.counts.length, `${label}: Redis holds ${stored}, the client saw ${client.counts.length} counts${events}`);
}

/**
 * A loop client's byes: a bye on a connection that delivered counts carries exactly
 * the last of them (the last count handed to the transport, and every one handed
 * before the bye arrived); a bye on a connection that delivered none carries the count
 * loaded at its open, at least the last seen (a count lost with the previous
 * connection is a skip). The next count follows it.
 */
export function assertByesConsistent(label: string, client: LoopClient): void {
  for (const bye of client.byes) {
    assert.ok(bye.lastCount !== undefined, `${label}: a bye before any count`);
    if (bye.countedOnItsConnection) assert.equal(bye.total, bye.lastCount, `${label}: bye total ${bye.total}, last count ${bye.lastCount}`);
    else assert.ok(bye.total >= bye.lastCount, `${label}: bye total ${bye.total} below the last count ${bye.lastCount}`);
    const next = client.counts[client.counts.indexOf(bye.lastCount) + 1];
    if (next !== undefined) assert.ok(next > bye.total, `${label}: count ${next} after a bye with total ${bye.total}`);
  }
}

/**
 * What releases under live traffic must leave at every client, after `releases` of
 * them: counts 1..N with no gap and no repeat, no failed handshake, one bye per
 * release carrying the last count the client had seen, on the plain clients (the
 * client library) exactly one drain close (1001) per release and nothing else, and
 * the store holding exactly N (`stored[i]`: client i's stored count, as Redis gave it).
 */
export function assertUnbroken(clients: LoopClient[], stored: Array<number | undefined>, releases: number): void {
  for (const [index, client] of clients.entries()) {
    const label = loopClientLabel(client, index);
    const expected = Array.from({ length: client.counts.length }, (_, at) => at + 1);
    assert.deepEqual(client.counts, expected, `${label}: counts are 1..N, no gap, no repeat`);
    assert.equal(client.handshakeFailures, 0, `${label}: failed handshakes`);
    if (client instanceof PlainLoopClient) assert.deepEqual(client.closes, Array(releases).fill(1001), `${label}: closes`);
    assert.equal(client.byes.length, releases, `${label}: one bye per release`);
    for (const bye of client.byes) assert.equal(bye.total, bye.lastCount, `${label}: the bye total is the last count before it`);
    assert.equal(stored[index], client.counts.length, `${label}: Redis holds exactly the counts the client saw`);
  }
}
