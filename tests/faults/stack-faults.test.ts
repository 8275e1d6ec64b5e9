/**
 * Faults of the native stack under live traffic (200 sockets through Nginx,
 * plain and socket.io), in one stack brought up by tools/dev-up.sh, in order:
 *   1. a replica SIGKILLed behind Nginx;
 *   2. Nginx restarted (stop + start with the stack's helpers);
 *   3. Nginx reloaded (SIGHUP to the master).
 * tools/promote.sh killed halfway is in tests/faults/promote-faults.test.ts.
 * The reload test shortens worker_shutdown_timeout (30 s in nginx/nginx.conf.template)
 * to SHUTDOWN_TIMEOUT_S in this run folder's rendered nginx.conf, so that what
 * DESIGN.md says of it (old workers keep their sockets until that timeout) can be
 * observed whole in a few seconds.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { PlainClient, SocketIoClient } from '../../tools/harness/clients.js';
import { type LoopClient, loopClientLabel, loopClientsOf, PlainLoopClient } from '../support/loop-clients.js';
import { ConnectProber, Sampler, stopLoops } from '../support/probes.js';
import { childrenOf, processRuns } from '../support/process-table.js';
import { assertLoopSession } from '../support/session-assertions.js';
import { killStackLeftovers, stackLog, stackPid, stackShell } from '../support/stack-run-dir.js';
import { eventually, sleep } from '../../tools/harness/processes.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';
import { NativeStack } from '../support/stack.js';
import { storedCount } from '../../tools/harness/session-keys.js';

const HEARTBEAT_INTERVAL_MS = 500;
const PLAIN_CLIENTS = 150;
const SOCKETIO_CLIENTS = 50;
/** ~10 messages/s per client: 2,000/s through Nginx. */
const THINK_MS = 100;
const SHUTDOWN_TIMEOUT_S = 3;

const wsUrlOf = (httpUrl: string): string => `${httpUrl.replace(/^http/, 'ws')}/ws/chat/`;

describe('native stack faults under live traffic', function () {
  this.timeout(120_000);
  let stack: NativeStack;
  let clients: LoopClient[] = [];
  let watchers: Array<PlainClient | SocketIoClient> = [];
  let redis: Redis;

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS });
    redis = new Redis(`redis://127.0.0.1:${stack.env.REDIS_PORT}`);
  });

  after(async () => {
    await stopLoops();
    for (const watcher of watchers) watcher.close();
    await stopClients();
    redis?.disconnect();
    await stack?.destroy();
    if (stack !== undefined) await killStackLeftovers(stack.runDir);
  });

  async function stopClients(): Promise<void> {
    await Promise.all(clients.map((client) => client.stop(2000).catch(() => undefined)));
  }

  async function startClients(): Promise<void> {
    await stopClients();
    clients = loopClientsOf(stack, PLAIN_CLIENTS, SOCKETIO_CLIENTS, { thinkMs: THINK_MS });
    for (const client of clients) client.start();
    await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 30_000);
  }

  async function everyClientCountsAgain(more: number, timeoutMs = 20_000): Promise<void> {
    const base = clients.map((client) => client.counts.length);
    await eventually(
      () => clients.every((client, index) => client.counts.length >= base[index]! + more),
      `every client counting ${more} more`,
      timeoutMs,
    );
  }

  async function stored(client: LoopClient): Promise<number> {
    return (await storedCount(redis, client.session)) ?? 0;
  }

  it('one replica SIGKILLed: its clients resume on the survivor through Nginx, the others never notice, the beat goes on', async () => {
    const [victimUrl, survivorUrl] = stack.replicaUrls('blue') as [string, string];
    await startClients();
    watchers = [
      await PlainClient.connect(wsUrlOf(survivorUrl)),
      await PlainClient.connect(wsUrlOf(survivorUrl)),
      await SocketIoClient.connect(survivorUrl),
    ];
    const onVictim = await metricSum(`${victimUrl}/metrics`, 'wschat_connections_active');
    const onSurvivor = await metricSum(`${survivorUrl}/metrics`, 'wschat_connections_active');
    assert.equal(onVictim + onSurvivor, clients.length + watchers.length, 'every socket is on a replica');
    assert.ok(onVictim >= 20, `${onVictim} clients on the victim`);

    const victimPid = stackPid(stack, 'replica-blue-1')!;
    const killedAt = Date.now();
    process.kill(victimPid, 'SIGKILL');
    await eventually(() => !processRuns(victimPid), 'the victim to die', 5000);
    await everyClientCountsAgain(5);
    await sleep(Math.max(0, killedAt + 10 * HEARTBEAT_INTERVAL_MS - Date.now()));
    const windowEnd = Date.now() - 200;
    assert.equal(await metricSum(`${survivorUrl}/metrics`, 'wschat_connections_active'), clients.length + watchers.length, 'all on the survivor');
    await stopClients();
    for (const watcher of watchers) watcher.close();

    const disrupted = clients.filter((client) => client.closes.length > 0);
    assert.equal(disrupted.length, onVictim, 'exactly the victim’s clients lost their connection');
    for (const [index, client] of clients.entries()) {
      const name = loopClientLabel(client, index);
      assert.ok(client.closes.length <= 1, `${name}: closed ${client.closes.length} times`);
      assert.equal(client.handshakeFailures, 0, `${name}: a reconnect through Nginx failed`);
      assert.deepEqual(client.byes, [], `${name}: a SIGKILLed replica says no bye`);
      if (client instanceof PlainLoopClient) assert.ok(client.closes.every((code) => code === 1006), `${name}: ${client.closes.join(',')}`);
      else assert.ok(client.closes.every((reason) => reason === 'transport close' || reason === 'transport error'), `${name}: ${client.closes.join(',')}`);
      const inRedis = await stored(client);
      // Exactly once, moved or not: a count lost with the replica's reply comes back on the resume.
      assertLoopSession(name, client, inRedis);
    }

    // The survivor won every tick after the kill, once, and its sockets got each once.
    const won = stackLog(stack, 'replica-blue-2')
      .filter((line) => line.event === 'heartbeat_won')
      .map((line) => String(line.ts))
      .filter((ts) => Date.parse(ts) > killedAt + HEARTBEAT_INTERVAL_MS && Date.parse(ts) <= windowEnd)
      .sort();
    assert.ok(won.length >= 6, `ticks won by the survivor after the kill: ${won.join(' ')}`);
    for (let i = 1; i < won.length; i += 1) {
      assert.equal(Date.parse(won[i]!) - Date.parse(won[i - 1]!), HEARTBEAT_INTERVAL_MS, `gap or duplicate: ${won.join(' ')}`);
    }
    for (const [index, watcher] of watchers.entries()) {
      const beats = watcher.heartbeats();
      assert.equal(new Set(beats).size, beats.length, `watcher ${index}: a tick twice`);
      const inWindow = beats.filter((ts) => Date.parse(ts) > killedAt + HEARTBEAT_INTERVAL_MS && Date.parse(ts) <= windowEnd).sort();
      assert.deepEqual(inWindow, won, `watcher ${index}`);
    }
    const reconnects = disrupted.flatMap((client) => client.reconnectMs).sort((a, b) => a - b);
    process.stdout.write(
      `      ${onVictim} of ${clients.length} clients were on the victim; reconnect p50 ${reconnects[Math.floor(reconnects.length / 2)]} ms, ` +
        `max ${reconnects.at(-1)} ms; every session exact\n`,
    );

    // Bring the victim back for what follows (start_colour starts only what is missing).
    const restart = await stackShell(stack, 'start_colour blue 10 && write_replica_targets');
    assert.equal(restart.code, 0, restart.output);
    assert.match(restart.output, /replica-blue-2 already running/);
    assert.match(restart.output, /replica-blue-1 ready/);
  });

  it('Nginx restarted: established sockets drop, clients reconnect and resume; new connections work once it is back', async () => {
    const conf = path.join(stack.runDir, 'nginx', 'conf', 'nginx.conf');
    const text = readFileSync(conf, 'utf8');
    assert.match(text, /worker_shutdown_timeout 30s;/);
    writeFileSync(conf, text.replace('worker_shutdown_timeout 30s;', `worker_shutdown_timeout ${SHUTDOWN_TIMEOUT_S}s;`));
    await startClients();
    const prober = new ConnectProber(stack.wsUrl, 100);
    await sleep(1000);

    const stoppingAt = Date.now();
    const stop = await stackShell(stack, 'stop_process nginx 10');
    assert.equal(stop.code, 0, stop.output);
    const stoppedAt = Date.now();
    const start = await stackShell(stack, 'nginx_start');
    assert.equal(start.code, 0, start.output);
    const startedAt = Date.now();
    await everyClientCountsAgain(3);
    await sleep(1000);
    await prober.stop();
    await stopClients();

    for (const [index, client] of clients.entries()) {
      const name = loopClientLabel(client, index);
      assert.equal(client.closes.length, 1, `${name}: closed ${client.closes.length} times`);
      if (client instanceof PlainLoopClient) assert.deepEqual(client.closes, [1006], name);
      else assert.ok(['transport close', 'transport error'].includes(String(client.closes[0])), `${name}: ${client.closes.join(',')}`);
      assertLoopSession(name, client, await stored(client));
    }
    const failed = prober.failures();
    const outside = failed.filter((attempt) => attempt.ended < stoppingAt || attempt.started > startedAt);
    assert.deepEqual(outside, [], 'new connections failed outside the restart');
    assert.ok(prober.attempts.filter((attempt) => attempt.started > startedAt).length >= 5, 'new connections after the restart');
    const firstBack = prober.attempts.find((attempt) => attempt.started >= stoppedAt && attempt.error === undefined);
    process.stdout.write(
      `      restart: stop ${stoppedAt - stoppingAt} ms, start ${startedAt - stoppedAt} ms; ${failed.length} new connection(s) refused meanwhile; ` +
        `first new connection served ${firstBack === undefined ? '?' : firstBack.ended - stoppingAt} ms after the stop began\n`,
    );
  });

  it('Nginx reloaded: old workers keep their sockets until worker_shutdown_timeout, new connections never fail', async () => {
    // Nginx now runs with the shortened worker_shutdown_timeout (since the restart).
    await startClients();
    const master = stackPid(stack, 'nginx')!;
    const oldWorkers = (await childrenOf(master)).filter((child) => /worker process/.test(child.command)).map((child) => child.pid);
    assert.ok(oldWorkers.length > 0, 'nginx has workers');
    const closesBefore = clients.map((client) => client.closes.length);
    const countsBefore = clients.map((client) => client.counts.length);
    const totalCloses = new Sampler(() => Promise.resolve(clients.reduce((sum, client) => sum + client.closes.length, 0)), 50);
    const prober = new ConnectProber(stack.wsUrl, 100);
    await sleep(500);

    const hupAt = Date.now();
    process.kill(master, 'SIGHUP');
    await eventually(
      async () => (await childrenOf(master)).some((child) => oldWorkers.includes(child.pid) && /shutting down/.test(child.command)),
      'the old workers to be shutting down',
      3000,
    );
    await sleep(Math.max(0, hupAt + SHUTDOWN_TIMEOUT_S * 1000 - 500 - Date.now()));
    // Still on the old workers, still counting, nobody closed.
    const closedEarly = clients.filter((client, index) => client.closes.length !== closesBefore[index]).length;
    assert.equal(closedEarly, 0, `${closedEarly} socket(s) closed before worker_shutdown_timeout`);
    assert.ok(
      clients.every((client, index) => client.counts.length >= countsBefore[index]! + 5),
      'every client kept counting on the old workers',
    );
    assert.ok(oldWorkers.some(processRuns), 'the old workers still run');

    // At the timeout the old workers cut their sockets (no close frame); clients reconnect to the new ones and resume.
    await eventually(
      () => clients.every((client, index) => client.closes.length === closesBefore[index]! + 1),
      'every socket cut at worker_shutdown_timeout',
      SHUTDOWN_TIMEOUT_S * 1000 + 5000,
    );
    await eventually(() => oldWorkers.every((pid) => !processRuns(pid)), 'the old workers to exit', 5000);
    await everyClientCountsAgain(3);
    await sleep(500);
    await prober.stop();
    await totalCloses.stop();
    await stopClients();

    const baseline = closesBefore.reduce((sum, n) => sum + n, 0);
    const firstCut = totalCloses.samples.find((sample) => sample.value > baseline)!;
    assert.ok(
      firstCut.at - hupAt >= SHUTDOWN_TIMEOUT_S * 1000 - 100,
      `sockets were cut ${firstCut.at - hupAt} ms after the reload (worker_shutdown_timeout ${SHUTDOWN_TIMEOUT_S}s)`,
    );
    for (const [index, client] of clients.entries()) {
      const name = loopClientLabel(client, index);
      assertLoopSession(name, client, await stored(client));
      assert.equal(client.handshakeFailures, 0, `${name}: a reconnect failed`);
      assert.ok(client.closes.slice(closesBefore[index]).every((code) => code === 1006 || code === 'transport close'), `${name}: ${client.closes.join(',')}`);
    }
    assert.deepEqual(prober.failures(), [], `new connections through the reload (${prober.attempts.length} tried)`);
    process.stdout.write(
      `      reload: sockets held ${firstCut.at - hupAt} ms by the old workers, then cut; ${prober.attempts.length} new connections, none failed\n`,
    );
  });
});
