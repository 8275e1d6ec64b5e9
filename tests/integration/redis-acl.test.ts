/**
 * The Redis user of the replicas (redis/wschat-user.acl, the rule Compose applies and
 * deploy/k8s/README.md tells operators to create), for real: the documented
 * `ACL SETUSER` line run on a real Redis, two replicas connecting as that
 * user through REDIS_URL, and everything the service does working under it (counts on
 * both endpoints, a resume with `last`, the fleet heartbeat through the adapter),
 * while the commands a stolen password would be used for are denied.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { PlainClient, SocketIoClient, range } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';

const PASSWORD = 'a-test-password-of-some-length';

/** The rule of redis/wschat-user.acl (what Compose applies and the README shows), without its comments. */
function wschatUserRule(): string[] {
  return readFileSync(path.join(repoRoot, 'redis/wschat-user.acl'), 'utf8')
    .split('\n')
    .filter((line) => !line.startsWith('#'))
    .join(' ')
    .split(/\s+/)
    .filter((word) => word !== '');
}

/** The line deploy/k8s/README.md shows: the user on, with the operator's password, then the rule. */
function documentedAclLine(password = 'LONG-RANDOM-PASSWORD'): string {
  return ['ACL SETUSER wschat on', `>${password}`, ...wschatUserRule()].join(' ');
}

/** ACL SETUSER's arguments for the user wschat with PASSWORD. */
function documentedAcl(): string[] {
  return documentedAclLine(PASSWORD).split(' ').slice(2);
}

describe('Redis ACL user for the replicas (deploy/k8s/README.md)', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  const replicas: ReplicaProcess[] = [];

  before(async () => {
    redis = await RedisServer.start();
    const admin = redis.client();
    try {
      await admin.call('ACL', 'SETUSER', ...documentedAcl());
    } finally {
      admin.disconnect();
    }
    const url = `redis://wschat:${PASSWORD}@127.0.0.1:${redis.port}`;
    for (const id of ['acl-1', 'acl-2']) replicas.push(await ReplicaProcess.start(redis, { REDIS_URL: url, REPLICA_ID: id, HEARTBEAT_INTERVAL_MS: '500' }));
  });

  after(async () => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.destroy();
  });

  it('is the rule deploy/k8s/README.md shows and Compose applies (redis/wschat-user.acl)', () => {
    const readme = readFileSync(path.join(repoRoot, 'deploy/k8s/README.md'), 'utf8');
    assert.ok(readme.split('\n').includes(documentedAclLine()), `deploy/k8s/README.md shows: ${documentedAclLine()}`);
    assert.match(readFileSync(path.join(repoRoot, 'redis/compose-start.sh'), 'utf8'), /wschat-user\.acl/);
  });

  it('serves counts, resumes and heartbeats as that user', async () => {
    const [first, second] = replicas as [ReplicaProcess, ReplicaProcess];
    const plain = await PlainClient.connect(first.wsUrl);
    plain.sendMany(3);
    assert.deepEqual(await plain.waitForCounts(3), range(1, 3));
    const session = plain.sessionId!;
    plain.close();
    const resumed = await PlainClient.connect(`${second.wsUrl}?session=${session}&last=3&pending=0`);
    resumed.send('again');
    assert.deepEqual(await resumed.waitForCounts(1), [4]);
    const socketIo = await SocketIoClient.connect(second.httpUrl);
    socketIo.send('hi');
    await eventually(() => socketIo.acks.length === 1, 'the socket.io count');
    await eventually(() => resumed.heartbeats().length >= 2 && socketIo.heartbeats().length >= 2, 'heartbeats through the adapter', 5000);
    resumed.close();
    socketIo.close();
    assert.equal(await first.metric('wschat_errors_total', { kind: 'redis' }), 0);
    assert.equal(await second.metric('wschat_errors_total', { kind: 'heartbeat_election' }), 0);
    assert.equal(await second.metric('wschat_redis_connected'), 1);
  });

  it('lets that user subscribe to the socket.io adapter\'s pattern, and to none outside the prefix', async () => {
    const user = new Redis(`redis://wschat:${PASSWORD}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      // What @socket.io/redis-adapter sends for the namespace / under REDIS_KEY_PREFIX wschat:.
      assert.equal(await user.psubscribe('wschat:socket.io#/#*'), 1);
      await assert.rejects(user.psubscribe('*'), /NOPERM/);
    } finally {
      user.disconnect();
    }
  });

  it('lets that user write the drain\'s shutdown ledger in a transaction', async () => {
    const user = new Redis(`redis://wschat:${PASSWORD}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      const replies = await user.multi().rpush('wschat:acl-test:ledger', 'entry').ltrim('wschat:acl-test:ledger', -10, -1).exec();
      assert.deepEqual(replies, [
        [null, 1],
        [null, 'OK'],
      ]);
    } finally {
      user.disconnect();
    }
  });

  it('lets that user\'s scripts read the clock, as the session scripts do', async () => {
    const user = new Redis(`redis://wschat:${PASSWORD}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      const [seconds] = (await user.eval("return redis.call('TIME')", 0)) as [string, string];
      assert.ok(Number(seconds) > 0);
    } finally {
      user.disconnect();
    }
  });

  it('denies that user what a stolen password would be used for', async () => {
    const user = new Redis(`redis://wschat:${PASSWORD}@127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0 });
    try {
      for (const command of [['FLUSHALL'], ['KEYS', '*'], ['CONFIG', 'GET', 'requirepass'], ['GET', 'other-app:secret'], ['MONITOR'], ['SCRIPT', 'FLUSH']]) {
        await assert.rejects(user.call(command[0]!, ...command.slice(1)), /NOPERM/, command.join(' '));
      }
    } finally {
      user.disconnect();
    }
  });
});
