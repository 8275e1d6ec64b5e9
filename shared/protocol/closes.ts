/**
 * Every close the server initiates, with its code, reason and whether a client
 * should reconnect: the one table the replica, the client library and the tests
 * read. Pure (no Node or DOM import), like the rest of shared/protocol/.
 *
 * Each reason has a code of its own, so a program tells them apart without reading
 * the text. RFC 6455's codes are kept where the RFC defines the case (1001 going
 * away, 1002, 1003, 1007, 1009, 1013); the service's own reasons are in the private
 * range (§7.4.2), where the range itself says what a client should do, as centrifuge
 * does with its 3000s, so a client written today handles a code added later:
 * - 4000-4499: the connection ended for a reason that passes: reconnect with
 *   back-off and resume the session (none is used yet);
 * - 4500-4999: the client must change something first; reconnecting as it is would
 *   only be refused again.
 */
/**
 * How a server-initiated close ends the connection:
 * - `bye`: the connection is healthy and the server chose to end it (a drain, a
 *   limit, Redis): messages already received get their counts, then the bye, then
 *   the close frame.
 * - `fail`: the peer broke RFC 6455, and §7.1.7 says to _Fail the WebSocket
 *   Connection_: the close frame at once and nothing else, not even counts Redis
 *   answers afterwards.
 */
export type Ending = 'bye' | 'fail';

/**
 * A close the server initiates: RFC 6455 code, reason (at most 123 bytes, RFC 6455
 * §5.5.1), whether a client should reconnect, the error kind used in logs and in
 * the errors metric, and how the connection ends.
 */
export interface ServerClose<K extends string = string> {
  readonly code: number;
  readonly reason: string;
  readonly reconnect: boolean;
  readonly kind: K;
  readonly ending: Ending;
}

/** RFC 6455 §7.4.2: codes 4000-4999 are for applications; the first half means "reconnect" here. */
const PRIVATE_FIRST = 4000;
const PRIVATE_RECONNECT_LAST = 4499;
const PRIVATE_LAST = 4999;

/** Whether `code` is one of the private codes (4000-4999), whose range says whether to reconnect. */
export function isPrivateCode(code: number): boolean {
  return code >= PRIVATE_FIRST && code <= PRIVATE_LAST;
}

/** Whether `code` is a private code after which a client reconnects (4000-4499). */
export function isPrivateReconnectCode(code: number): boolean {
  return code >= PRIVATE_FIRST && code <= PRIVATE_RECONNECT_LAST;
}

function close<K extends string>(code: number, reason: string, reconnect: boolean, kind: K, ending: Ending = 'bye'): ServerClose<K> {
  if (new TextEncoder().encode(reason).length > 123) throw new Error(`close reason over 123 bytes: ${reason}`);
  // A private code's range is its reconnect rule: a table entry cannot say otherwise.
  if (isPrivateCode(code) && isPrivateReconnectCode(code) !== reconnect) throw new Error(`close ${code} is in the wrong range for reconnect=${reconnect}`);
  return Object.freeze({ code, reason, reconnect, kind, ending });
}

/** Every close the server initiates, each with its own code. docs/protocol.md's "Close codes" table lists the same (tests/static/docs.test.ts checks it). */
export const CLOSE = Object.freeze({
  /** Replica draining (SIGTERM): reconnect and resume on another replica. */
  shuttingDown: close(1001, 'server shutting down', true, 'shutdown'),
  /** Malformed ?session= (or auth.session): choose a canonical lowercase uuid. */
  invalidSession: close(4500, 'invalid session id', false, 'invalid_session'),
  /** Binary frames carry nothing this protocol counts. */
  binaryFrame: close(1003, 'binary frames are not supported', false, 'binary_frame'),
  /**
   * A text message above MAX_MESSAGE_BYTES. An application limit on well-formed
   * frames, not a protocol failure: the client gets the bye, so it knows which of
   * its messages were counted.
   */
  messageTooBig: close(1009, 'message too big', false, 'message_too_big'),
  /** A message in more than MAX_MESSAGE_FRAGMENTS frames (ws's limit on a message's parts). */
  tooManyFragments: close(4504, 'message has too many fragments', false, 'too_many_fragments'),
  /** A text message or a close reason that is not valid UTF-8 (detected by ws; RFC 6455 §8.1). */
  invalidUtf8: close(1007, 'invalid utf-8', false, 'invalid_utf8', 'fail'),
  /**
   * A frame that breaks RFC 6455 framing (detected by ws): reserved opcode, RSV bit,
   * unmasked frame, continuation without a start or a start inside a message,
   * fragmented or oversized control frame, invalid close code, a 64-bit length with
   * its top bit set (§5.2).
   */
  protocolError: close(1002, 'protocol error', false, 'protocol_error', 'fail'),
  /** More than MAX_INFLIGHT_PER_CONNECTION messages await Redis on a transport that cannot pause reading. */
  tooManyInflight: close(4501, 'too many messages awaiting a count', false, 'inflight_limit'),
  /** More messages than MAX_MESSAGES_PER_SECOND allows (a flood): the client must slow down. */
  rateLimited: close(4502, 'message rate limit exceeded', false, 'rate_limited'),
  /** The client stopped reading: more than MAX_BUFFERED_BYTES of replies wait to be written to it. */
  slowConsumer: close(4503, 'client is not reading', false, 'slow_consumer'),
  /**
   * A newer connection resumed the same session (another tab, or the client itself after
   * giving this connection up), or a client without `last` counted on it: this
   * connection's counts no longer line up with the session's, so it ends rather than
   * skip or repeat one (DESIGN.md, "Exactly once").
   */
  sessionTaken: close(4505, 'session resumed on another connection', false, 'session_taken'),
  /**
   * ?last= or ?pending= (auth.last, auth.pending) not a whole number, or given without a
   * session; `pending` above MAX_INFLIGHT_PER_CONNECTION; `last` more than
   * MAX_RESUME_AHEAD above the count the store holds.
   */
  invalidResume: close(4506, 'invalid resume position', false, 'invalid_resume'),
  /**
   * A second session on one socket.io connection (a CONNECT while one is open): each
   * engine.io connection carries at most one session, so one TCP connection costs the
   * replica what one client does.
   */
  sessionPerConnection: close(4507, 'one session per connection', false, 'extra_session'),
  /** Redis did not confirm a count in time: reconnect later and re-send the message. */
  storeUnavailable: close(1013, 'session store unavailable, retry later', true, 'store_unavailable'),
});

/** One of the closes above (its kind is a literal, so label sets stay closed). */
export type KnownClose = (typeof CLOSE)[keyof typeof CLOSE];
