/**
 * What ws's frame parser reports, as the close the server sends. ws names each
 * rejection with a stable `code` (lib/receiver.js); the status code it suggests
 * is not enough on its own: it uses 1009 both for a message over maxPayload (an
 * application limit) and for a 64-bit length over 2^53 - 1, which includes every
 * length with its top bit set (RFC 6455 §5.2: that bit MUST be 0, so a protocol
 * error). No client can send 2^53 bytes, so the whole range is a protocol error.
 */
import { CLOSE, type KnownClose } from '../../shared/protocol/closes.js';

/** ws's parser error: an Error with its stable code (e.g. WS_ERR_INVALID_OPCODE). */
export type ReceiverError = Error & { code?: string };

const BY_CODE: ReadonlyMap<string, KnownClose> = new Map<string, KnownClose>([
  ['WS_ERR_INVALID_UTF8', CLOSE.invalidUtf8],
  ['WS_ERR_UNSUPPORTED_MESSAGE_LENGTH', CLOSE.messageTooBig],
  // ws also uses this code for 262,144 chunks buffered unparsed, which needs the
  // receiver to fall that far behind a socket; a message of too many parts either way.
  ['WS_ERR_TOO_MANY_BUFFERED_PARTS', CLOSE.tooManyFragments],
]);

/** Everything else ws rejects breaks RFC 6455 framing: reserved opcode or RSV bit, masking, continuation, control-frame rules, close code, huge length. */
export function closeForReceiverError(error: ReceiverError): KnownClose {
  return BY_CODE.get(error.code ?? '') ?? CLOSE.protocolError;
}
