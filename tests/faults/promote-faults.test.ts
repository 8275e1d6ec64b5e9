/**
 * tools/promote.sh killed halfway under live traffic, the way a crashed terminal or
 * an OOM kill would: SIGKILL to its whole process group (the script, its build,
 * its smoke tests; the replicas it started run in sessions of their own), in step 1
 * once green's replicas are started, then re-run to completion: one live colour,
 * every replica process accounted for by a pidfile, and the live clients never lost
 * or repeated a count. (tests/stack/native-stack.test.ts kills the script alone, in step 2.)
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { range } from '../../tools/harness/clients.js';
import { type LoopClient, loopClientLabel, loopClientsOf } from '../support/loop-clients.js';
import { pgrep, processGroup, processRuns } from '../support/process-table.js';
import { eventually } from '../../tools/harness/processes.js';
import { NativeStack, outputOf, type Colour } from '../support/stack.js';
import { killStackLeftovers, stackPid } from '../support/stack-run-dir.js';
import { storedCount } from '../../tools/harness/session-keys.js';

const PLAIN_CLIENTS = 100;
const SOCKETIO_CLIENTS = 30;
const THINK_MS = 100;

describe('promote.sh killed halfway, then re-run', function () {
  this.timeout(150_000);
  let stack: NativeStack;
  let clients: LoopClient[] = [];

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 1000 });
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.stop(2000).catch(() => undefined)));
    try {
      await stack?.destroy();
    } finally {
      // Also when destroy() throws (dev-down failed): leftovers are exactly what it would leave.
      if (stack !== undefined) await killStackLeftovers(stack.runDir);
    }
  });

  /** Runs promote.sh as a process group and SIGKILLs the group once `killAt` shows in its output. Returns its output. */
  async function killPromotion(target: Colour, killAt: RegExp): Promise<string> {
    // stack.spawn starts it as the leader of a process group of its own.
    const child = stack.spawn('promote.sh', [target]);
    const output = outputOf(child);
    const exited = new Promise((resolve) => child.on('exit', resolve));
    await eventually(() => killAt.test(output()) || child.exitCode !== null, `promote.sh to reach ${killAt}`, 60_000, 20);
    assert.equal(child.exitCode, null, `promote.sh ended before it could be killed:\n${output()}`);
    process.kill(-child.pid!, 'SIGKILL');
    await exited;
    // Nothing of the group survives (the script's helpers, its build or smoke tests, whatever ran).
    await eventually(async () => (await processGroup(child.pid!)).length === 0, 'every process of the group to die', 3000);
    return output();
  }

  /** The last lines of each replica log of `colour`, for failure messages. */
  function logTails(colour: Colour): string {
    return [1, 2]
      .map((i) => {
        const file = path.join(stack.runDir, 'logs', `replica-${colour}-${i}.log`);
        const lines = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').slice(-5) : ['(no log)'];
        return `replica-${colour}-${i}.log:\n  ${lines.join('\n  ')}`;
      })
      .join('\n');
  }

  /** Pids of the processes running from `colour`'s release (pgrep -f on the run folder's path). */
  function releaseProcesses(colour: Colour): Promise<number[]> {
    return pgrep(`${stack.runDir}/releases/${colour}/services/`);
  }

  /** Exactly one colour live and running, every replica process accounted for by a pidfile. */
  async function assertOneLiveColour(colour: Colour): Promise<void> {
    const other: Colour = colour === 'blue' ? 'green' : 'blue';
    assert.equal(await stack.publicVersion(), colour, 'the public side serves the live colour');
    const internal = await (await fetch(`http://127.0.0.1:${stack.env.NGINX_STATUS_PORT}/active-colour`)).json();
    assert.deepEqual(internal, { colour });
    const pidfiles = readdirSync(path.join(stack.runDir, 'pids')).filter((name) => name.startsWith('replica-')).sort();
    assert.deepEqual(pidfiles, [`replica-${colour}-1.pid`, `replica-${colour}-2.pid`], 'replica pidfiles');
    const recorded = pidfiles.map((name) => stackPid(stack, name.replace(/\.pid$/, ''))!).sort();
    assert.ok(recorded.every(processRuns), 'every recorded replica runs');
    // Every process started from any release of this run folder is one of those.
    assert.deepEqual((await pgrep(`${stack.runDir}/releases/`)).sort(), recorded, `processes of ${stack.runDir}/releases/ vs pidfiles`);
    for (const url of stack.replicaUrls(colour)) assert.equal((await fetch(`${url}/readyz`)).status, 200, `${url} ready`);
    for (const url of stack.replicaUrls(other)) await assert.rejects(fetch(`${url}/healthz`), `nothing listens on ${url} (${other})`);
  }

  it('ends with one live colour, no orphan process, and traffic served without a lost or repeated count', async () => {
    clients = loopClientsOf(stack, PLAIN_CLIENTS, SOCKETIO_CLIENTS, { thinkMs: THINK_MS });
    for (const client of clients) client.start();
    await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 30_000);

    // 1. Killed in step 1, once green's replicas were started (the script waits for them to be ready).
    const first = await killPromotion('green', /replica-green-1 ready/);
    assert.doesNotMatch(first, /step 2\/4/, 'killed in step 1');
    assert.equal(await stack.publicVersion(), 'blue', 'nothing flipped');
    const orphans = await releaseProcesses('green');
    assert.equal(orphans.length, 2, `the killed run left both green replicas running:\n${first}\n${logTails('green')}`);

    // 2. Re-run to completion: it stops those first.
    const rerun = await stack.promote('green');
    assert.equal(rerun.code, 0, rerun.output);
    assert.match(rerun.output, /green has processes left from an earlier run: stopping them first/);
    assert.ok(orphans.every((pid) => !processRuns(pid)), 'the killed run’s leftovers were stopped');
    await assertOneLiveColour('green');
    const base = clients.map((client) => client.counts.length);
    await eventually(() => clients.every((client, index) => client.counts.length >= base[index]! + 3), 'every client counting on green', 20_000);
    await Promise.all(clients.map((client) => client.stop()));

    const redis = new Redis(`redis://127.0.0.1:${stack.env.REDIS_PORT}`);
    try {
      for (const [index, client] of clients.entries()) {
        const name = loopClientLabel(client, index);
        assert.deepEqual(client.counts, range(1, client.counts.length), `${name}: counts 1..N`);
        assert.equal(client.answered, client.counts.length, `${name}: one count per message sent (re-sent only when uncounted)`);
        assert.equal(await storedCount(redis, client.session), client.counts.length, `${name}: Redis holds what it saw`);
        assert.equal(client.handshakeFailures, 0, `${name}: failed handshakes`);
        assert.equal(client.byes.length, 1, `${name}: one bye, from the one completed release`);
        assert.equal(client.byes[0]!.total, client.byes[0]!.lastCount, `${name}: the bye carries the last count`);
      }
    } finally {
      redis.disconnect();
    }
  });
});
