import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { PlainClient, range, SocketIoClient } from '../tools/harness/clients.js';
import { silentWebSocket } from './support/raw-websocket.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../tools/harness/processes.js';

const MAX_INFLIGHT = 4;

describe('connection limits', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let replica: ReplicaProcess;

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
    replica = await ReplicaProcess.start(redis, {
      MAX_INFLIGHT_PER_CONNECTION: String(MAX_INFLIGHT),
      HEARTBEAT_INTERVAL_MS: '300',
    });
  });

  afterEach(async () => {
    await inspect.call('CLIENT', 'UNPAUSE');
  });

  after(async () => {
    await replica?.stop();
    inspect?.disconnect();
    await redis?.destroy();
  });

  describe('messages awaiting Redis', () => {
    it('keeps at most the limit awaiting Redis and answers every message, in order, once Redis catches up (liveness pings do not count the pause against it)', async () => {
      const client = await PlainClient.connect(replica.wsUrl);
      await inspect.call('CLIENT', 'PAUSE', '800', 'WRITE');
      client.sendMany(50);
      await eventually(async () => (await replica.metric('wschat_messages_inflight')) === MAX_INFLIGHT, 'the bound reached');
      await sleep(100);
      assert.equal(await replica.metric('wschat_messages_inflight'), MAX_INFLIGHT, 'never above the bound');
      assert.deepEqual(await client.waitForCounts(50, 5000), range(1, 50));
      assert.equal(client.closed, undefined);
      client.close();
    });

    it('closes a socket.io client over the limit with bye (socket.io cannot stop reading one client)', async () => {
      const client = await SocketIoClient.connect(replica.httpUrl);
      client.send('first');
      await client.waitForCounts(1);
      await inspect.call('CLIENT', 'PAUSE', '500', 'WRITE');
      client.sendMany(MAX_INFLIGHT + 1);
      assert.equal(await client.waitDisconnected(), 'io server disconnect');
      // The messages within the limit are answered before the bye; the one over it is not counted.
      assert.deepEqual(client.replies(), [...range(1, MAX_INFLIGHT + 1).map((count) => ({ count })), { bye: true, total: 5, code: 4501, reason: 'too many messages awaiting a count' }]);
      assert.ok((await replica.metric('wschat_errors_total', { kind: 'inflight_limit' })) >= 1);
    });
  });

  describe('liveness', () => {
    it('drops a plain peer that stops answering pings within two intervals', async () => {
      const connected = Date.now();
      const silent = await silentWebSocket(replica.port);
      let closedAt = 0;
      silent.on('close', () => (closedAt = Date.now()));
      await eventually(() => closedAt > 0, 'the silent peer to be dropped', 2000);
      // Two 300 ms intervals, plus the timer's phase and scheduling slack.
      assert.ok(closedAt - connected < 2 * 300 + 400, `dropped after ${closedAt - connected} ms`);
      await eventually(async () => (await replica.metric('wschat_connections_active', { transport: 'plain' })) === 0, 'the peer dropped');
      assert.ok((await replica.metric('wschat_errors_total', { kind: 'peer_unresponsive' })) >= 1);
    });

    it('keeps a peer that answers pings', async () => {
      const client = await PlainClient.connect(replica.wsUrl);
      await sleep(1000);
      client.send('still here');
      assert.deepEqual(await client.waitForCounts(1), [1]);
      assert.equal(client.closed, undefined);
      client.close();
    });
  });
});
