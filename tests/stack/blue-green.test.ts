/**
 * The proof that a release under live traffic loses nothing: the native stack
 * (Redis, Nginx, 2 replicas per colour) with 200 clients sending through Nginx
 * while tools/promote.sh moves them from blue to green.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { percentile } from '../support/latency.js';
import { type LoopClient, loopClientsOf } from '../support/loop-clients.js';
import { assertUnbroken } from '../support/session-assertions.js';
import { HttpPoller } from '../support/http-poller.js';
import { eventually } from '../../tools/harness/processes.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';
import { NativeStack, type ScriptRun } from '../support/stack.js';
import { storedCounts } from '../../tools/harness/session-keys.js';

const PLAIN_CLIENTS = 150;
const SOCKETIO_CLIENTS = 50;
const HEARTBEAT_INTERVAL_MS = 1000;

async function activeConnections(urls: string[]): Promise<number> {
  let total = 0;
  for (const url of urls) total += await metricSum(`${url}/metrics`, 'wschat_connections_active');
  return total;
}

describe('blue/green release under live traffic', function () {
  this.timeout(120_000);
  let stack: NativeStack;
  let clients: LoopClient[] = [];
  /** Here, not in the test: a failed assertion must not leave it polling (it kept mocha's process alive). */
  let poller: HttpPoller | undefined;

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS });
  });

  after(async () => {
    await poller?.stop();
    await Promise.all(clients.map((client) => client.stop(1000).catch(() => undefined)));
    await stack?.destroy();
  });

  it('moves every client to green with unbroken counts, no failed request, old colour gone within 10 s', async () => {
    clients = loopClientsOf(stack, PLAIN_CLIENTS, SOCKETIO_CLIENTS, { thinkMs: 100 });
    for (const client of clients) client.start();
    await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 20_000);
    poller = new HttpPoller(stack.httpUrl);

    const promotion: ScriptRun = await stack.promote();
    assert.equal(promotion.code, 0, promotion.output);

    // Every client got its bye, reconnected through Nginx and counts on green.
    await eventually(() => clients.every((client) => client.byes.length === 1), 'a bye at every client', 15_000);
    const countsAtFlip = clients.map((client) => client.counts.length);
    await eventually(
      () => clients.every((client, index) => client.counts.length >= countsAtFlip[index]! + 3),
      'every client counting again',
      20_000,
    );
    assert.equal(await activeConnections(stack.replicaUrls('green')), clients.length, 'every client is on green');
    await poller.stop();
    await Promise.all(clients.map((client) => client.stop()));

    const redis = new Redis(`redis://127.0.0.1:${stack.env.REDIS_PORT}`);
    try {
      assertUnbroken(clients, await storedCounts(redis, clients.map((client) => client.session)), 1);
    } finally {
      redis.disconnect();
    }
    assert.deepEqual(poller.failures, [], `HTTP requests through Nginx that failed (of ${poller.requests})`);

    const retired = /step 4\/4 retire blue[^\n]*\n(?:[^\n]*\n)*?[^\n]*done in (\d+) ms/.exec(promotion.output);
    assert.ok(retired, promotion.output);
    assert.ok(Number(retired[1]) < 10_000, `blue took ${retired[1]} ms to exit`);
    const status = await stack.status();
    assert.doesNotMatch(status.output, /replica-blue-\d +up/, status.output);

    const reconnects = clients.flatMap((client) => client.reconnectMs);
    const report = {
      date: new Date().toISOString(),
      clients: { plain: PLAIN_CLIENTS, socketio: SOCKETIO_CLIENTS },
      promotion_ms: promotion.durationMs,
      retire_ms: Number(retired[1]),
      reconnect_ms: { p50: percentile(reconnects, 50), p99: percentile(reconnects, 99), max: Math.max(...reconnects) },
      messages_counted: clients.reduce((sum, client) => sum + client.counts.length, 0),
      http_requests: poller.requests,
    };
    mkdirSync('reports', { recursive: true });
    writeFileSync('reports/blue-green.json', `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`      release report: ${JSON.stringify(report)}\n`);
  });
});
