/**
 * A partition between a replica and Redis that is not a crash: iptables drops every
 * packet to and from the Redis port (no reset, no FIN), so the replica's connections
 * stay open and silent. The replica must notice within its bound (a PING unanswered
 * for REDIS_COMMAND_TIMEOUT_MS, probed every half of it), turn /readyz 503, move its
 * clients with bye + 1013, refuse new handshakes with 503, and come back by itself once the packets flow again.
 * Needs iptables as root, or through passwordless sudo (tests/support/as-root.ts); the
 * rules are removed after the test whatever happens.
 * Writes what it measured to reports/redis-partition.json.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { asRoot } from '../support/as-root.js';
import { PlainClient, range } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';

const run = promisify(execFile);
const COMMAND_TIMEOUT_MS = 1000;
/** Probe interval (half the timeout) plus the unanswered PING, plus room for a busy machine. */
const DETECT_BOUND_MS = 1.5 * COMMAND_TIMEOUT_MS + 1500;
/** A connect attempt into the partition ends after COMMAND_TIMEOUT_MS; then back-off of at most 1 s. */
const RECOVER_BOUND_MS = COMMAND_TIMEOUT_MS + 1000 + 3000;

/** Drops (or stops dropping) every packet to and from `port` on loopback, both directions. */
async function blackhole(port: number, on: boolean): Promise<void> {
  const iptables = (args: string[]): Promise<unknown> => run(...asRoot('iptables', args, 'the Redis partition test'));
  for (const direction of ['--dport', '--sport']) {
    const rule = ['INPUT', '-p', 'tcp', direction, String(port), '-j', 'DROP'];
    if (on) await iptables(['-I', ...rule]);
    // Removal repeats until no such rule is left (a failed earlier run may have left one).
    else while (await iptables(['-D', ...rule]).then(() => true, () => false));
  }
}

describe('a replica partitioned from Redis (packets dropped, no reset)', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let replica: ReplicaProcess;
  const clients: PlainClient[] = [];

  before(async () => {
    redis = await RedisServer.start();
    replica = await ReplicaProcess.start(redis, { REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS) });
  });

  after(async () => {
    if (redis !== undefined) await blackhole(redis.port, false);
    for (const client of clients.splice(0)) client.close();
    await replica?.stop();
    await redis?.destroy();
  });

  it('goes unready within its bound, moves its clients with bye + 1013, and is ready again on its own after the heal', async () => {
    clients.push(...(await Promise.all(range(1, 5).map(() => PlainClient.connect(replica.wsUrl)))));
    for (const client of clients) client.send('before');
    await Promise.all(clients.map((client) => client.waitForCounts(1)));

    await blackhole(redis.port, true);
    const cut = Date.now();
    await eventually(async () => (await replica.probe('/readyz')) === 503, '/readyz 503 after the cut', DETECT_BOUND_MS);
    const detectedMs = Date.now() - cut;
    const closes = await Promise.all(clients.map((client) => client.waitClosed(DETECT_BOUND_MS)));
    for (const [index, client] of clients.entries()) {
      assert.deepEqual(closes[index], { code: 1013, reason: 'session store unavailable, retry later' }, `client ${index}`);
      assert.deepEqual(client.replies(), [{ count: 1 }, { bye: true, total: 1 }], `client ${index}: its count, then the bye`);
    }
    assert.ok(replica.events('redis_stalled').some((line) => line.role === 'commands'), 'the stall is logged');
    // A new handshake is refused while the partition lasts (503 store_unavailable: Nginx would try the next replica).
    await assert.rejects(PlainClient.connect(replica.wsUrl), /handshake refused with HTTP 503/);
    assert.equal(await replica.metric('wschat_errors_total', { kind: 'upgrade_store_unavailable' }), 1);

    await blackhole(redis.port, false);
    const healed = Date.now();
    await eventually(async () => (await replica.probe('/readyz')) === 200, '/readyz 200 after the heal', RECOVER_BOUND_MS);
    const recoveredMs = Date.now() - healed;
    const after = await PlainClient.connect(replica.wsUrl);
    clients.push(after);
    after.send('after');
    assert.deepEqual(await after.waitForCounts(1), [1], 'a new session counts again');
    mkdirSync('reports', { recursive: true });
    const report = { command_timeout_ms: COMMAND_TIMEOUT_MS, detect_bound_ms: DETECT_BOUND_MS, detected_ms: detectedMs, recovered_ms: recoveredMs };
    writeFileSync('reports/redis-partition.json', `${JSON.stringify(report, null, 2)}\n`);
  });
});
