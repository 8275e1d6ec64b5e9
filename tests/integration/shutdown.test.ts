import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { PlainClient, range, SocketIoClient } from '../../tools/harness/clients.js';
import { sendTextFrame, silentWebSocket } from '../support/raw-websocket.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';

const SHUTDOWN_TIMEOUT_MS = 4000;

describe('graceful shutdown', () => {
  let redis: RedisServer;
  let inspect: Redis;

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
  });

  after(async () => {
    inspect?.disconnect();
    await redis?.destroy();
  });

  it('answers in-flight messages, says bye with the total, closes 1001 and exits 0 within the bound', async () => {
    const replica = await ReplicaProcess.start(redis, { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    const plain = await Promise.all(range(1, 80).map(() => PlainClient.connect(replica.wsUrl)));
    const socketIo = await Promise.all(range(1, 20).map(() => SocketIoClient.connect(replica.httpUrl)));
    const everyone = [...plain, ...socketIo];
    for (const client of everyone) client.sendMany(2);
    await Promise.all(everyone.map((client) => client.waitForCounts(2)));
    // A client that completed its handshake but will never answer the close frame.
    const stubborn = await silentWebSocket(replica.port);

    // Hold every write in Redis so the next messages are truly in flight when SIGTERM lands.
    await inspect.call('CLIENT', 'PAUSE', '800', 'WRITE');
    for (const client of everyone) client.sendMany(3);
    await sleep(150);
    const signalled = Date.now();
    replica.signal('SIGTERM');

    await eventually(async () => (await replica.probe('/readyz')) === 503, '/readyz to answer 503 while draining', 2000);
    await Promise.all(plain.map((client) => client.waitClosed()));
    await Promise.all(socketIo.map((client) => client.waitDisconnected()));
    const exit = await replica.exited;
    const took = Date.now() - signalled;
    stubborn.destroy();

    const counts = range(1, 5).map((count) => ({ count }));
    for (const client of plain) assert.deepEqual(client.replies(), [...counts, { bye: true, total: 5 }]);
    // socket.io has no close frame: its bye names the close.
    for (const client of socketIo) assert.deepEqual(client.replies(), [...counts, { bye: true, total: 5, code: 1001, reason: 'server shutting down' }]);
    for (const client of plain) assert.deepEqual(client.closed, { code: 1001, reason: 'server shutting down' });
    // A transport close is what makes socket.io clients reconnect by themselves.
    for (const client of socketIo) assert.equal(client.disconnectReason, 'transport close');

    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(took < SHUTDOWN_TIMEOUT_MS, `exit took ${took} ms`);
    const [begin] = replica.events('shutdown_begin');
    const [complete] = replica.events('shutdown_complete');
    assert.equal(begin?.connections, 101);
    assert.equal(complete?.terminated, 1, 'the stubborn socket is dropped at the deadline');
    assert.ok(Number(complete?.duration_ms) < SHUTDOWN_TIMEOUT_MS);
  });

  it('leaves its drain time in Redis for the replicas that outlive it to expose', async () => {
    const survivor = await ReplicaProcess.start(redis);
    const leaving = await ReplicaProcess.start(redis);
    assert.deepEqual(await leaving.stop(), { code: 0, signal: null });
    // Collected on the survivor's next start-up or tick; a new replica collects at start.
    const collector = await ReplicaProcess.start(redis);
    const collected =
      (await collector.metric('wschat_shutdown_duration_seconds_count')) +
      (await survivor.metric('wschat_shutdown_duration_seconds_count'));
    assert.ok(collected >= 1, 'the drain time reached a running replica');
    assert.equal(await inspect.llen('wschat:shutdowns'), 0, 'each report is collected once');
    await Promise.all([survivor.stop(), collector.stop()]);
  });

  it('also drains on SIGINT, and a second signal does not cut the drain short', async () => {
    const replica = await ReplicaProcess.start(redis);
    const client = await PlainClient.connect(replica.wsUrl);
    client.send('one');
    await client.waitForCounts(1);
    replica.signal('SIGINT');
    replica.signal('SIGTERM');
    assert.deepEqual(await client.waitClosed(), { code: 1001, reason: 'server shutting down' });
    assert.deepEqual(client.replies(), [{ count: 1 }, { bye: true, total: 1 }]);
    assert.deepEqual(await replica.exited, { code: 0, signal: null });
  });

  it('forces exit 1 with a log line when the drain overruns SHUTDOWN_TIMEOUT_MS', async () => {
    const replica = await ReplicaProcess.start(redis, { SHUTDOWN_TIMEOUT_MS: '3000', REDIS_COMMAND_TIMEOUT_MS: '1000' });
    // The stubborn socket holds the drain for its handshake budget (2 s); with writes
    // paused, reporting the drain time to Redis then waits 1 s more: past the deadline.
    const stubborn = await silentWebSocket(replica.port);
    await inspect.call('CLIENT', 'PAUSE', '6000', 'WRITE');
    try {
      const signalled = Date.now();
      replica.signal('SIGTERM');
      const exit = await replica.exited;
      const took = Date.now() - signalled;
      assert.deepEqual(exit, { code: 1, signal: null });
      assert.ok(took < 3000 + 200, `exit took ${took} ms`);
      assert.equal(replica.events('shutdown_forced').length, 1, 'the forced exit is logged');
    } finally {
      stubborn.destroy();
      await inspect.call('CLIENT', 'UNPAUSE');
    }
  });

  it('drops peers that never answer their close frame, on both endpoints, and still exits 0', async () => {
    const replica = await ReplicaProcess.start(redis, { SHUTDOWN_TIMEOUT_MS: '3000', REDIS_COMMAND_TIMEOUT_MS: '1000' });
    const plainSession = await silentWebSocket(replica.port);
    const refusedSession = await silentWebSocket(replica.port, '/ws/chat/?session=not-a-uuid');
    const socketIo = await silentWebSocket(replica.port, '/socket.io/?EIO=4&transport=websocket');
    sendTextFrame(socketIo, '40');
    await eventually(async () => (await replica.metric('wschat_connections_active', { transport: 'socketio' })) === 1, 'the socket.io session');
    const signalled = Date.now();
    replica.signal('SIGTERM');
    const exit = await replica.exited;
    for (const socket of [plainSession, refusedSession, socketIo]) socket.destroy();
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(Date.now() - signalled < 3000, 'within SHUTDOWN_TIMEOUT_MS');
    const [complete] = replica.events('shutdown_complete');
    assert.equal(complete?.terminated, 3, 'all three were cut at the handshake deadline');
  });

  it('refuses a socket.io connect that arrives during the drain on an engine.io connection opened before', async () => {
    const replica = await ReplicaProcess.start(redis, { SHUTDOWN_TIMEOUT_MS: '3000', REDIS_COMMAND_TIMEOUT_MS: '1000' });
    const engine = await silentWebSocket(replica.port, '/socket.io/?EIO=4&transport=websocket');
    const holder = await silentWebSocket(replica.port);
    let received = '';
    engine.on('data', (chunk: Buffer) => (received += chunk.toString('latin1')));
    replica.signal('SIGTERM');
    await eventually(async () => (await replica.probe('/readyz')) === 503, 'draining', 2000);
    sendTextFrame(engine, '40');
    await eventually(() => received.includes('44{'), 'the connect_error packet', 2000);
    assert.match(received, /44\{"message":"server shutting down","data":\{"code":1001,"reason":"server shutting down"\}\}/);
    assert.equal(await replica.metric('wschat_connections_opened_total', { transport: 'socketio' }), 0);
    for (const socket of [engine, holder]) socket.destroy();
    assert.deepEqual(await replica.exited, { code: 0, signal: null });
  });

  it('refuses new WebSocket upgrades with 503 while draining', async () => {
    const replica = await ReplicaProcess.start(redis, { SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    const stubborn = await silentWebSocket(replica.port);
    replica.signal('SIGTERM');
    await eventually(async () => (await replica.probe('/readyz')) === 503, 'draining', 2000);
    await assert.rejects(PlainClient.connect(replica.wsUrl), /HTTP 503/);
    stubborn.destroy();
    assert.deepEqual(await replica.exited, { code: 0, signal: null });
  });
});
