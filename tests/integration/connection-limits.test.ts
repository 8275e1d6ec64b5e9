import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { Redis } from 'ioredis';
import WebSocket from 'ws';
import { PlainClient, range, SocketIoClient } from '../../tools/harness/clients.js';
import { silentWebSocket } from '../support/raw-websocket.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';

const MAX_INFLIGHT = 4;
const INTERVAL_MS = 300;

/** An open plain client that notes the wall-clock time of every ping it gets (ws answers each with a pong). */
async function pingRecorder(url: string): Promise<{ client: PlainClient; pings: number[] }> {
  const client = await PlainClient.connect(url);
  const pings: number[] = [];
  client.ws.on('ping', () => pings.push(Date.now()));
  return { client, pings };
}

describe('connection limits', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let replica: ReplicaProcess;

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
    replica = await ReplicaProcess.start(redis, {
      MAX_INFLIGHT_PER_CONNECTION: String(MAX_INFLIGHT),
      HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS),
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
      // Two intervals, plus the timer's phase and scheduling slack.
      assert.ok(closedAt - connected < 2 * INTERVAL_MS + 400, `dropped after ${closedAt - connected} ms`);
      await eventually(async () => (await replica.metric('wschat_connections_active', { transport: 'plain' })) === 0, 'the peer dropped');
      assert.ok((await replica.metric('wschat_errors_total', { kind: 'peer_unresponsive' })) >= 1);
    });

    it('spreads a sweep over a quarter of the interval, half-way between ticks: the fleet\'s pings are no single burst', async () => {
      const recorders = await Promise.all(range(1, 64).map(() => pingRecorder(replica.wsUrl)));
      const allOpen = Date.now();
      await sleep(4 * INTERVAL_MS);
      for (const { client } of recorders) client.close();
      // Sweeps start 3/8 of an interval past its wall-clock multiples and span a quarter of it;
      // a ping belongs to the sweep whose start is nearest (a timer may fire a little early
      // on the wall clock, and a slice late on a busy box: half an interval either way).
      const phase = (INTERVAL_MS * 3) / 8;
      const sweeps = new Map<number, number[]>();
      for (const { pings } of recorders) {
        for (const at of pings) {
          const start = Math.round((at - phase) / INTERVAL_MS) * INTERVAL_MS + phase;
          if (start <= allOpen) continue;
          const sweep = sweeps.get(start) ?? [];
          sweep.push(at);
          sweeps.set(start, sweep);
        }
      }
      const whole = [...sweeps.values()].filter((pings) => pings.length === recorders.length);
      assert.ok(whole.length >= 2, `sweeps that pinged all ${recorders.length} sockets once: ${whole.length} (${[...sweeps.values()].map((pings) => pings.length).join(', ')})`);
      for (const pings of whole) {
        const spanMs = Math.max(...pings) - Math.min(...pings);
        // One burst writes 64 pings within a few ms; 32 slices spread over a quarter interval take ~75 ms.
        assert.ok(spanMs >= 30, `a sweep's pings arrived within ${spanMs} ms of each other`);
      }
    });

    it('gives a late pong a whole interval, even when the peer moved to an earlier slice of the sweep', async () => {
      const intervalMs = 2000;
      const own = await ReplicaProcess.start(redis, { HEARTBEAT_INTERVAL_MS: String(intervalMs) });
      try {
        // 31 sockets ahead of it: the late peer is alone in the sweep's last slice, pinged
        // nearly a quarter interval after the sweep starts.
        const ahead = await Promise.all(range(1, 31).map(() => PlainClient.connect(own.wsUrl)));
        const late = new WebSocket(own.wsUrl, { autoPong: false });
        await once(late, 'open');
        let pings = 0;
        late.on('ping', () => {
          pings += 1;
          setTimeout(() => late.pong(), 0.88 * intervalMs);
        });
        await eventually(() => pings === 1, 'the first ping', 2 * intervalMs);
        // Alone now, so the next sweep checks it in its first slice, before its pong is due.
        for (const client of ahead) client.close();
        await sleep(3 * intervalMs);
        assert.equal(late.readyState, WebSocket.OPEN, 'the late peer is still connected');
        assert.ok(pings >= 2, `pings after its late pong: ${pings}`);
        assert.equal(await own.metric('wschat_errors_total', { kind: 'peer_unresponsive' }), 0);
        late.close();
      } finally {
        await own.stop();
      }
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
