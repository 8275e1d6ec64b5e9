/**
 * What a connection that resumes with the last count its client saw does before
 * anything else (DESIGN.md, "Exactly once"). Pure: the store's leased open gives
 * `stored`, the client gives `last` and `pending`.
 *
 * A stored count above `last` means messages were counted whose replies the client
 * never read (the old connection died, or was partitioned, between Redis's answer
 * and the client). Their counts are sent again, in order, as the answers to the
 * client's oldest unanswered messages; the client re-sends every unanswered message
 * at once (no round trip to learn how many were counted), so the first `discard`
 * messages it sends on this connection are those re-sends, answered already by the
 * replay: they are neither counted nor answered again.
 *
 * A gap larger than the client's own unanswered messages cannot be its lost replies:
 * some other connection counted on the session (two tabs, another device). Then
 * nothing is replayed and every re-send is counted: at least once, as for a client
 * that does not send `last`.
 *
 * The replay is a range, never a list: its size is the client's `pending`, which
 * the request already bounded (session-request.ts), but nothing here allocates by it.
 */
/** Where a client resumes its session (?last=, ?pending=; auth.last, auth.pending). */
export interface Resume {
  /** The last count the client saw (0: none). */
  readonly last: number;
  /** Messages it sent without getting their count, which it sends again first. */
  readonly pending: number;
}

export interface ResumePlan {
  /** The first count to send again; nothing is replayed when it is above `lastReplay`. */
  readonly firstReplay: number;
  /** The last count to send again. */
  readonly lastReplay: number;
  /** How many of the connection's first messages are re-sends of replayed ones. */
  readonly discard: number;
}

const NOTHING: ResumePlan = Object.freeze({ firstReplay: 1, lastReplay: 0, discard: 0 });

export function planResume(stored: number, last: number, pending: number): ResumePlan {
  const gap = stored - last;
  if (gap <= 0 || gap > pending) return NOTHING;
  return { firstReplay: last + 1, lastReplay: stored, discard: gap };
}
