/**
 * What ws's frame parser rejects, as the close the plain endpoint sends: the codes
 * that name an application limit or bad text get their own close, every other
 * rejection is a broken frame (1002), whatever status code ws suggested with it.
 */
import assert from 'node:assert/strict';
import { closeForReceiverError, type ReceiverError } from '../../services/gateway/receiver-errors.js';
import { CLOSE } from '../../shared/protocol/closes.js';

const parserError = (code: string | undefined): ReceiverError => Object.assign(new Error('parser'), { code });

describe('receiver errors', () => {
  it('closes bad UTF-8 with 1007, an oversized message with 1009 and too many fragments with 4504', () => {
    assert.equal(closeForReceiverError(parserError('WS_ERR_INVALID_UTF8')), CLOSE.invalidUtf8);
    assert.equal(closeForReceiverError(parserError('WS_ERR_UNSUPPORTED_MESSAGE_LENGTH')), CLOSE.messageTooBig);
    assert.equal(closeForReceiverError(parserError('WS_ERR_TOO_MANY_BUFFERED_PARTS')), CLOSE.tooManyFragments);
  });

  it('closes every other rejection as a protocol error (1002), a length over 2^53 - 1 and an error without a code included', () => {
    for (const code of ['WS_ERR_INVALID_OPCODE', 'WS_ERR_UNEXPECTED_RSV_1', 'WS_ERR_EXPECTED_MASK', 'WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH', '', undefined]) {
      assert.equal(closeForReceiverError(parserError(code)), CLOSE.protocolError, String(code));
    }
  });
});
