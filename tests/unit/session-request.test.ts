/**
 * The session a connection asks for, in-process: the one rule both endpoints
 * apply, where each finds the id in its request, and what a refusal counts and logs.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';
import {
  recordInvalidSession,
  resolveSessionId,
  sessionInHandshake,
  sessionInQuery,
} from '../../services/gateway/session-request.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId } from '../../shared/protocol/session-id.js';
import { metricValue } from '../support/in-process.js';

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

  describe('sessionInQuery (the plain endpoint)', () => {
    it('reads nothing, the one value, or every value of a repeated ?session=', () => {
      assert.equal(sessionInQuery('/ws/chat/'), undefined);
      assert.equal(sessionInQuery(undefined), undefined);
      assert.equal(sessionInQuery(`/ws/chat/?x=1&session=${ID}`), ID);
      assert.equal(sessionInQuery('/ws/chat/?session='), '');
      assert.deepEqual(sessionInQuery(`/ws/chat/?session=${ID}&session=${ID}`), [ID, ID]);
    });

    it('so a repeated ?session= is refused even when each value is valid', () => {
      assert.equal(resolveSessionId(sessionInQuery(`/ws/chat/?session=${ID}&session=${ID}`)), undefined);
      assert.equal(resolveSessionId(sessionInQuery(`/ws/chat/?session=${ID}`)), ID);
    });
  });

  describe('sessionInHandshake (socket.io)', () => {
    it('prefers auth.session over ?session=', () => {
      assert.equal(sessionInHandshake({ session: ID }, 'from-query'), ID);
      assert.equal(sessionInHandshake({ session: 'bad' }, ID), 'bad', 'an invalid auth.session is not replaced by the query');
    });

    it('falls back to ?session= when auth carries no session (absent, null, not an object)', () => {
      for (const auth of [{}, { session: undefined }, { session: null }, null, undefined, 'text']) {
        assert.equal(sessionInHandshake(auth, ID), ID, JSON.stringify(auth));
      }
      assert.equal(sessionInHandshake({}, undefined), undefined);
    });
  });

  describe('recordInvalidSession', () => {
    it('counts one invalid_session error and logs the refusal with its close, request id and transport', async () => {
      const metrics = new Metrics();
      const stream = new PassThrough();
      const logger = createLogger({ level: 'info', replica: 'unit', version: 'blue', stream });
      recordInvalidSession({ metrics, logger }, 'rid-7', 'socketio');
      const line = JSON.parse(String(await new Promise<Buffer>((resolve) => stream.once('data', resolve)))) as Record<string, unknown>;
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: CLOSE.invalidSession.kind }), 1);
      assert.deepEqual(
        { message: line.message, event: line.event, code: line.code, request_id: line.request_id, transport: line.transport },
        { message: 'invalid session id refused', event: 'refused', code: CLOSE.invalidSession.code, request_id: 'rid-7', transport: 'socketio' },
      );
    });
  });
});
