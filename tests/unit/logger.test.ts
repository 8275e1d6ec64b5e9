/**
 * The log lines' shape, in-process (a stream stands in for stdout): what a line says
 * of a session is a tag, never the bearer id itself.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, errorFields, sessionTag } from '../../services/gateway/logger.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { settled } from '../support/manual-store.js';
import { sessionHarness } from '../support/session-harness.js';

describe('logger', () => {
  it('tags a session by the first 8 characters of its id, never the whole id', () => {
    const id = randomSessionId();
    assert.equal(sessionTag(id), `${id.slice(0, 8)}…`);
    assert.equal(sessionTag('0b9f3a52-7c1e-4d2a-9f00-6a1b2c3d4e5f'), '0b9f3a52…');
  });

  it("writes a connection's lines with its session tag, its request id and the replica's fields, and never the id", async () => {
    const stream = new PassThrough();
    const lines: string[] = [];
    stream.on('data', (chunk: Buffer) => lines.push(...String(chunk).split('\n').filter(Boolean)));
    const logger = createLogger({ level: 'info', replica: 'unit-r', version: 'green', stream });
    const { connection, store } = sessionHarness({ logger });
    connection.open();
    store.opens[0]!.resolve({ count: 0, resumed: false });
    await settled();
    const line = JSON.parse(lines[0] ?? '{}') as Record<string, unknown>;
    assert.deepEqual(
      { message: line.message, session: line.session, request_id: line.request_id, replica: line.replica, version: line.version },
      { message: 'connection opened', session: sessionTag(connection.sessionId), request_id: 'unit', replica: 'unit-r', version: 'green' },
    );
    for (const text of lines) assert.ok(!text.includes(connection.sessionId), `a line carries the whole session id: ${text}`);
  });

  it('turns an error into its message and code, and anything else into a string', () => {
    assert.deepEqual(errorFields(new Error('boom')), { error: 'boom' });
    assert.deepEqual(errorFields(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), { error: 'refused', error_code: 'ECONNREFUSED' });
    assert.deepEqual(errorFields('plain'), { error: 'plain' });
  });
});
