/**
 * Every close the server initiates, with its code, reason and whether a client
 * should reconnect: the one table the replica, the client library and the tests
 * read. Pure (no Node or DOM import), like the rest of shared/protocol/.
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

function close<K extends string>(code: number, reason: string, reconnect: boolean, kind: K, ending: Ending = 'bye'): ServerClose<K> {
  if (new TextEncoder().encode(reason).length > 123) throw new Error(`close reason over 123 bytes: ${reason}`);
  return Object.freeze({ code, reason, reconnect, kind, ending });
}

/** Every close the server initiates. DESIGN.md ("Close codes") lists the same table. */
export const CLOSE = Object.freeze({
  /** Replica draining (SIGTERM): reconnect and resume on another replica. */
  shuttingDown: close(1001, 'server shutting down', true, 'shutdown'),
  /** Malformed ?session= (or auth.session): choose a canonical lowercase uuid. */
  invalidSession: close(1008, 'invalid session id', false, 'invalid_session'),
  /** Binary frames carry nothing this protocol counts. */
  binaryFrame: close(1003, 'binary frames are not supported', false, 'binary_frame'),
  /**
   * A text message above MAX_MESSAGE_BYTES. An application limit on well-formed
   * frames, not a protocol failure: the client gets the bye, so it knows which of
   * its messages were counted.
   */
  messageTooBig: close(1009, 'message too big', false, 'message_too_big'),
  /** A message in more than MAX_MESSAGE_FRAGMENTS frames (ws's limit on a message's parts). */
  tooManyFragments: close(1009, 'message has too many fragments', false, 'too_many_fragments'),
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
  tooManyInflight: close(1008, 'too many messages awaiting a count', false, 'inflight_limit'),
  /** More messages than MAX_MESSAGES_PER_SECOND allows (a flood): the client must slow down. */
  rateLimited: close(1008, 'message rate limit exceeded', false, 'rate_limited'),
  /** The client stopped reading: more than MAX_BUFFERED_BYTES of replies wait to be written to it. */
  slowConsumer: close(1008, 'client is not reading', false, 'slow_consumer'),
  /** Redis did not confirm a count in time: reconnect later and re-send the message. */
  storeUnavailable: close(1013, 'session store unavailable, retry later', true, 'store_unavailable'),
});

/** One of the closes above (its kind is a literal, so label sets stay closed). */
export type KnownClose = (typeof CLOSE)[keyof typeof CLOSE];
