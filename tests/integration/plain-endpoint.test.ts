import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';
import { PlainClient, range } from '../../tools/harness/clients.js';
import { exchange, upgradeRequest } from '../support/raw-websocket.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { scrape } from '../../tools/harness/prometheus-text.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

const MAX_MESSAGE_BYTES = 1024;

describe('plain endpoint /ws/chat/', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let first: ReplicaProcess;
  let second: ReplicaProcess;
  const clients: PlainClient[] = [];

  async function connect(replica: ReplicaProcess, session?: string): Promise<PlainClient> {
    const client = await PlainClient.connect(replica.wsUrl, session);
    clients.push(client);
    return client;
  }

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
    const env = { MAX_MESSAGE_BYTES: String(MAX_MESSAGE_BYTES) };
    [first, second] = await Promise.all([ReplicaProcess.start(redis, env), ReplicaProcess.start(redis, env)]);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.ws.terminate();
  });

  after(async () => {
    await Promise.all([first?.stop(), second?.stop()]);
    inspect?.disconnect();
    await redis?.destroy();
  });

  describe('counting', () => {
    it('answers each text message with exactly {"count": n}, in order, whatever the text says', async () => {
      const client = await connect(first);
      for (const text of ['hello', 'close', 'bye', '{"count": 99}', '']) client.send(text);
      client.sendMany(45);
      assert.deepEqual(await client.waitForCounts(50), range(1, 50));
      for (const frame of client.replies()) assert.deepEqual(Object.keys(frame), ['count']);
    });

    it('never speaks first', async () => {
      const client = await connect(first);
      await sleep(300);
      // Heartbeats may come at any time (the harness's hourly tick included); nothing else may.
      assert.deepEqual(client.replies(), []);
      client.send('first');
      await client.waitForCounts(1);
      assert.deepEqual(client.replies(), [{ count: 1 }]);
    });

    it('keeps connections independent', async () => {
      const [a, b] = await Promise.all([connect(first), connect(first)]);
      a.sendMany(3);
      b.sendMany(5);
      assert.deepEqual(await a.waitForCounts(3), [1, 2, 3]);
      assert.deepEqual(await b.waitForCounts(5), [1, 2, 3, 4, 5]);
    });

    it('serves 200 concurrent sockets, each with its own ordered counts', async () => {
      const many = await Promise.all(range(1, 200).map((i) => connect(i % 2 === 0 ? first : second)));
      for (const client of many) client.sendMany(10);
      for (const client of many) assert.deepEqual(await client.waitForCounts(10), range(1, 10));
      const sessions = new Set(many.map((client) => client.sessionId));
      assert.equal(sessions.size, 200);
    });

    it('stores every count it sent in Redis before sending it', async () => {
      const client = await connect(first);
      client.sendMany(7);
      await client.waitForCounts(7);
      assert.equal(await inspect.get(sessionKey(client.sessionId!)), '7');
      const ttl = await inspect.ttl(sessionKey(client.sessionId!));
      // SESSION_TTL_SECONDS (the default, a day) plus one refresh period, a minute at most (session-store.ts).
      assert.ok(ttl > 86_400 - 10 && ttl <= 86_400 + 60, `ttl ${ttl}`);
    });
  });

  describe('sessions', () => {
    it('makes a uuid4 session id and returns it in X-Session-Id', async () => {
      const client = await connect(first);
      assert.ok(isValidSessionId(client.sessionId), String(client.sessionId));
      assert.equal(client.sessionId?.[14], '4');
    });

    it('resumes a session on another replica at stored + 1', async () => {
      const before = await connect(first);
      before.sendMany(3);
      await before.waitForCounts(3);
      before.close();
      await before.waitClosed();

      const after = await connect(second, before.sessionId);
      assert.equal(after.sessionId, before.sessionId);
      after.sendMany(2);
      assert.deepEqual(await after.waitForCounts(2), [4, 5]);
      assert.equal(await second.metric('wschat_sessions_resumed_total', { transport: 'plain' }) >= 1, true);
    });

    it('starts an unknown session with the id the client chose', async () => {
      const chosen = randomSessionId();
      const client = await connect(second, chosen);
      assert.equal(client.sessionId, chosen);
      client.send('one');
      assert.deepEqual(await client.waitForCounts(1), [1]);
    });

    const malformed: Array<[string, string]> = [
      ['garbage', 'not-a-uuid'],
      ['uppercase', '3F2A9C1E-7B4D-4E8A-9C3B-1D2E3F4A5B6C'],
      ['huge', 'a'.repeat(4000)],
      ['two session parameters', `${randomSessionId()}&session=${randomSessionId()}`],
    ];
    for (const [name, session] of malformed) {
      it(`refuses a ${name} session id with close 4500 and counts nothing`, async () => {
        const url = `${first.wsUrl}?session=${name === 'two session parameters' ? session : encodeURIComponent(session)}`;
        const keysBefore = await inspect.dbsize();
        const refused = await PlainClient.connect(url);
        clients.push(refused);
        refused.send('ignored');
        assert.deepEqual(await refused.waitClosed(), { code: 4500, reason: 'invalid session id' });
        assert.deepEqual(refused.frames, []);
        assert.equal(refused.sessionId, undefined);
        assert.equal(await inspect.dbsize(), keysBefore);
      });
    }
  });

  describe('bad frames', () => {
    it('answers messages already received, then bye and 1003 on a binary frame', async () => {
      const client = await connect(first);
      client.sendMany(3);
      client.send(Buffer.from([1, 2, 3]), true);
      const closed = await client.waitClosed();
      assert.deepEqual(client.replies(), [{ count: 1 }, { count: 2 }, { count: 3 }, { bye: true, total: 3 }]);
      assert.deepEqual(closed, { code: 1003, reason: 'binary frames are not supported' });
    });

    it('sends bye and 1009 on a message over MAX_MESSAGE_BYTES', async () => {
      const client = await connect(first);
      client.send('x'.repeat(MAX_MESSAGE_BYTES));
      client.send('x'.repeat(MAX_MESSAGE_BYTES + 1));
      const closed = await client.waitClosed();
      assert.deepEqual(client.replies(), [{ count: 1 }, { bye: true, total: 1 }]);
      assert.deepEqual(closed, { code: 1009, reason: 'message too big' });
    });

    it('fails the connection with 1007 and no bye on a text frame that is not UTF-8 (RFC 6455 §8.1)', async () => {
      const client = await connect(first);
      client.send('fine');
      await client.waitForCounts(1);
      client.ws.send(Buffer.from([0xc3, 0x28]), { binary: false });
      const closed = await client.waitClosed();
      assert.deepEqual(client.replies(), [{ count: 1 }]);
      assert.deepEqual(closed, { code: 1007, reason: 'invalid utf-8' });
    });

    it('keeps serving everyone else and counts each error by kind', async () => {
      const errors = (kind: string): Promise<number> => first.metric('wschat_errors_total', { kind });
      const [binaryBefore, invalidSessionBefore] = [await errors('binary_frame'), await errors('invalid_session')];
      const bystander = await connect(first);
      const offender = await connect(first);
      bystander.send('before');
      await bystander.waitForCounts(1);
      offender.send(Buffer.from([0]), true);
      await offender.waitClosed();
      const refused = await PlainClient.connect(`${first.wsUrl}?session=not-a-uuid`);
      clients.push(refused);
      await refused.waitClosed();
      bystander.send('after');
      assert.deepEqual(await bystander.waitForCounts(2), [1, 2]);
      // Each error once, under its own kind, whatever the tests before this one did.
      assert.equal(await errors('binary_frame'), binaryBefore + 1);
      assert.equal(await errors('invalid_session'), invalidSessionBefore + 1);
    });
  });

  describe('logs', () => {
    it('carries the proxy request id, a session tag and the replica through every line of a connection', async () => {
      const requestId = 'nginx-5f2c1d';
      const client = await PlainClient.connect(first.wsUrl, undefined, { 'X-Request-Id': requestId });
      client.sendMany(2);
      await client.waitForCounts(2);
      client.close();
      await client.waitClosed();
      await eventually(() => first.logs.some((line) => line.request_id === requestId && line.event === 'close'), 'the close line');

      const lines = first.logs.filter((line) => line.request_id === requestId);
      assert.deepEqual(
        lines.map((line) => line.event),
        ['connect', 'close'],
        'one line per event, none per message',
      );
      const sessionId = client.sessionId!;
      for (const line of lines) {
        assert.equal(line.session, `${sessionId.slice(0, 8)}…`);
        assert.equal(line.version, 'blue');
        assert.equal(typeof line.replica, 'string');
        assert.doesNotMatch(JSON.stringify(line), new RegExp(sessionId), 'the whole session id is never logged');
      }
      assert.deepEqual([lines[1]?.by, lines[1]?.code, lines[1]?.total], ['client', 1000, 2]);
    });

    it('makes a request id when the proxy sent none (or sent garbage)', async () => {
      const client = await PlainClient.connect(first.wsUrl, undefined, { 'X-Request-Id': 'bad id with spaces' });
      await eventually(() => first.logs.some((line) => line.session === `${client.sessionId!.slice(0, 8)}…`), 'the connect line');
      const line = first.logs.find((entry) => entry.session === `${client.sessionId!.slice(0, 8)}…`);
      assert.match(String(line?.request_id), /^[0-9a-f-]{36}$/);
    });
  });

  describe('http', () => {
    it('answers probes and version with JSON', async () => {
      const health = await fetch(`${first.httpUrl}/healthz`);
      assert.deepEqual([health.status, await health.json()], [200, { status: 'ok' }]);
      const ready = await fetch(`${first.httpUrl}/readyz`);
      assert.deepEqual([ready.status, await ready.json()], [200, { status: 'ready' }]);
      const version = await fetch(`${first.httpUrl}/version`);
      assert.deepEqual([version.status, await version.json()], [200, { version: 'blue' }]);
      assert.equal(version.headers.get('x-content-type-options'), 'nosniff');
      const plainGet = await fetch(`${first.httpUrl}/ws/chat/`);
      assert.deepEqual([plainGet.status, await plainGet.json()], [426, { error: 'upgrade_required' }]);
      const missing = await fetch(`${first.httpUrl}/nope`);
      assert.deepEqual([missing.status, await missing.json()], [404, { error: 'not_found' }]);
    });

    it('refuses an upgrade to an unknown path with 404 and a JSON body', async () => {
      const response = await exchange(first.port, upgradeRequest({ path: '/elsewhere' }).text);
      assert.deepEqual([response.status, JSON.parse(response.body)], [404, { error: 'not_found' }]);
    });

    it('exposes the metrics the issue names', async () => {
      const names = new Set((await scrape(`${first.httpUrl}/metrics`)).samples.map((sample) => sample.name));
      for (const name of [
        'wschat_messages_total',
        'wschat_connections_active',
        'wschat_connections_opened_total',
        'wschat_errors_total',
        'wschat_message_duration_seconds_bucket',
        'wschat_heartbeats_published_total',
        'wschat_heartbeats_delivered_total',
        'wschat_sessions_resumed_total',
        'wschat_shutdown_duration_seconds_count',
        'nodejs_eventloop_lag_seconds',
        'process_resident_memory_bytes',
      ]) {
        assert.ok(names.has(name), name);
      }
    });
  });
});
