/**
 * The native stack's tools against the real thing: the Nginx front,
 * tools/monitor.sh, and tools/promote.sh when things go wrong.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PlainClient } from '../../tools/harness/clients.js';
import { eventually, sleep } from '../../tools/harness/processes.js';
import { NativeStack, outputOf } from '../support/stack.js';
import { repoRoot } from '../../tools/harness/repo-root.js';


/**
 * A copy of the tree (sources, tools, the same node_modules) in a temporary folder
 * with one source file edited, so that its tools/promote.sh builds a release with a
 * bug in it. Throws when `from` is not in the file: the edit must be made.
 */
function treeWithEdit(file: string, from: string, to: string): string {
  const copy = mkdtempSync(path.join(os.tmpdir(), 'wschat-tree-'));
  for (const entry of ['services', 'shared', 'tests', 'tools', 'package.json', 'package-lock.json', 'tsconfig.json']) {
    cpSync(path.join(repoRoot, entry), path.join(copy, entry), { recursive: true });
  }
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(copy, 'node_modules'));
  const source = readFileSync(path.join(copy, file), 'utf8');
  assert.ok(source.includes(from), `${file} no longer contains ${JSON.stringify(from)}: update this test's edit`);
  writeFileSync(path.join(copy, file), source.replace(from, to));
  return copy;
}

describe('native stack', function () {
  this.timeout(90_000);
  let stack: NativeStack;

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 1000 });
  });

  after(async () => {
    await stack?.destroy();
  });

  describe('nginx', () => {
    it('proxies /ws/chat/ and passes its request id to the replica', async () => {
      const client = await PlainClient.connect(stack.wsUrl);
      client.sendMany(2);
      assert.deepEqual(await client.waitForCounts(2), [1, 2]);
      client.close();
      const response = await fetch(`${stack.httpUrl}/version`);
      const requestId = response.headers.get('x-request-id');
      assert.match(String(requestId), /^[0-9a-f]{32}$/, "Nginx's $request_id");
    });

    it('keeps /metrics off the public side', async () => {
      const response = await fetch(`${stack.httpUrl}/metrics`);
      assert.equal(response.status, 404);
      assert.deepEqual(await response.json(), { error: 'not_found' });
    });

    it('listens on loopback only by default (STACK_ADDRESS)', async () => {
      const conf = readFileSync(path.join(stack.runDir, 'nginx', 'conf', 'nginx.conf'), 'utf8');
      assert.match(conf, new RegExp(`^ +listen 127\\.0\\.0\\.1:${stack.env.STACK_PORT} reuseport;$`, 'm'));
      assert.doesNotMatch(conf, /^ +listen (0\.0\.0\.0:)?\d+[ ;]/m, 'no listener on every interface');
      // From another address of this machine, when it has one, nothing answers.
      const external = Object.values(os.networkInterfaces())
        .flat()
        .find((address) => address !== undefined && address.family === 'IPv4' && !address.internal);
      if (external !== undefined) {
        await assert.rejects(fetch(`http://${external.address}:${stack.env.STACK_PORT}/version`), `nothing on ${external.address}`);
      }
      assert.equal((await fetch(`${stack.httpUrl}/version`)).status, 200);
    });

    it('is idempotent: a second dev-up changes nothing', async () => {
      const again = await stack.up();
      assert.equal(again.code, 0, again.output);
      assert.match(again.output, /nginx already running/);
      assert.match(again.output, /replica-blue-1 already running/);
    });
  });

  describe('dev-up.sh', () => {
    it('refuses to start, and starts nothing, when a port it needs is taken', async () => {
      const other = await NativeStack.create({ replicas: 2, heartbeatIntervalMs: 1000 });
      const squatter = net.createServer().listen(Number(other.env.STACK_PORT), '127.0.0.1');
      await new Promise((resolve) => squatter.once('listening', resolve));
      try {
        const refused = await other.up();
        assert.equal(refused.code, 1, refused.output);
        assert.match(refused.output, new RegExp(`port ${other.env.STACK_PORT} \\(nginx, public side\\) is already in use`));
        assert.equal(refused.output.trim().split('\n').length, 1, 'that one line and nothing started');
      } finally {
        squatter.close();
        await other.destroy();
      }
    });
  });

  describe('monitor.sh', () => {
    it('prints error lines as they are written and the top counters, then stops by itself', async () => {
      const client = await PlainClient.connect(stack.wsUrl);
      client.sendMany(5);
      await client.waitForCounts(5);
      const monitor = stack.spawn('monitor.sh', ['--duration', '4', '--interval', '2']);
      const output = outputOf(monitor);
      await sleep(1000);
      appendFileSync(path.join(stack.runDir, 'logs', 'replica-blue-1.log'), '{"level":"error","message":"monitor test line"}\n');
      const code = await new Promise<number | null>((resolve) => monitor.on('exit', resolve));
      client.close();
      const printed = output();
      assert.equal(code, 0, printed);
      assert.match(printed, /ERROR \[replica-blue-1\.log\] \{"level":"error","message":"monitor test line"\}/);
      assert.match(printed, /top counters over 2 replica\(s\)\n {2}wschat_\w+/);
      assert.match(printed, /wschat_messages_total\{transport="plain"\} +\d+/);
      // It stops by itself once its 4 s are up; a slow scrape on a busy box may take it past them.
      const stoppedAfter = Number(/monitor stopped after (\d+)s/.exec(printed)?.[1]);
      assert.ok(stoppedAfter >= 4 && stoppedAfter <= 10, `monitor stopped after ${stoppedAfter}s: ${printed}`);
    });

    it('says so when the stack is not up', async () => {
      const empty = mkdtempSync(path.join(os.tmpdir(), 'wschat-empty-'));
      try {
        const monitor = spawn('bash', ['tools/monitor.sh', '--duration', '1'], {
          env: { ...process.env, RUN_DIR: empty },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        monitor.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        const code = await new Promise<number | null>((resolve) => monitor.on('exit', resolve));
        assert.equal(code, 1);
        assert.match(output, /the stack is not up \(make dev-up\)/);
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
    });
  });

  describe('promote.sh', () => {
    it('refuses a second promotion while one holds the lock', async () => {
      const holder = spawn('flock', ['--close', path.join(stack.runDir, 'promote.lock'), 'sleep', '10'], { stdio: 'ignore' });
      try {
        await sleep(200);
        const refused = await stack.promote();
        assert.notEqual(refused.code, 0);
        assert.match(refused.output, /a promotion is running/);
        assert.equal(await stack.publicVersion(), 'blue');
      } finally {
        holder.kill();
      }
    });

    it('tears the new colour down and leaves the live one serving when the new one cannot start', async () => {
      const live = await PlainClient.connect(stack.wsUrl);
      live.send('before');
      await live.waitForCounts(1);
      // Take the port of green's first replica: green cannot start.
      const squatter = net.createServer().listen(Number(new URL(stack.replicaUrls('green')[0]!).port), '127.0.0.1');
      try {
        const failed = await stack.promote('green');
        assert.equal(failed.code, 1, failed.output);
        assert.match(failed.output, /promotion to green aborted \(it could not start or become ready\); blue is still live/);
        assert.match(failed.output, /port \d+ \(replica-green-1\) is already in use/);
      } finally {
        squatter.close();
      }
      assert.equal(await stack.publicVersion(), 'blue');
      const status = await stack.status();
      assert.doesNotMatch(status.output, /replica-green-\d +up/, status.output);
      live.send('after');
      assert.deepEqual(await live.waitForCounts(2), [1, 2], 'a client of the live colour never noticed');
      assert.equal(live.closed, undefined);
      live.close();
    });

    it('recovers when a promotion was killed halfway, and promotes back and forth', async () => {
      const killed = stack.spawn('promote.sh', ['green']);
      let output = '';
      killed.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      await eventually(() => output.includes('step 2/4'), 'the killed promotion to reach its smoke tests', 30_000);
      killed.kill('SIGKILL');
      assert.equal(await stack.publicVersion(), 'blue', 'nothing flipped');

      const rerun = await stack.promote('green');
      assert.equal(rerun.code, 0, rerun.output);
      assert.match(rerun.output, /green has processes left from an earlier run/);
      assert.equal(await stack.publicVersion(), 'green');

      const back = await stack.promote();
      assert.equal(back.code, 0, back.output);
      assert.equal(await stack.publicVersion(), 'blue');
      // No source changed since green's build: blue's release is a copy of it, not a new compile.
      assert.match(back.output, /compiled code is current \(sources [0-9a-f]+\): reused/);
      assert.match(back.output, /page is current \(sources [0-9a-f]+\): reused/);
      // Every check named, with its result and time, on every replica of blue.
      for (const url of stack.replicaUrls('blue')) {
        for (const check of ['is ready and answers its colour at /version', 'counts messages in order', 'delivers the fleet heartbeat']) {
          assert.match(back.output, new RegExp(`  ok +\\d+ ms  ${url}: ${check}\n`), `${url}: ${check}`);
        }
      }
      assert.match(back.output, /smoke checks: all 10 passed in \d+ ms/);
      const status = await stack.status();
      assert.match(status.output, /replica-blue-1 +up/);
      assert.doesNotMatch(status.output, /replica-green-\d +up/, status.output);
    });

    it('refuses a new colour that does not receive the fleet heartbeat, naming the check', async function () {
      this.timeout(180_000);
      // A release whose replicas never subscribe to the fleet channel: ready, counting,
      // resuming, serving the page, and deaf to every heartbeat another replica publishes.
      const broken = treeWithEdit('services/gateway/heartbeat.ts', 'deps.fleet.subscribe((message) => this.received(message));', '');
      const buildCache = path.join(broken, 'build-cache');
      try {
        const run = spawn('bash', [path.join(broken, 'tools', 'promote.sh'), 'green'], {
          env: { ...process.env, ...stack.env, BUILD_CACHE: buildCache },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let output = '';
        run.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        run.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
        const code = await new Promise<number | null>((resolve) => run.on('exit', resolve));
        assert.equal(code, 1, output);
        for (const url of stack.replicaUrls('green')) {
          assert.match(output, new RegExp(`  ok +\\d+ ms  ${url}: counts messages in order\n`), output);
          assert.match(output, new RegExp(`  FAILED +\\d+ ms  ${url}: delivers the fleet heartbeat\n +.*no heartbeat probe from the fleet channel`), output);
        }
        assert.match(output, /smoke checks: 2 of 10 failed/);
        const [first, second] = stack.replicaUrls('green');
        assert.match(
          output,
          new RegExp(`promotion to green aborted \\(smoke tests failed: ${first}: delivers the fleet heartbeat; ${second}: delivers the fleet heartbeat\\); blue is still live`),
        );
        assert.doesNotMatch(output, /step 3\/4/, 'never flipped');
        assert.equal(await stack.publicVersion(), 'blue');
        const status = await stack.status();
        assert.doesNotMatch(status.output, /replica-green-\d +up/, status.output);
      } finally {
        rmSync(broken, { recursive: true, force: true });
      }
    });
  });
});
