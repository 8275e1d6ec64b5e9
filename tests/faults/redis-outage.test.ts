import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { range } from '../../tools/harness/clients.js';
import { PlainLoopClient } from '../support/loop-clients.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { storedCount } from '../../tools/harness/session-keys.js';

const HEARTBEAT_INTERVAL_MS = 300;

describe('Redis outage', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let replicas: ReplicaProcess[];

  before(async () => {
    redis = await RedisServer.start();
    const env = { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS), REDIS_COMMAND_TIMEOUT_MS: '1000' };
    replicas = await Promise.all([ReplicaProcess.start(redis, env), ReplicaProcess.start(redis, env)]);
  });

  after(async () => {
    inspect?.disconnect();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.destroy();
  });

  it('survives a Redis restart under traffic: 1013 then resume, no crash, no count lost, repeated or going backwards', async () => {
    const clients = range(1, 20).map(() => new PlainLoopClient(replicas.map((replica) => replica.wsUrl)));
    for (const client of clients) client.start();
    await sleep(500);
    const beforeOutage = clients.map((client) => client.counts.length);
    assert.ok(beforeOutage.every((n) => n > 0), 'traffic flows before the outage');

    await redis.stop();
    for (const replica of replicas) {
      await eventually(async () => (await replica.probe('/readyz')) === 503, 'readiness to drop with Redis', 3000);
      const body = (await (await fetch(`${replica.httpUrl}/readyz`)).json()) as { reasons: string[] };
      assert.ok(body.reasons.includes('redis'), JSON.stringify(body));
      assert.equal(await replica.metric('wschat_redis_connected'), 0);
    }
    // Longer than the ~1 s for which ioredis holds commands, so clients see the 1013 path.
    await sleep(2000);
    const restarted = Date.now();
    await redis.resume();
    for (const replica of replicas) await replica.waitReady(5000);
    await sleep(1500);
    await Promise.all(clients.map((client) => client.stop()));

    for (const replica of replicas) {
      assert.equal(replica.stderr, '', 'nothing on stderr');
      assert.equal(replica.events('unhandled_rejection').length, 0);
    }
    inspect = redis.client();
    for (const [index, client] of clients.entries()) {
      const { counts } = client;
      for (let i = 1; i < counts.length; i += 1) {
        assert.ok(counts[i]! > counts[i - 1]!, `session ${index}: ${counts[i - 1]} then ${counts[i]}`);
      }
      assert.ok(counts.length > beforeOutage[index]!, `session ${index} made progress after the restart`);
      // Messages that Redis could not confirm in time end in bye + 1013 ("retry later"), nothing else.
      assert.ok(client.closes.length > 0, `session ${index} felt the outage`);
      assert.deepEqual(new Set(client.closes), new Set([1013]), `session ${index}: ${client.closes.join(',')}`);
      const stored = (await storedCount(inspect, client.session)) ?? 0;
      assert.ok(stored >= counts.at(-1)!, `session ${index}: saw ${counts.at(-1)}, Redis has ${stored}`);
    }
    const ticksAfter = replicas
      .flatMap((replica) => replica.events('heartbeat_won'))
      .filter((line) => Date.parse(String(line.ts)) > restarted);
    assert.ok(ticksAfter.length >= 3, `heartbeat resumed: ${ticksAfter.length} ticks won after the restart`);
  });
});
