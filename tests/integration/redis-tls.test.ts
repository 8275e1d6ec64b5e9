/**
 * REDIS_URL=rediss://: the replicas speak TLS to Redis, standalone and behind
 * Sentinel, for real: Debian's redis-server with TLS only (no plaintext port, so a
 * client that forgot TLS cannot get an answer), a CA made by the test, trusted by
 * the replicas through NODE_EXTRA_CA_CERTS.
 */
import assert from 'node:assert/strict';
import { PlainClient } from '../../tools/harness/clients.js';
import { freePort, ReplicaProcess } from '../../tools/harness/processes.js';
import { RedisTlsSet, TLS_MASTER_NAME } from '../support/redis-tls.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

describe('Redis over TLS (rediss://)', function () {
  this.timeout(30_000);
  let redis: RedisTlsSet;
  const replicas: ReplicaProcess[] = [];

  before(async () => {
    redis = await RedisTlsSet.start();
  });

  afterEach(async () => {
    await Promise.all(replicas.splice(0).map((replica) => replica.stop()));
  });

  after(async () => {
    await redis?.destroy();
  });

  async function startReplica(env: Record<string, string>): Promise<ReplicaProcess> {
    const replica = ReplicaProcess.spawn({ NODE_EXTRA_CA_CERTS: redis.caFile, ...env }, await freePort());
    replicas.push(replica);
    await replica.waitReady(10_000);
    return replica;
  }

  /** Counts three messages through `replica` and checks Redis (over TLS) stored them. */
  async function countsStored(replica: ReplicaProcess): Promise<void> {
    const client = await PlainClient.connect(replica.wsUrl);
    client.sendMany(3);
    assert.deepEqual(await client.waitForCounts(3), [1, 2, 3]);
    client.close();
    const inspect = redis.client();
    try {
      assert.equal(await inspect.get(sessionKey(client.sessionId!)), '3');
    } finally {
      inspect.disconnect();
    }
  }

  it('standalone: counts through a TLS-only Redis', async () => {
    await countsStored(await startReplica({ REDIS_URL: `rediss://127.0.0.1:${redis.primaryPort}` }));
  });

  it('Sentinel: asks a TLS sentinel for the primary and talks to the primary over TLS too', async () => {
    const replica = await startReplica({
      REDIS_MODE: 'sentinel',
      REDIS_SENTINELS: redis.sentinelList,
      REDIS_SENTINEL_MASTER: TLS_MASTER_NAME,
      REDIS_URL: 'rediss://127.0.0.1',
    });
    await countsStored(replica);
  });
});
