/**
 * SessionConnection's one status, in-process: open -> closing -> closed -> gone
 * along each close path, never backwards, and what each state lets out (a
 * ManualStore the test answers by hand, a RecordingSink that keeps every write).
 */
import assert from 'node:assert/strict';
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { ABNORMAL_CLOSURE, SessionConnection, type ConnectionStatus } from '../../services/gateway/session-connection.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { ManualStore, settled } from '../support/manual-store.js';
import { RecordingSink } from '../support/recording-sink.js';
import { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';

function harness(): { connection: SessionConnection; store: ManualStore; sink: RecordingSink } {
  const store = new ManualStore();
  const sink = new RecordingSink();
  const connection = new SessionConnection(randomSessionId(), sink, 'unit', {
    store,
    metrics: new Metrics(),
    logger: createLogger({ level: 'error', replica: 'unit', version: 'blue' }),
    maxMessageBytes: 1024,
    maxInflight: 64,
    maxMessagesPerSecond: 0,
    maxBufferedBytes: 1000,
  });
  return { connection, store, sink };
}

/** The status as `state` or `state code` (the reason's close code). */
function described(status: ConnectionStatus): string {
  if (status.state === 'open') return 'open';
  return status.reason === undefined ? status.state : `${status.state} ${status.reason.code}`;
}

describe('SessionConnection status (unit)', () => {
  it('a bye close: open, closing while a count awaits Redis, closed once the bye went, gone when the transport reports it', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    store.opens[0]!.resolve({ count: 0, resumed: false });
    connection.receive(1);
    await settled();
    assert.equal(described(connection.status), 'open');

    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'closing 1001');
    connection.receive(1);
    assert.equal(store.increments.length, 1, 'closing: a new message starts no increment');
    connection.sendHeartbeat(new HeartbeatPacket('ts'));
    assert.deepEqual(sink.events, [], 'closing: no heartbeat');

    store.nthIncrement(1).resolve(1);
    await settled();
    assert.equal(described(connection.status), 'closed 1001');
    assert.deepEqual(sink.events, ['count 1', 'bye 1', 'close 1001']);

    connection.transportClosed(1001);
    assert.equal(described(connection.status), 'gone 1001', 'gone keeps the server close');
  });

  it('a fail close takes over from a waiting bye close: closed at once with its own reason, nothing after it', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    store.opens[0]!.resolve({ count: 0, resumed: false });
    connection.receive(1);
    connection.close(CLOSE.messageTooBig);
    connection.close(CLOSE.protocolError);
    assert.equal(described(connection.status), 'closed 1002');
    store.nthIncrement(1).resolve(1);
    await settled();
    assert.deepEqual(sink.events, ['close 1002'], 'no count and no bye after the close frame');
    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'closed 1002', 'a later close changes nothing');
  });

  it('a client that closes first: straight from open to gone, with no server close', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    connection.transportClosed(1000);
    assert.equal(described(connection.status), 'gone');
    connection.close(CLOSE.shuttingDown);
    assert.equal(described(connection.status), 'gone', 'no close once the transport is gone');
    store.opens[0]!.resolve({ count: 4, resumed: true });
    await settled();
    assert.deepEqual(sink.events, [], 'nothing is written to a gone transport');
  });

  it('no bye before the session is known: a close decided while the open fails sends only the close frame', async () => {
    const { connection, store, sink } = harness();
    connection.open();
    connection.close(CLOSE.shuttingDown);
    store.opens[0]!.reject(new Error('redis down'));
    await settled();
    assert.deepEqual(sink.events, ['close 1001']);
    connection.transportClosed(ABNORMAL_CLOSURE);
    assert.equal(described(connection.status), 'gone 1001');
  });
});
