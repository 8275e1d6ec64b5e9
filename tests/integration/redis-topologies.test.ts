/**
 * The tier on Redis Cluster (REDIS_MODE=cluster) and on a Sentinel-managed primary
 * (REDIS_MODE=sentinel), both built from Debian's redis-server on loopback: counts,
 * resume across replicas and transports, the fleet heartbeat once per tick, and
 * (Sentinel) a failover under the replicas' feet.
 */
import assert from 'node:assert/strict';
import { PlainClient, range, SocketIoClient } from '../../tools/harness/clients.js';
import { eventually, freePort, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { RedisClusterSet, RedisSentinelSet } from '../support/redis-topologies.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

const HEARTBEAT_INTERVAL_MS = 400;

async function startReplica(env: Record<string, string>): Promise<ReplicaProcess> {
  const replica = ReplicaProcess.spawn({ ...env, HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS) }, await freePort());
  await replica.waitReady(10_000);
  return replica;
}

/** Every session opens on one replica and resumes on the other, over the other transport. */
async function countsAcrossReplicas(replicas: ReplicaProcess[], sessions: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < sessions; i += 1) {
    const first = await PlainClient.connect(replicas[0]!.wsUrl);
    first.sendMany(2);
    assert.deepEqual(await first.waitForCounts(2), [1, 2]);
    first.close();
    await first.waitClosed();
    const id = first.sessionId!;
    const second = await SocketIoClient.connect(replicas[1]!.httpUrl, id);
    second.send('again');
    assert.deepEqual(await second.waitForCounts(1), [3], `session ${id} resumes at 3 on the other replica and transport`);
    second.close();
    ids.push(id);
  }
  return ids;
}

/** A plain socket on one replica and a socket.io one on the other each get consecutive ticks, once each. */
async function heartbeatOncePerTick(replicas: ReplicaProcess[]): Promise<void> {
  const plain = await PlainClient.connect(replicas[0]!.wsUrl);
  const socketIo = await SocketIoClient.connect(replicas[1]!.httpUrl);
  await sleep(HEARTBEAT_INTERVAL_MS * 5);
  for (const ticks of [plain.heartbeats(), socketIo.heartbeats()]) {
    assert.ok(ticks.length >= 3, `ticks: ${ticks.join(' ')}`);
    const times = ticks.map((ts) => Date.parse(ts));
    assert.deepEqual(
      times.slice(1).map((time, index) => time - times[index]!),
      range(2, ticks.length).map(() => HEARTBEAT_INTERVAL_MS),
      'one heartbeat per tick, none missed or repeated',
    );
  }
  plain.close();
  socketIo.close();
}

describe('Redis topologies', function () {
  this.timeout(60_000);

  describe('Redis Cluster (REDIS_MODE=cluster)', () => {
    let cluster: RedisClusterSet;
    let replicas: ReplicaProcess[] = [];

    before(async () => {
      cluster = await RedisClusterSet.start(3);
      const env = { REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: cluster.nodeList };
      replicas = await Promise.all([startReplica(env), startReplica(env)]);
    });

    after(async () => {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await cluster?.destroy();
    });

    it('counts and resumes across replicas and transports, with sessions spread over every primary', async () => {
      const ids = await countsAcrossReplicas(replicas, 24);
      const client = cluster.client();
      try {
        for (const id of ids) assert.equal(await client.get(sessionKey(id)), '3');
      } finally {
        client.disconnect();
      }
      const perNode = await cluster.keysPerNode();
      assert.ok(perNode.every((keys) => keys > 0), `keys per primary: ${perNode.join(', ')}`);
    });

    it('delivers the heartbeat once per tick to sockets on every replica', async () => {
      await heartbeatOncePerTick(replicas);
    });
  });

  describe('Sentinel (REDIS_MODE=sentinel)', () => {
    let sentinel: RedisSentinelSet;
    let replicas: ReplicaProcess[] = [];

    before(async () => {
      sentinel = await RedisSentinelSet.start();
      const env = {
        REDIS_MODE: 'sentinel',
        REDIS_SENTINELS: sentinel.sentinelList,
        REDIS_SENTINEL_MASTER: RedisSentinelSet.MASTER_NAME,
      };
      replicas = await Promise.all([startReplica(env), startReplica(env)]);
    });

    after(async () => {
      await Promise.all(replicas.map((replica) => replica.stop()));
      await sentinel?.destroy();
    });

    it('counts and resumes across replicas, and keeps the heartbeat', async () => {
      await countsAcrossReplicas(replicas, 5);
      await heartbeatOncePerTick(replicas);
    });

    it('follows a failover: the same session goes on counting from where it was, on the new primary', async () => {
      const before = await PlainClient.connect(replicas[0]!.wsUrl);
      before.sendMany(3);
      assert.deepEqual(await before.waitForCounts(3), [1, 2, 3]);
      const id = before.sessionId!;
      const oldPrimary = await sentinel.currentPrimaryPort();
      await sentinel.failover();
      await eventually(async () => (await sentinel.currentPrimaryPort()) !== oldPrimary, 'the sentinel to promote the replica', 15_000, 100);
      // At once, not when Sentinel demotes the old primary seconds later: until then it takes
      // writes that its resync from the new primary drops (every count of those seconds).
      const newPrimary = await sentinel.currentPrimaryPort();
      await eventually(
        async () => (await sentinel.connectionNames(newPrimary)).filter((name) => name.endsWith(':commands')).length === replicas.length,
        "every replica's commands connection on the new primary as soon as the sentinel announced it",
        2000,
        50,
      );
      await eventually(async () => (await replicas[1]!.probe('/readyz')) === 200, 'the replica ready on the new primary', 15_000, 100);
      // A client whose message met the switch gets 1013 and reconnects; a fresh one resumes.
      const after = await PlainClient.connect(replicas[1]!.wsUrl, id);
      after.send('after the failover');
      const [count] = await after.waitForCounts(1, 15_000);
      assert.equal(count, 4, 'no count lost or repeated across the failover');
      before.close();
      after.close();
    });
  });
});
