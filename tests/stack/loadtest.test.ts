/**
 * The small load tests that run in CI: 2,000 sockets (plain and socket.io) through
 * Nginx for 10 s with a 2 s heartbeat, every reply checked by tools/loadtest.ts; and
 * --reference, product and fair ceiling alternated, on one replica of the test's own
 * with 150 sockets and a 1 s heartbeat. The large runs are benchmarks
 * (docs/benchmarks.md), not tests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeStack } from '../support/stack.js';
import { RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';
import type { ComparisonReport } from '../../tools/loadtest/compare.js';
import type { Report } from '../../tools/loadtest/report.js';

/** Runs tools/loadtest.ts with `args`; its exit code, output and the JSON report it wrote. */
async function loadTest<T>(args: string[], reportDir: string, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; output: string; report: T }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'dist/tools/loadtest.js'), ...args, '--report-dir', reportDir], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const reportFile = readdirSync(reportDir).find((name) => name.endsWith('.json'));
  assert.ok(reportFile !== undefined, `no report written: ${output}`);
  return { code, output, report: JSON.parse(readFileSync(path.join(reportDir, reportFile), 'utf8')) as T };
}


describe('load test (small, through Nginx)', function () {
  this.timeout(120_000);
  let stack: NativeStack;
  // Made in before(), not when the file loads: a run that filters this suite out leaves no folder.
  let reportDir = '';

  before(async () => {
    reportDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-loadtest-'));
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 2000 });
  });

  after(async () => {
    await stack?.destroy();
    if (reportDir !== '') rmSync(reportDir, { recursive: true, force: true });
  });

  it('holds 2,000 sockets over two workers with every count, heartbeat and close checked', async () => {
    // Two workers, not the default one: their counts, ticks and histograms must merge.
    const args = ['--url', stack.httpUrl, '--sockets', '2000', '--socketio', '0.2', '--rate', '2', '--duration', '10', '--workers', '2', '--probe', '5'];
    const { code, output, report } = await loadTest<Report>(args, reportDir, { ...process.env, RUN_DIR: stack.runDir });
    assert.equal(code, 0, output);
    assert.equal(report.ok, true);
    assert.equal(report.sockets.held, 2000);
    assert.deepEqual(report.errors, {});
    assert.ok(report.heartbeat.ticks_checked >= 3, `ticks checked: ${report.heartbeat.ticks_checked}`);
    assert.deepEqual([report.heartbeat.missed, report.heartbeat.duplicated], [0, 0]);
    assert.ok(report.messages.total >= 2000 * 2 * 8, `messages: ${report.messages.total}`);
    assert.ok(typeof report.server !== 'string', 'server metrics read from the stack');
    assert.equal(report.server.replicas, 2, "server metrics read from the stack's replicas");
    assert.ok(report.server.own_fan_out !== null && report.server.own_fan_out.ticks >= 2 * 3, 'each replica delivered the ticks it reports');
    assert.ok(report.load_generator.cpu_us_per_frame !== null && report.load_generator.cpu_us_per_frame > 0, 'the generator measured its own cost');
    assert.equal(report.load_generator.workers, 2);
    const lag = report.server.event_loop_lag_ms;
    assert.ok(lag !== null && lag.p50 > 0 && lag.p50 <= lag.p99 && lag.p99 <= lag.max, `the replicas' event-loop lag: ${JSON.stringify(lag)}`);
    const probe = report.latency_probe;
    assert.ok(probe !== null && probe.held, 'the probe held its socket');
    assert.ok(probe.ticks >= 3, `ticks the probe's round trips were split by: ${probe.ticks}`);
    assert.ok(probe.during_ticks.count > 0 && probe.between_ticks.count > probe.during_ticks.count, JSON.stringify(probe));
    assert.ok(probe.between_ticks.p50_ms <= probe.between_ticks.p99_ms && probe.between_ticks.p99_ms <= probe.between_ticks.p999_ms);
    assert.ok(probe.between_ticks.p999_ms <= probe.between_ticks.max_ms);
  });
});

describe('load test --reference (product and fair ceiling alternated, one replica)', function () {
  this.timeout(120_000);
  const SOCKETS = 150;
  let redis: RedisServer;
  let replica: ReplicaProcess;
  let reportDir = '';

  before(async () => {
    reportDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-loadtest-reference-'));
    redis = await RedisServer.start({ appendfsync: 'everysec' });
    replica = await ReplicaProcess.start(redis, { HEARTBEAT_INTERVAL_MS: '1000', LOG_LEVEL: 'warn' });
  });

  after(async () => {
    await replica?.stop();
    await redis?.destroy();
    if (reportDir !== '') rmSync(reportDir, { recursive: true, force: true });
  });

  it('reports sane ratios, and checks the ceiling\'s counts and heartbeats as the product\'s', async () => {
    const args = ['--url', replica.httpUrl, '--metrics', `${replica.httpUrl}/metrics`, '--redis', redis.url, '--heartbeat-ms', '1000'];
    args.push('--sockets', String(SOCKETS), '--rate', '0', '--duration', '4', '--reference', '--repeat', '2');
    const { code, output, report } = await loadTest<ComparisonReport>(args, reportDir);
    assert.equal(code, 0, output);
    assert.equal(report.ok, true);
    assert.deepEqual(report.ceiling, { mode: 'fair', args: ['--redis', redis.url, '--heartbeat-ms', '1000'] });
    assert.equal(report.pairs.length, 2);
    for (const { product, ceiling } of report.pairs) {
      assert.deepEqual([product.target, ceiling.target], ['product', 'ceiling']);
      for (const run of [product, ceiling]) {
        assert.equal(run.ok, true, run.target);
        assert.equal(run.sockets.held, SOCKETS, run.target);
        assert.deepEqual(run.errors, {}, run.target);
        assert.ok(run.heartbeat.ticks_checked >= 2, `${run.target}: ticks checked ${run.heartbeat.ticks_checked}`);
        assert.deepEqual([run.heartbeat.missed, run.heartbeat.duplicated], [0, 0], run.target);
        assert.ok(run.messages.total > SOCKETS * 10, `${run.target}: ${run.messages.total} messages`);
        assert.ok(typeof run.server !== 'string', `${run.target}: server figures`);
        assert.equal(run.server.connections_at_hold, SOCKETS, run.target);
        assert.ok(run.server.cpu_us_per_message !== null && run.server.cpu_us_per_message > 0, run.target);
        assert.ok(run.server.own_fan_out !== null && run.server.own_fan_out.ticks >= run.heartbeat.ticks_checked, `${run.target}: own fan-out`);
        assert.ok(run.redis !== null && run.redis.cpu_us_per_message !== null && run.redis.cpu_us_per_message > 0, `${run.target}: Redis CPU`);
        const generator = run.load_generator;
        assert.ok(generator.frames >= generator.round_trips + generator.heartbeat_frames, run.target);
        assert.ok(generator.heartbeat_frames >= SOCKETS * run.heartbeat.ticks_checked, `${run.target}: heartbeat frames read`);
        assert.ok(generator.cpu_us_per_round_trip !== null && generator.cpu_us_per_round_trip > 0, run.target);
      }
    }
    const sane = ['round_trips_per_second', 'round_trip_p99', 'fan_out_p50', 'fan_out_p99', 'own_fan_out_mean', 'server_cpu_per_message'] as const;
    for (const name of sane) {
      const spread = report.ratios[name];
      assert.ok(spread !== null, `${name}: no ratio`);
      assert.equal(spread.values.length, 2, name);
      assert.ok(spread.min <= spread.median && spread.median <= spread.max, name);
      // Wide bounds: a shared 2-core box; a ratio outside them is a figure gone wrong, not noise.
      for (const value of spread.values) assert.ok(value > 0.02 && value < 50, `${name}: ${value}`);
    }

    // The ceiling's counts are Redis's: one INCR per answered message, on a key per connection.
    const client = redis.client();
    try {
      const keys = await client.keys('wschat-ceiling:*');
      assert.equal(keys.length, 2 * SOCKETS, 'one key per ceiling connection');
      const counts = (await client.mget(...keys)).map(Number);
      const answered = report.pairs.reduce((sum, pair) => sum + pair.ceiling.messages.total, 0);
      assert.equal(counts.reduce((sum, n) => sum + n, 0), answered, 'every count the ceiling sent was incremented in Redis');
    } finally {
      client.disconnect();
    }
  });

  it('with --resume counts on the leased path: one session hash per socket, holding what was counted', async () => {
    const RESUMED = 100;
    const args = ['--url', replica.httpUrl, '--metrics', `${replica.httpUrl}/metrics`, '--redis', redis.url, '--heartbeat-ms', '1000'];
    args.push('--sockets', String(RESUMED), '--rate', '0', '--duration', '3', '--resume');
    // A folder of its own: loadTest reads the one report in it.
    const { code, output, report } = await loadTest<Report>(args, mkdtempSync(path.join(reportDir, 'resume-')));
    assert.equal(code, 0, output);
    assert.equal(report.ok, true);
    assert.equal(report.sockets.held, RESUMED);
    assert.ok(report.messages.total > RESUMED * 10, `${report.messages.total} messages`);
    // Only a resumed (leased) session is a hash; the runs above left strings.
    const client = redis.client();
    try {
      const keys = await client.keys('wschat:s:*');
      const kinds = await Promise.all(keys.map((key) => client.type(key)));
      const leased = keys.filter((_, index) => kinds[index] === 'hash');
      assert.equal(leased.length, RESUMED, 'one leased session per socket');
      const counts = await Promise.all(leased.map(async (key) => Number(await client.hget(key, 'c'))));
      const stored = counts.reduce((sum, n) => sum + n, 0);
      // A message in flight when its socket closed may be counted without its reply read: at most one per socket.
      assert.ok(stored >= report.messages.total && stored <= report.messages.total + RESUMED, `Redis ${stored}, answered ${report.messages.total}`);
    } finally {
      client.disconnect();
    }
  });
});
