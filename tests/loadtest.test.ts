/**
 * The small load test that runs in CI: 2,000 sockets (plain and socket.io) through
 * Nginx for 10 s with a 2 s heartbeat, every reply checked by tools/loadtest.ts.
 * The large runs are benchmarks (docs/benchmarks.md), not tests.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NativeStack } from './support/stack.js';
import { repoRoot } from '../tools/harness/repo-root.js';


describe('load test (small, through Nginx)', function () {
  this.timeout(120_000);
  let stack: NativeStack;
  const reportDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-loadtest-'));

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 2000 });
  });

  after(async () => {
    await stack?.destroy();
    rmSync(reportDir, { recursive: true, force: true });
  });

  it('holds 2,000 sockets with every count, heartbeat and close checked', async () => {
    const args = ['--url', stack.httpUrl, '--sockets', '2000', '--socketio', '0.2', '--rate', '2', '--duration', '10'];
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist/tools/loadtest.js'), ...args, '--report-dir', reportDir], {
      env: { ...process.env, RUN_DIR: stack.runDir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    assert.equal(code, 0, output);

    const reportFile = readdirSync(reportDir).find((name) => name.endsWith('.json'));
    const report = JSON.parse(readFileSync(path.join(reportDir, reportFile!), 'utf8')) as {
      ok: boolean;
      sockets: { held: number };
      messages: { total: number };
      heartbeat: { ticks_checked: number; missed: number; duplicated: number };
      errors: Record<string, number>;
      server: { replicas: number };
    };
    assert.equal(report.ok, true);
    assert.equal(report.sockets.held, 2000);
    assert.deepEqual(report.errors, {});
    assert.ok(report.heartbeat.ticks_checked >= 3, `ticks checked: ${report.heartbeat.ticks_checked}`);
    assert.deepEqual([report.heartbeat.missed, report.heartbeat.duplicated], [0, 0]);
    assert.ok(report.messages.total >= 2000 * 2 * 8, `messages: ${report.messages.total}`);
    assert.equal(report.server.replicas, 2, 'server metrics read from the stack\'s replicas');
  });
});
