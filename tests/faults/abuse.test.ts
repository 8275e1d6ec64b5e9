/**
 * Bad input and abuse that a replica answers itself: browser pages from origins it
 * does not allow, floods from one socket, slowloris,
 * oversized headers, garbage HTTP and malformed socket.io packets. Each gets its
 * documented answer, is counted by kind, and the replica keeps serving everyone else.
 */
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { PlainClient, range, textOf } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { exchange } from '../support/raw-websocket.js';
import { NativeStack } from '../support/stack.js';

// A client that stops reading is in tests/integration/session-connection.test.ts: filling the kernel's
// socket buffers with 15-byte replies takes megabytes, too slow for the suite.

/** The status and JSON body a WebSocket handshake got instead of 101. */
function refusedHandshake(url: string, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => {
      ws.close();
      reject(new Error('the handshake was accepted'));
    });
    ws.once('unexpected-response', (_request, response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (text += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    ws.once('error', () => undefined);
  });
}

describe('bad input and abuse', function () {
  this.timeout(30_000);
  let redis: RedisServer;
  /** Default origins (same-host), a low rate limit, a short headers timeout. */
  let strict: ReplicaProcess;
  /** ALLOWED_ORIGINS as a list. */
  let listed: ReplicaProcess;

  before(async () => {
    redis = await RedisServer.start();
    [strict, listed] = await Promise.all([
      ReplicaProcess.start(redis, { MAX_MESSAGES_PER_SECOND: '10', HTTP_HEADERS_TIMEOUT_MS: '500' }),
      ReplicaProcess.start(redis, { ALLOWED_ORIGINS: 'https://chat.example.com' }),
    ]);
  });

  after(async () => {
    await Promise.all([strict?.stop(), listed?.stop()]);
    await redis?.destroy();
  });

  describe('origins', () => {
    it('refuses a browser page from another host with 403 and a JSON body, on both endpoints, and counts it', async () => {
      const refused = await refusedHandshake(strict.wsUrl, { Origin: 'http://evil.example' });
      assert.deepEqual(refused, { status: 403, body: { error: 'origin_not_allowed' } });
      const socket = io(strict.httpUrl, { transports: ['websocket'], reconnection: false, extraHeaders: { Origin: 'http://evil.example' } });
      const failed = await new Promise<boolean>((resolve) => {
        socket.once('connect', () => resolve(false));
        socket.once('connect_error', () => resolve(true));
      });
      socket.close();
      assert.equal(failed, true, 'socket.io connect from a foreign origin must fail');
      assert.equal(await strict.metric('wschat_errors_total', { kind: 'origin_refused' }), 2);
    });

    it('accepts the same host, and clients that send no Origin (non-browser)', async () => {
      const sameHost = await PlainClient.connect(strict.wsUrl, undefined, { Origin: `http://127.0.0.1:${strict.port}` });
      const noOrigin = await PlainClient.connect(strict.wsUrl);
      for (const client of [sameHost, noOrigin]) {
        client.send('hi');
        assert.deepEqual(await client.waitForCounts(1), [1]);
        client.close();
      }
    });

    it('with ALLOWED_ORIGINS set, accepts exactly the listed origins', async () => {
      const listedOrigin = await PlainClient.connect(listed.wsUrl, undefined, { Origin: 'https://chat.example.com' });
      listedOrigin.close();
      const refused = await refusedHandshake(listed.wsUrl, { Origin: `http://127.0.0.1:${listed.port}` });
      assert.equal(refused.status, 403);
    });
  });

  describe('floods', () => {
    it('closes a socket over MAX_MESSAGES_PER_SECOND with bye (every accepted message counted) and 4502', async () => {
      const client = await PlainClient.connect(strict.wsUrl);
      // The bucket holds two seconds' worth (20); a burst of 40 empties it.
      client.sendMany(40);
      const closed = await client.waitClosed();
      assert.deepEqual(closed, { code: 4502, reason: 'message rate limit exceeded' });
      const counts = client.counts();
      assert.ok(counts.length >= 20 && counts.length <= 22, `about 20 counted before the limit, got ${counts.length}`);
      assert.deepEqual(counts, range(1, counts.length));
      assert.deepEqual(client.bye(), { bye: true, total: counts.length });
      assert.equal(await strict.metric('wschat_errors_total', { kind: 'rate_limited' }), 1);
    });

    it('lets a client under the rate keep sending', async () => {
      const client = await PlainClient.connect(strict.wsUrl);
      for (let i = 0; i < 12; i += 1) {
        client.send(`paced ${i}`);
        await sleep(100);
      }
      assert.deepEqual(await client.waitForCounts(12), range(1, 12));
      assert.equal(client.closed, undefined);
      client.close();
    });
  });

  describe('HTTP before any route', () => {
    it('answers headers that never finish (slowloris) with 408 and JSON within HTTP_HEADERS_TIMEOUT_MS, and counts it', async () => {
      const started = performance.now();
      const response = await exchange(strict.port, 'GET /ws/chat/ HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n');
      const ms = performance.now() - started;
      assert.match(response.statusLine, /^HTTP\/1\.1 408 /);
      assert.deepEqual(JSON.parse(response.body), { error: 'request_timeout' });
      // 500 ms timeout, checked every 500 ms (the checking interval is at most the timeout).
      assert.ok(ms >= 450 && ms < 2500, `closed after ${Math.round(ms)} ms`);
      assert.equal(await strict.metric('wschat_errors_total', { kind: 'http_headers_timeout' }), 1);
    });

    it('answers headers over 16 KiB with 431 and JSON', async () => {
      const response = await exchange(strict.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
      assert.match(response.statusLine, /^HTTP\/1\.1 431 /);
      assert.deepEqual(JSON.parse(response.body), { error: 'headers_too_large' });
      assert.equal(await strict.metric('wschat_errors_total', { kind: 'http_headers_too_large' }), 1);
    });

    it('answers garbage with 400 and JSON, and keeps serving', async () => {
      const response = await exchange(strict.port, 'HELLO THERE\r\n\r\n');
      assert.match(response.statusLine, /^HTTP\/1\.1 400 /);
      assert.deepEqual(JSON.parse(response.body), { error: 'bad_request' });
      assert.equal(await strict.probe('/healthz'), 200);
    });
  });

  describe('socket.io', () => {
    it('closes a connection that sends a malformed packet, counts it, prints no stack, and keeps serving', async () => {
      const raw = new WebSocket(`ws://127.0.0.1:${strict.port}/socket.io/?EIO=4&transport=websocket`);
      const frames: string[] = [];
      raw.on('message', (data) => frames.push(textOf(data)));
      const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
      await eventually(() => frames.some((frame) => frame.startsWith('0')), 'the engine.io open packet');
      raw.send('40');
      await eventually(() => frames.some((frame) => frame.startsWith('40')), 'the namespace connect');
      raw.send('42["message",');
      await closed;
      assert.equal(await strict.metric('wschat_errors_total', { kind: 'socketio_bad_packet' }), 1);
      assert.doesNotMatch(strict.stderr, /at .*\(|Missing error handler/);
      const client = await PlainClient.connect(strict.wsUrl);
      client.send('after');
      assert.deepEqual(await client.waitForCounts(1), [1]);
      client.close();
    });
  });

  describe('a full Redis (maxmemory reached, noeviction)', () => {
    let full: RedisServer;
    let replica: ReplicaProcess;

    before(async () => {
      full = await RedisServer.start();
      replica = await ReplicaProcess.start(full);
    });

    after(async () => {
      await replica?.stop();
      await full?.destroy();
    });

    it('reports its memory against the limit, and answers a message it cannot store with bye + 1013', async () => {
      const redis = full.client();
      try {
        const client = await PlainClient.connect(replica.wsUrl);
        client.send('stored');
        assert.deepEqual(await client.waitForCounts(1), [1]);
        await redis.config('SET', 'maxmemory', '1');
        // A scrape reports the reading the previous one started.
        await replica.metric('wschat_redis_maxmemory_bytes');
        await eventually(async () => (await replica.metric('wschat_redis_maxmemory_bytes')) === 1, 'maxmemory read');
        assert.ok((await replica.metric('wschat_redis_memory_used_bytes')) > 1);
        client.send('not stored');
        assert.deepEqual(await client.waitClosed(), { code: 1013, reason: 'session store unavailable, retry later' });
        assert.deepEqual(client.bye(), { bye: true, total: 1 });
      } finally {
        await redis.config('SET', 'maxmemory', '0');
        redis.disconnect();
      }
    });
  });

  describe('too many connections from one address (Nginx)', function () {
    this.timeout(60_000);
    let stack: NativeStack;

    before(async () => {
      stack = await NativeStack.started({ replicas: 1, heartbeatIntervalMs: 30_000, env: { NGINX_CONNECTIONS_PER_ADDRESS: '3' } });
    });

    after(async () => {
      await stack?.destroy();
    });

    it('refuses the socket over NGINX_CONNECTIONS_PER_ADDRESS with 429 and JSON, and serves other addresses', async () => {
      const held = await Promise.all(range(1, 3).map(() => PlainClient.connect(stack.wsUrl)));
      assert.deepEqual(await refusedHandshake(stack.wsUrl, {}), { status: 429, body: { error: 'too_many_connections' } });
      const elsewhere = new WebSocket(stack.wsUrl, { localAddress: '127.0.0.2' });
      await new Promise((resolve, reject) => elsewhere.once('open', resolve).once('error', reject));
      elsewhere.close();
      for (const client of held) client.close();
    });
  });
});
