import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';
import { POLLING_DISABLED } from '../../services/gateway/socketio-gateway.js';
import { PlainClient, range, SocketIoClient } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';

describe('socket.io gateway', () => {
  let redis: RedisServer;
  let first: ReplicaProcess;
  let second: ReplicaProcess;
  const clients: Array<SocketIoClient | PlainClient> = [];

  function track<T extends SocketIoClient | PlainClient>(client: T): T {
    clients.push(client);
    return client;
  }

  before(async () => {
    redis = await RedisServer.start();
    [first, second] = await Promise.all([
      ReplicaProcess.start(redis, { MAX_MESSAGE_BYTES: '1024' }),
      ReplicaProcess.start(redis, { MAX_MESSAGE_BYTES: '1024' }),
    ]);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  after(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
    await redis?.destroy();
  });

  it('answers each message with a count event and the ack, in order', async () => {
    const client = track(await SocketIoClient.connect(first.httpUrl));
    client.sendMany(20);
    assert.deepEqual(await client.waitForCounts(20), range(1, 20));
    await eventually(() => client.acks.length === 20, '20 acks');
    assert.deepEqual(client.acks, range(1, 20));
    for (const frame of client.replies()) assert.deepEqual(Object.keys(frame), ['count']);
  });

  it('tells the client its session id on connect', async () => {
    const client = track(await SocketIoClient.connect(first.httpUrl));
    assert.ok(isValidSessionId(client.session));
  });

  it('resumes a session across transports and replicas, both ways', async () => {
    const plain = track(await PlainClient.connect(first.wsUrl));
    plain.sendMany(2);
    await plain.waitForCounts(2);
    plain.close();
    await plain.waitClosed();

    const socketIo = track(await SocketIoClient.connect(second.httpUrl, plain.sessionId));
    assert.equal(socketIo.session, plain.sessionId);
    socketIo.sendMany(2);
    assert.deepEqual(await socketIo.waitForCounts(2), [3, 4]);
    socketIo.close();

    const back = track(await PlainClient.connect(first.wsUrl, plain.sessionId));
    back.send('again');
    assert.deepEqual(await back.waitForCounts(1), [5]);
  });

  it('accepts the session in the query as well as in auth', async () => {
    const session = randomSessionId();
    const client = track(await SocketIoClient.connect(`${first.httpUrl}?session=${session}`));
    assert.equal(client.session, session);
  });

  it('refuses a malformed session with connect_error "invalid session id" and code 4500', async () => {
    await assert.rejects(SocketIoClient.connect(first.httpUrl, 'NOT-A-UUID'), (error: Error & { data?: unknown }) => {
      assert.equal(error.message, 'invalid session id');
      assert.deepEqual(error.data, { code: 4500, reason: 'invalid session id' });
      return true;
    });
  });

  it('sends bye then disconnects (no auto-reconnect) on a non-string message', async () => {
    const client = track(await SocketIoClient.connect(first.httpUrl));
    client.sendMany(2);
    client.send({ not: 'a string' });
    assert.equal(await client.waitDisconnected(), 'io server disconnect');
    assert.deepEqual(client.replies(), [{ count: 1 }, { count: 2 }, { bye: true, total: 2, code: 1003, reason: 'binary frames are not supported' }]);
  });

  it('counts a message within MAX_MESSAGE_BYTES however much JSON escaping grows its packet', async () => {
    const client = track(await SocketIoClient.connect(first.httpUrl));
    client.send('"'.repeat(1000));
    client.send('\u0001'.repeat(1000));
    assert.deepEqual(await client.waitForCounts(2), [1, 2]);
    assert.equal(client.disconnectReason, undefined);
  });

  it('sends bye then disconnects on a message over MAX_MESSAGE_BYTES', async () => {
    const client = track(await SocketIoClient.connect(first.httpUrl));
    client.send('x'.repeat(1025));
    assert.equal(await client.waitDisconnected(), 'io server disconnect');
    assert.deepEqual(client.replies(), [{ bye: true, total: 0, code: 1009, reason: 'message too big' }]);
  });

  describe('a stock socket.io-client (default transports: polling first)', () => {
    interface Outcome {
      connected: boolean;
      /** connect_error's message, description (the HTTP status) and the response body it carries. */
      error?: { message: string; description: unknown; body: string | undefined };
    }

    /** Connects with socket.io-client's defaults (only reconnection off) and resolves with the outcome. */
    function connectStock(url: string): Promise<Outcome> {
      const socket = io(url, { reconnection: false, forceNew: true });
      return new Promise((resolve) => {
        socket.once('connect', () => {
          socket.emit('message', 'hi', (reply: { count: number }) => {
            socket.close();
            resolve({ connected: reply.count === 1 });
          });
        });
        socket.once('connect_error', (error: Error & { description?: unknown; context?: { responseText?: string } }) => {
          // Read before close(), which aborts the request and empties its body.
          const body = error.context?.responseText;
          socket.close();
          resolve({ connected: false, error: { message: error.message, description: error.description, body } });
        });
      });
    }

    it('gets a 403 that says polling is off and what to do, when SOCKETIO_TRANSPORTS is websocket (the default)', async () => {
      const before = await first.metric('wschat_errors_total', { kind: 'socketio_polling_refused' });
      const { connected, error } = await connectStock(first.httpUrl);
      assert.equal(connected, false);
      assert.deepEqual([error?.message, error?.description], ['xhr poll error', 403]);
      assert.deepEqual(JSON.parse(error?.body ?? '{}'), { code: 4, message: POLLING_DISABLED });
      assert.equal(await first.metric('wschat_errors_total', { kind: 'socketio_polling_refused' }), before + 1);
    });

    it('connects and counts when SOCKETIO_TRANSPORTS allows polling', async () => {
      const polling = await ReplicaProcess.start(redis, { SOCKETIO_TRANSPORTS: 'websocket,polling' });
      try {
        assert.deepEqual(await connectStock(polling.httpUrl), { connected: true });
      } finally {
        await polling.stop();
      }
    });
  });
});
