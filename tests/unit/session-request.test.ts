/**
 * The session a connection asks for, in-process: the one rule both endpoints
 * apply (the id, and where the client resumes), where each finds them in its
 * request, and what a refusal counts and logs.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { askInHandshake, askInQuery, recordRefusal, resolveRequest, resolveSessionId } from '../../services/gateway/session-request.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId } from '../../shared/protocol/session-id.js';
import { metricValue } from '../support/in-process.js';

const MAX_PENDING = 64;
const ID = '0b9f3a52-7c1e-4d2a-9f00-6a1b2c3d4e5f';

describe('session request', () => {
  describe('resolveSessionId', () => {
    it('serves a fresh uuid, a new one each time, to a client that asked for none', () => {
      const [first, second] = [resolveSessionId(undefined), resolveSessionId(undefined)];
      assert.equal(isValidSessionId(first), true, String(first));
      assert.equal(isValidSessionId(second), true, String(second));
      assert.notEqual(first, second);
    });

    it('serves a canonical id as it is', () => {
      assert.equal(resolveSessionId(ID), ID);
    });

    it('refuses everything else: another spelling, an empty value, a repeated parameter, a non-string', () => {
      for (const requested of [ID.toUpperCase(), ` ${ID}`, '', 'abc', [ID], [ID, ID], 42, null, { session: ID }]) {
        assert.equal(resolveSessionId(requested), undefined, JSON.stringify(requested));
      }
    });
  });

  describe('askInQuery (the plain endpoint)', () => {
    it('reads nothing, the one value, or every value of a repeated ?session=', () => {
      assert.equal(askInQuery('/ws/chat/').session, undefined);
      assert.equal(askInQuery(undefined).session, undefined);
      assert.equal(askInQuery(`/ws/chat/?x=1&session=${ID}`).session, ID);
      assert.equal(askInQuery('/ws/chat/?session=').session, '');
      assert.deepEqual(askInQuery(`/ws/chat/?session=${ID}&session=${ID}`).session, [ID, ID]);
    });

    it('so a repeated ?session= is refused even when each value is valid', () => {
      assert.equal(resolveSessionId(askInQuery(`/ws/chat/?session=${ID}&session=${ID}`).session), undefined);
      assert.equal(resolveSessionId(askInQuery(`/ws/chat/?session=${ID}`).session), ID);
    });
  });

  describe('askInHandshake (socket.io)', () => {
    it('prefers auth.session over ?session=', () => {
      assert.equal(askInHandshake({ session: ID }, { session: 'from-query' }).session, ID);
      assert.equal(askInHandshake({ session: 'bad' }, { session: ID }).session, 'bad', 'an invalid auth.session is not replaced by the query');
    });

    it('falls back to ?session= when auth carries no session (absent, null, not an object)', () => {
      for (const auth of [{}, { session: undefined }, { session: null }, null, undefined, 'text']) {
        assert.equal(askInHandshake(auth, { session: ID }).session, ID, JSON.stringify(auth));
      }
      assert.equal(askInHandshake({}, { session: undefined }).session, undefined);
    });
  });

  describe('resolveRequest: where the client resumes', () => {
    it('refuses more pending messages than a connection may have in flight (4506)', () => {
      assert.deepEqual(resolveRequest({ session: ID, last: '0', pending: String(MAX_PENDING) }, MAX_PENDING), {
        sessionId: ID,
        resume: { last: 0, pending: MAX_PENDING },
      });
      for (const pending of [String(MAX_PENDING + 1), '60000000', MAX_PENDING + 1]) {
        assert.deepEqual(resolveRequest({ session: ID, last: '0', pending }, MAX_PENDING), { refused: CLOSE.invalidResume }, String(pending));
      }
    });

    it('serves a session without a resume position as before', () => {
      assert.deepEqual(resolveRequest({ session: ID, last: undefined, pending: undefined }, MAX_PENDING), { sessionId: ID, resume: undefined });
    });

    it('takes last and pending as whole numbers, in digits or as numbers; pending defaults to 0', () => {
      assert.deepEqual(resolveRequest({ session: ID, last: '41', pending: '3' }, MAX_PENDING), { sessionId: ID, resume: { last: 41, pending: 3 } });
      assert.deepEqual(resolveRequest({ session: ID, last: 0, pending: 2 }, MAX_PENDING), { sessionId: ID, resume: { last: 0, pending: 2 } });
      assert.deepEqual(resolveRequest({ session: ID, last: '7', pending: undefined }, MAX_PENDING), { sessionId: ID, resume: { last: 7, pending: 0 } });
      assert.deepEqual(resolveRequest({ session: ID, last: String(Number.MAX_SAFE_INTEGER), pending: '0' }, MAX_PENDING), {
        sessionId: ID,
        resume: { last: Number.MAX_SAFE_INTEGER, pending: 0 },
      });
    });

    it('refuses any other position with 4506, and a resume without a session to resume', () => {
      for (const last of ['-1', '1.5', '01', '+1', '1e3', ' 1', '', 'x', '9007199254740992', ['1', '2'], -1, 1.5, Number.NaN, null, {}]) {
        assert.deepEqual(resolveRequest({ session: ID, last, pending: undefined }, MAX_PENDING), { refused: CLOSE.invalidResume }, JSON.stringify(last));
      }
      assert.deepEqual(resolveRequest({ session: ID, last: '1', pending: '-2' }, MAX_PENDING), { refused: CLOSE.invalidResume }, 'bad pending');
      assert.deepEqual(resolveRequest({ session: ID, last: undefined, pending: '2' }, MAX_PENDING), { refused: CLOSE.invalidResume }, 'pending alone');
      assert.deepEqual(resolveRequest({ session: undefined, last: '0', pending: undefined }, MAX_PENDING), { refused: CLOSE.invalidResume }, 'no session');
    });

    it('refuses a position sent as a one-element list (a repeated or array-valued field), even one of digits', () => {
      for (const last of [['5'], [5]]) {
        assert.deepEqual(resolveRequest({ session: ID, last, pending: undefined }, MAX_PENDING), { refused: CLOSE.invalidResume }, JSON.stringify(last));
      }
      assert.deepEqual(resolveRequest(askInHandshake({ session: ID, last: ['5'] }, {}), MAX_PENDING), { refused: CLOSE.invalidResume }, 'auth.last');
      assert.deepEqual(resolveRequest({ session: ID, last: '5', pending: ['1'] }, MAX_PENDING), { refused: CLOSE.invalidResume }, 'pending');
    });

    it('refuses a bad session first, with 4500', () => {
      assert.deepEqual(resolveRequest({ session: 'abc', last: 'x', pending: undefined }, MAX_PENDING), { refused: CLOSE.invalidSession });
    });

    it('reads ?last= and ?pending= from the query, and auth.last and auth.pending (else the query) from a handshake', () => {
      assert.deepEqual(askInQuery(`/ws/chat/?session=${ID}&last=4&pending=1`), { session: ID, last: '4', pending: '1' });
      assert.deepEqual(askInHandshake({ session: ID, last: 4 }, { pending: '1', last: '9' }), { session: ID, last: 4, pending: '1' });
    });
  });

  describe('recordRefusal', () => {
    it('counts one invalid_session error and logs the refusal with its close, request id and transport', async () => {
      const metrics = new Metrics();
      const stream = new PassThrough();
      const logger = createLogger({ level: 'info', replica: 'unit', version: 'blue', stream });
      recordRefusal({ metrics, logger }, CLOSE.invalidSession, 'rid-7', 'socketio');
      const line = JSON.parse(String(await new Promise<Buffer>((resolve) => stream.once('data', resolve)))) as Record<string, unknown>;
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: CLOSE.invalidSession.kind }), 1);
      assert.deepEqual(
        { message: line.message, event: line.event, code: line.code, request_id: line.request_id, transport: line.transport },
        { message: 'invalid session id refused', event: 'refused', code: CLOSE.invalidSession.code, request_id: 'rid-7', transport: 'socketio' },
      );
    });
  });
});
