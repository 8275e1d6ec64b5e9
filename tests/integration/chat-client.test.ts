/**
 * The client library (shared/client): its pure parts on their own, then the
 * reconnect rules against real replicas and a real Redis: resume, re-send after a
 * drain and after a dropped connection, back-off bounds with an injected random,
 * and no reconnect after a close that must not be retried.
 */
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { backoffCeiling, backoffDelay, backoffOptions } from '../../shared/client/backoff.js';
import { ChatClient, ChatClientError, reconnectsAfter, type ChatClientEvents, type ChatClientOptions } from '../../shared/client/chat-client.js';
import { parseServerFrame, toServerFrame } from '../../shared/protocol/messages.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';
import { range } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { storedCount } from '../../tools/harness/session-keys.js';

type Recorded = { [K in keyof ChatClientEvents]: { type: K; at: number; event: ChatClientEvents[K] } }[keyof ChatClientEvents];

/** A ChatClient on `ws` that records every event it emits, with the time it came. */
function recordingClient(options: Omit<ChatClientOptions, 'WebSocket'>): { client: ChatClient; events: Recorded[] } {
  const client = new ChatClient({ ...options, WebSocket });
  const events: Recorded[] = [];
  const types: Array<keyof ChatClientEvents> = ['open', 'count', 'heartbeat', 'bye', 'close', 'reconnecting', 'unknown'];
  for (const type of types) client.on(type, (event) => events.push({ type, at: performance.now(), event } as Recorded));
  return { client, events };
}

function ofType<K extends keyof ChatClientEvents>(events: Recorded[], type: K): Array<{ at: number; event: ChatClientEvents[K] }> {
  return events.filter((recorded) => recorded.type === type) as unknown as Array<{ at: number; event: ChatClientEvents[K] }>;
}

/**
 * Sends messages "m1", "m2", ... keeping `window` of them awaiting a count until
 * told to stop; resolves with every count, in the order the sends resolved.
 */
class Sender {
  readonly counts: number[] = [];
  readonly failures: unknown[] = [];
  sent = 0;
  private stopped = false;
  private inFlight = 0;

  constructor(
    private readonly client: ChatClient,
    private readonly window: number,
  ) {
    for (let i = 0; i < window; i += 1) this.next();
  }

  private next(): void {
    if (this.stopped) return;
    this.sent += 1;
    this.inFlight += 1;
    this.client.send(`m${this.sent}`).then(
      (count) => {
        this.counts.push(count);
        this.inFlight -= 1;
        this.next();
      },
      (error: unknown) => {
        this.failures.push(error);
        this.inFlight -= 1;
      },
    );
  }

  /** Stops sending and waits until every send has settled. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.stopped = true;
    await eventually(() => this.inFlight === 0, `${this.inFlight} sends to settle`, timeoutMs);
  }
}

describe('client library (shared/client)', () => {
  describe('parseServerFrame', () => {
    it('decodes each server frame into its case', () => {
      assert.deepEqual(parseServerFrame('{"count":7}'), { type: 'count', count: 7 });
      assert.deepEqual(parseServerFrame('{"ts":"2026-11-22T21:34:53.000Z"}'), { type: 'heartbeat', ts: '2026-11-22T21:34:53.000Z' });
      assert.deepEqual(parseServerFrame('{"bye":true,"total":12}'), { type: 'bye', total: 12 });
      assert.deepEqual(toServerFrame({ count: 3 }), { type: 'count', count: 3 });
    });

    it('calls anything else unknown instead of throwing', () => {
      for (const text of ['not json', '{"count":-1}', '{"count":1.5}', '{"count":"1"}', '{"bye":false,"total":1}', '{"bye":true}', 'null', '[]', '42']) {
        assert.deepEqual(parseServerFrame(text), { type: 'unknown', text }, text);
      }
    });
  });

  describe('back-off', () => {
    const options = backoffOptions({ initialMs: 100, maxMs: 1000, factor: 2 });

    it('grows the ceiling by the factor per attempt, up to maxMs', () => {
      assert.deepEqual(range(0, 5).map((attempt) => backoffCeiling(options, attempt)), [100, 200, 400, 800, 1000, 1000]);
    });

    it('draws each delay uniformly below the ceiling (full jitter)', () => {
      assert.equal(backoffDelay(options, 3, () => 0), 0);
      assert.equal(backoffDelay(options, 3, () => 0.5), 400);
      assert.equal(backoffDelay(options, 3, () => 0.999_999), 799);
      assert.equal(backoffDelay(options, 9, () => 0.999_999), 999);
    });

    it('refuses settings that make no sense, naming the field', () => {
      assert.throws(() => backoffOptions({ initialMs: -1 }), /initialMs/);
      assert.throws(() => backoffOptions({ initialMs: 500, maxMs: 100 }), /maxMs/);
      assert.throws(() => backoffOptions({ factor: 0.5 }), /factor/);
    });
  });

  describe('close policy', () => {
    it('reconnects after exactly the server closes the protocol marks as reconnectable', () => {
      for (const close of Object.values(CLOSE)) assert.equal(reconnectsAfter(close.code), close.reconnect, `${close.code} ${close.reason}`);
    });

    it('reconnects after a dropped connection, a restart or a gateway error, not after a normal close', () => {
      for (const code of [1006, 1011, 1012, 1013, 1014]) assert.ok(reconnectsAfter(code), String(code));
      for (const code of [1000, 1002, 1003, 1007, 1008, 1009, 1010]) assert.ok(!reconnectsAfter(code), String(code));
    });

    it('follows the private range for a code it does not know: 4000-4499 reconnect, 4500-4999 stop', () => {
      for (const code of [4000, 4123, 4499]) assert.ok(reconnectsAfter(code), String(code));
      for (const code of [3000, 3999, 4500, 4998, 4999]) assert.ok(!reconnectsAfter(code), String(code));
    });
  });

  describe('session ids', () => {
    it('picks a fresh uuid4 the server accepts (the server imports the same rule from shared/protocol)', () => {
      const ids = new Set(range(1, 100).map(() => randomSessionId()));
      assert.equal(ids.size, 100);
      for (const id of ids) assert.ok(isValidSessionId(id) && id[14] === '4', id);
    });

    it('refuses to start with a session id the server would refuse (4500)', () => {
      for (const sessionId of ['', 'abc', 'D3DCA910-0000-4000-8000-000000000000', '00000000-0000-0000-0000-000000000000']) {
        assert.throws(() => new ChatClient({ url: 'ws://127.0.0.1:1/ws/chat/', WebSocket, sessionId }), TypeError, sessionId);
      }
    });
  });

  describe('against real replicas', function () {
    this.timeout(30_000);
    let redis: RedisServer;
    const replicas: ReplicaProcess[] = [];
    const clients: ChatClient[] = [];

    async function replica(env: Record<string, string> = {}): Promise<ReplicaProcess> {
      const started = await ReplicaProcess.start(redis, env);
      replicas.push(started);
      return started;
    }

    function track<T extends { client: ChatClient }>(made: T): T {
      clients.push(made.client);
      return made;
    }

    async function stored(sessionId: string): Promise<number> {
      const inspect = redis.client();
      try {
        return (await storedCount(inspect, sessionId)) ?? 0;
      } finally {
        inspect.disconnect();
      }
    }

    before(async () => {
      redis = await RedisServer.start();
    });

    afterEach(async () => {
      await Promise.all(clients.splice(0).map((client) => client.close()));
    });

    after(async () => {
      await Promise.all(replicas.map((one) => one.stop()));
      await redis?.destroy();
    });

    it('resolves each send with its count, in order, and keeps its session', async () => {
      const one = await replica();
      const { client, events } = track(recordingClient({ url: one.wsUrl }));
      await client.connect();
      assert.equal(client.state, 'open');
      const counts = await Promise.all(range(1, 5).map((i) => client.send(`hello ${i}`)));
      assert.deepEqual(counts, [1, 2, 3, 4, 5]);
      assert.equal(client.lastCount, 5);
      assert.equal(client.pending, 0);
      assert.deepEqual(
        ofType(events, 'count').map(({ event }) => [event.count, event.text]),
        range(1, 5).map((i) => [i, `hello ${i}`]),
      );
      assert.equal(await stored(client.sessionId), 5);
    });

    it('resumes the session on another replica, and after close() and connect()', async () => {
      const [first, second] = [await replica(), await replica()];
      const a = track(recordingClient({ url: first.wsUrl })).client;
      await a.connect();
      await a.send('one');
      await a.send('two');
      await a.close();
      assert.equal(a.state, 'closed');
      const b = track(recordingClient({ url: second.wsUrl, sessionId: a.sessionId })).client;
      await b.connect();
      assert.equal(await b.send('three'), 3);
      await b.close();
      await a.connect();
      assert.equal(await a.send('four'), 4);
    });

    it('emits heartbeats and the bye as events', async () => {
      const beating = await replica({ HEARTBEAT_INTERVAL_MS: '200' });
      const { client, events } = track(recordingClient({ url: beating.wsUrl, backoff: { initialMs: 10_000 } }));
      await client.connect();
      await client.send('x');
      await eventually(() => ofType(events, 'heartbeat').length >= 2, 'two heartbeats', 3000);
      for (const { event } of ofType(events, 'heartbeat')) assert.ok(!Number.isNaN(Date.parse(event.ts)), event.ts);
      await beating.stop();
      await eventually(() => ofType(events, 'close').length === 1, 'the close', 5000);
      assert.deepEqual(ofType(events, 'bye').map(({ event }) => event), [{ total: 1 }]);
      const [close] = ofType(events, 'close');
      assert.equal(close?.event.code, 1001);
      assert.equal(close?.event.willReconnect, true);
    });

    it('after a drain (bye + 1001) reconnects to another replica and re-sends, in order, what got no count: counts 1..N exactly', async () => {
      const [draining, other] = [await replica(), await replica()];
      const { client, events } = track(
        recordingClient({ url: (attempt) => (attempt === 1 ? draining.wsUrl : other.wsUrl), backoff: { initialMs: 50 } }),
      );
      // Sends waiting for a count when the drain's close arrives. Those the replica never
      // read are `unanswered`; there may be none (the replica had read the whole window,
      // and the sends the last counts set off went out after its close frame, so they
      // wait unsent), but the window is never empty.
      const pendingAtClose: number[] = [];
      client.on('close', () => pendingAtClose.push(client.pending));
      await client.connect();
      const sender = new Sender(client, 20);
      await eventually(() => sender.counts.length >= 200, 'traffic before the drain', 10_000);
      draining.signal('SIGTERM');
      await eventually(() => ofType(events, 'open').length === 2, 'the reconnect', 10_000);
      const countsAtReconnect = sender.counts.length;
      await eventually(() => sender.counts.length >= countsAtReconnect + 200, 'traffic after the reconnect', 10_000);
      await sender.stop();

      assert.deepEqual(sender.failures, []);
      assert.deepEqual(sender.counts, range(1, sender.sent), 'every send got its count, 1..N, no gap, no repeat');
      assert.equal(await stored(client.sessionId), sender.sent, 'Redis holds exactly the counts the client saw');
      const [bye] = ofType(events, 'bye');
      const countsBeforeBye = ofType(events, 'count').filter(({ at }) => at < bye!.at);
      assert.equal(bye?.event.total, countsBeforeBye.at(-1)?.event.count, 'the bye carries the last count');
      const [close] = ofType(events, 'close');
      assert.ok(close);
      assert.equal(close.event.code, 1001);
      assert.ok(pendingAtClose[0]! > 0, 'messages were waiting for a count when the replica closed');
      const reopened = ofType(events, 'open')[1]?.event;
      assert.equal(reopened?.resent, close.event.unanswered, 'every unanswered message was re-sent');
      assert.equal((await draining.exited).code, 0);
    });

    it('after a dropped connection (1006, a SIGKILL) reconnects with its last count and re-sends: exactly once, counts 1..N', async () => {
      const [killed, other] = [await replica(), await replica()];
      const { client, events } = track(recordingClient({ url: (attempt) => (attempt === 1 ? killed.wsUrl : other.wsUrl), backoff: { initialMs: 50 } }));
      await client.connect();
      const sender = new Sender(client, 20);
      await eventually(() => sender.counts.length >= 200, 'traffic before the kill', 10_000);
      killed.signal('SIGKILL');
      await eventually(() => ofType(events, 'open').length === 2, 'the reconnect', 10_000);
      const countsAtReconnect = sender.counts.length;
      await eventually(() => sender.counts.length >= countsAtReconnect + 100, 'traffic after the reconnect', 10_000);
      await sender.stop();

      assert.deepEqual(sender.failures, []);
      // Messages counted just before the kill lost their replies: the new connection
      // answers their re-sends with those counts instead of counting them again.
      assert.deepEqual(sender.counts, range(1, sender.sent), 'every send its own count, 1..N, none skipped or repeated');
      const [close] = ofType(events, 'close');
      assert.ok(close);
      assert.equal(close.event.code, 1006);
      assert.equal(close.event.willReconnect, true);
      assert.equal(await stored(client.sessionId), sender.sent, 'Redis holds one count per message');
    });

    it('backs off with full jitter while the replica is down (injected random), and resumes when it is back', async () => {
      const restarted = await replica();
      const backoff = { initialMs: 100, maxMs: 400, factor: 2 };
      const { client, events } = track(recordingClient({ url: restarted.wsUrl, backoff, random: () => 0.5 }));
      await client.connect();
      assert.equal(await client.send('before'), 1);
      await restarted.stop();
      const queued = client.send('while down');
      await eventually(() => ofType(events, 'close').length >= 5, 'five closes', 10_000);

      const closes = ofType(events, 'close');
      assert.deepEqual(
        closes.slice(0, 5).map(({ event }) => [event.code, event.delayMs]),
        [
          [1001, 50],
          [1006, 100],
          [1006, 200],
          [1006, 200],
          [1006, 200],
        ],
        'half of each ceiling: 100, 200, 400, then capped at 400',
      );
      const attempts = ofType(events, 'reconnecting');
      for (let i = 0; i < 4; i += 1) {
        const waited = attempts[i]!.at - closes[i]!.at;
        const planned = closes[i]!.event.delayMs!;
        assert.ok(waited >= planned - 2 && waited < planned + 250, `attempt ${i + 1}: planned ${planned} ms, waited ${waited.toFixed(0)} ms`);
      }
      assert.equal(client.state === 'waiting' || client.state === 'connecting', true, client.state);

      const back = ReplicaProcess.spawn({ REDIS_URL: redis.url }, restarted.port);
      replicas.push(back);
      await back.waitReady();
      assert.equal(await queued, 2, 'the message sent while down went out on the new connection');
      assert.equal(await client.send('after'), 3);

      // A count proved the connection healthy: the next close starts again from the first ceiling.
      const closesBefore = ofType(events, 'close').length;
      await back.stop();
      await eventually(() => ofType(events, 'close').length > closesBefore, 'the next close', 5000);
      assert.deepEqual(
        ofType(events, 'close').slice(closesBefore, closesBefore + 1).map(({ event }) => [event.code, event.delayMs]),
        [[1001, 50]],
      );
    });

    for (const { what, env, burst, code } of [
      { what: '4502 (over the message rate)', env: { MAX_MESSAGES_PER_SECOND: '5' }, burst: range(1, 30).map((i) => `m${i}`), code: 4502 },
      { what: '1009 (message too big)', env: { MAX_MESSAGE_BYTES: '64' }, burst: ['fits', 'x'.repeat(65), 'after'], code: 1009 },
    ]) {
      it(`does not reconnect after ${what}, and fails what was pending`, async () => {
        const strict = await replica(env);
        const { client, events } = track(recordingClient({ url: strict.wsUrl, backoff: { initialMs: 10 } }));
        await client.connect();
        const results = await Promise.allSettled(burst.map((text) => client.send(text)));
        const rejected = results.filter((result) => result.status === 'rejected');
        assert.ok(rejected.length > 0, 'some sends fail');
        for (const result of rejected) {
          assert.ok(result.reason instanceof ChatClientError, String(result.reason));
          assert.equal(result.reason.code, code);
        }
        const [close] = ofType(events, 'close');
        assert.equal(close?.event.code, code);
        assert.equal(close?.event.willReconnect, false);
        assert.equal(client.state, 'closed');
        await sleep(500);
        assert.equal(ofType(events, 'reconnecting').length, 0, 'no reconnect');
        assert.equal(await strict.metric('wschat_connections_opened_total', { transport: 'plain' }), 1, 'one connection only');
        await assert.rejects(client.send('later'), ChatClientError);
      });
    }
  });
});
