/**
 * `tools/loadtest.js --reference --behind-nginx` end to end, small: a native stack of
 * the test's own (tools/dev-up.sh: Redis, Nginx, two blue replicas, free ports, a 1 s
 * heartbeat), a few hundred plain sockets on the product and then on the ceiling fleet
 * (two reference servers on the green ports) through the same Nginx, the live colour
 * flipped between them. Checks that both sides had every count and heartbeat checked,
 * that the ratios exist, and that the command left nothing behind: blue live again,
 * the green ports free, the fleet's and the workers' processes gone, the lock free;
 * on success and on SIGINT in the middle of the ceiling's run.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { NativeStack } from '../support/stack.js';
import { childrenOf, processRuns, sessionOf } from '../support/process-table.js';
import { stackPid } from '../support/stack-run-dir.js';
import { eventually, portAnswers, withTimeout } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';
import type { ComparisonReport } from '../../tools/loadtest/compare.js';

const SOCKETS = 300;
const HEARTBEAT_MS = 1000;

function startLoadTest(stack: NativeStack, args: string[], reportDir: string): { child: ChildProcessByStdio<null, Readable, Readable>; output: () => string } {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist/tools/loadtest.js'), '--url', stack.httpUrl, ...args, '--report-dir', reportDir], {
    env: { ...process.env, RUN_DIR: stack.runDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return { child, output: () => output };
}

const exitOf = (child: ChildProcessByStdio<null, Readable, Readable>): Promise<number | null> =>
  new Promise((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

/** What the command must leave: blue live, green ports free, `pids` gone, the stack's lock free. */
async function assertCleanedUp(stack: NativeStack, pids: number[]): Promise<void> {
  assert.equal(await stack.publicVersion(), 'blue', 'the product colour is live again');
  assert.match(readFileSync(path.join(stack.runDir, 'nginx/conf/active-colour.conf'), 'utf8'), /set \$active_colour blue;/);
  for (const url of stack.replicaUrls('green')) assert.equal(await portAnswers(Number(new URL(url).port)), false, `${url} free`);
  await eventually(() => pids.every((pid) => !processRuns(pid)), `processes ${pids.join(', ')} gone`, 10_000, 100);
  const lock = spawnSync('flock', ['-n', path.join(stack.runDir, 'promote.lock'), 'true']);
  assert.equal(lock.status, 0, 'the stack lock is free');
}

describe('load test --reference --behind-nginx (product and ceiling fleet through the same Nginx)', function () {
  this.timeout(180_000);
  let stack: NativeStack;
  const reportDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-behind-nginx-'));

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: HEARTBEAT_MS });
  });

  after(async () => {
    await stack?.destroy();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it('runs product then ceiling through the stack\'s Nginx, every count and heartbeat checked on both, and cleans up', async () => {
    const dir = mkdtempSync(path.join(reportDir, 'run-'));
    // Held 4 s: the ticks checked fall from 200 ms after the last connect to 1 s before the
    // stop, a window of ~2.8 s that always holds two 1 s ticks (3 s left ~1.8 s: one, at times).
    const args = ['--reference', '--behind-nginx', '--sockets', String(SOCKETS), '--ramp', '1000', '--rate', '2', '--duration', '4'];
    const run = startLoadTest(stack, args, dir);
    const code = await withTimeout(exitOf(run.child), 60_000, 'the comparison').finally(() => run.child.kill('SIGKILL'));
    assert.equal(code, 0, run.output());
    const file = readdirSync(dir).find((name) => name.endsWith('.json'));
    assert.ok(file !== undefined, run.output());
    const report = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as ComparisonReport;
    assert.equal(report.ok, true);
    assert.equal(report.cleanup_failures, undefined);
    const fleet = report.ceiling.fleet;
    assert.ok(fleet !== undefined, 'the ceiling was a fleet');
    assert.deepEqual([fleet.colour, fleet.product_colour], ['green', 'blue']);
    assert.deepEqual(fleet.ports, stack.replicaUrls('green').map((url) => Number(new URL(url).port)));
    assert.equal(report.pairs.length, 1);
    for (const side of [report.pairs[0]!.product, report.pairs[0]!.ceiling]) {
      assert.equal(side.ok, true, side.target);
      assert.equal(side.options.url, stack.httpUrl, `${side.target} went through Nginx`);
      assert.equal(side.sockets.held, SOCKETS, side.target);
      assert.deepEqual(side.errors, {}, side.target);
      assert.ok(side.heartbeat.ticks_checked >= 2, `${side.target}: ticks checked ${side.heartbeat.ticks_checked}`);
      assert.deepEqual([side.heartbeat.missed, side.heartbeat.duplicated], [0, 0], side.target);
      assert.ok(side.load_generator.heartbeat_frames >= SOCKETS * side.heartbeat.ticks_checked, `${side.target}: every socket read every tick`);
      assert.ok(side.messages.total >= SOCKETS * 4, `${side.target}: ${side.messages.total} counts checked`);
      assert.ok(typeof side.server !== 'string', `${side.target}: server figures`);
      assert.equal(side.server.replicas, 2, `${side.target}: two server processes`);
      assert.equal(side.server.connections_at_hold, SOCKETS, `${side.target}: every socket reached its servers`);
      assert.ok(side.server.own_fan_out !== null && side.server.own_fan_out.ticks >= 2 * side.heartbeat.ticks_checked, `${side.target}: own fan-out`);
      assert.ok(side.nginx !== null && side.nginx.workers >= 1 && side.nginx.cpu_seconds >= 0, `${side.target}: Nginx CPU read`);
    }
    for (const name of ['fan_out_p50', 'fan_out_p99', 'round_trips_per_second', 'own_fan_out_mean'] as const) {
      const spread = report.ratios[name];
      assert.ok(spread !== null && spread.values.length === 1, `${name}: no ratio`);
      assert.ok(spread.median > 0.02 && spread.median < 50, `${name}: ${spread.median}`);
    }
    assert.match(readFileSync(path.join(dir, file.replace(/\.json$/, '.md')), 'utf8'), /behind the stack's own Nginx/);
    await assertCleanedUp(stack, fleet.pids);
  });

  it('on SIGINT during the ceiling\'s run stops everything it started and makes the product colour live again', async () => {
    // Held 8 s on each side: the signal comes while the ceiling holds its sockets.
    const args = ['--reference', '--behind-nginx', '--sockets', '100', '--ramp', '1000', '--rate', '1', '--duration', '8'];
    const run = startLoadTest(stack, args, mkdtempSync(path.join(reportDir, 'sigint-')));
    try {
      // The ceiling's run has begun: green is live, its fleet and workers run.
      await eventually(() => /ceiling \d+s {2}sockets 100\/100/.test(run.output()), 'the ceiling run holding its sockets', 30_000, 100);
      const status = await fetch(`${stack.httpUrl}/version`, { headers: { connection: 'close' } }).then((r) => r.status);
      assert.equal(status, 426, 'the ceiling is live');
      // The fleet, the workers and the lock's holder.
      const children = await childrenOf(run.child.pid!);
      const started = children.map((child) => child.pid);
      assert.ok(started.length >= 4, `children: ${started.length}`);
      // Scheduled as the replicas are: each in a session (an autogroup) of its own.
      const ceilings = children.filter((child) => child.command.includes('reference-server.js'));
      assert.equal(ceilings.length, 2, children.map((child) => child.command).join('; '));
      for (const { pid } of ceilings) assert.equal(sessionOf(pid), pid, `ceiling ${pid} leads a session of its own`);
      for (const name of ['replica-blue-1', 'replica-blue-2']) {
        const replica = stackPid(stack, name);
        assert.ok(replica !== undefined, `${name}'s pidfile`);
        assert.equal(sessionOf(replica), replica, `${name} leads a session of its own`);
      }
      run.child.kill('SIGINT');
      assert.equal(await exitOf(run.child), 130, run.output());
      await assertCleanedUp(stack, started);
    } finally {
      // A failed assertion must not leave it holding the stack's lock (dev-down in after() needs it).
      if (run.child.exitCode === null && run.child.signalCode === null) run.child.kill('SIGKILL');
      await exitOf(run.child);
    }
  });
});
