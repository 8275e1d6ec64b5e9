/**
 * Redis faults under live traffic (a few hundred sockets on two replicas, plain
 * and socket.io): Redis SIGKILLed and restarted, and Redis slow (DEBUG SLEEP).
 * Complements tests/faults/redis-outage.test.ts (a graceful stop, 20 plain sockets) with
 * a kill, both transports, readiness sampled through the outage, and the
 * heartbeat checked socket by socket afterwards.
 */
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { PlainClient, SocketIoClient, range } from '../../tools/harness/clients.js';
import { PlainFlooder, SocketIoFlooder } from '../support/flooders.js';
import { percentile, roundTrips } from '../support/latency.js';
import { loopClientLabel, PlainLoopClient, SocketIoLoopClient, type LoopClient } from '../support/loop-clients.js';
import { Sampler, stopLoops } from '../support/probes.js';
import { assertByesConsistent, assertLoopSession, assertSessionIntact } from '../support/session-assertions.js';
import { eventually, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { scrape, sumOf } from '../../tools/harness/prometheus-text.js';
import { storedCount } from '../../tools/harness/session-keys.js';

const HEARTBEAT_INTERVAL_MS = 500;
const REDIS_COMMAND_TIMEOUT_MS = 1000;
const MAX_INFLIGHT = 64;
/** Pause between a count and the next message: ~10 messages/s per closed-loop client, ~3,000/s in all. */
const THINK_MS = 100;

/** Closed-loop clients spread over the replicas: plain ones try the replicas in turn, socket.io ones stay on one. */
function loopClients(replicas: ReplicaProcess[], plain: number, socketIo: number, thinkMs: number): LoopClient[] {
  const urls = replicas.map((replica) => replica.wsUrl);
  return [
    ...range(0, plain - 1).map((i) => new PlainLoopClient([...urls.slice(i % urls.length), ...urls.slice(0, i % urls.length)], { thinkMs })),
    ...range(0, socketIo - 1).map((i) => new SocketIoLoopClient(replicas[i % replicas.length]!.httpUrl, { thinkMs })),
  ];
}

function assertNoCrash(replicas: ReplicaProcess[]): void {
  for (const replica of replicas) {
    assert.equal(replica.stderr, '', 'nothing on stderr');
    assert.deepEqual(replica.events('unhandled_rejection'), [], 'no unhandled rejection');
  }
}

describe('Redis killed under traffic', function () {
  this.timeout(90_000);
  const PLAIN = 240;
  const SOCKETIO = 60;
  let redis: RedisServer;
  let replicas: ReplicaProcess[] = [];
  let clients: LoopClient[] = [];
  const watchers: Array<PlainClient | SocketIoClient> = [];

  before(async () => {
    redis = await RedisServer.start();
    // Logs at info: every won tick is a heartbeat_won line.
    const env = { HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS), REDIS_COMMAND_TIMEOUT_MS: String(REDIS_COMMAND_TIMEOUT_MS) };
    replicas = await Promise.all([ReplicaProcess.start(redis, env), ReplicaProcess.start(redis, env)]);
  });

  after(async () => {
    await stopLoops();
    await Promise.all(clients.map((client) => client.stop(1000).catch(() => undefined)));
    for (const watcher of watchers) watcher.close();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.destroy();
  });

  it('keeps the replicas up and truthful, loses no count a client saw, and the heartbeat resumes once per tick', async () => {
    clients = loopClients(replicas, PLAIN, SOCKETIO, THINK_MS);
    for (const client of clients) client.start();
    await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 30_000);
    // Idle sockets that only listen for heartbeats, on both replicas and both transports.
    for (const replica of replicas) {
      watchers.push(await PlainClient.connect(replica.wsUrl), await PlainClient.connect(replica.wsUrl));
      watchers.push(await SocketIoClient.connect(replica.httpUrl), await SocketIoClient.connect(replica.httpUrl));
    }
    const probes = new Sampler(
      () =>
        Promise.all(
          replicas.map(async (replica) => {
            const ready: { status: number; body: { reasons?: string[] } } = await fetch(`${replica.httpUrl}/readyz`).then(
              async (response) => ({ status: response.status, body: (await response.json()) as { reasons?: string[] } }),
              () => ({ status: 0, body: {} }),
            );
            return {
              ready: ready.status,
              reasons: ready.body.reasons ?? [],
              connected: await replica.metric('wschat_redis_connected'),
              healthz: await replica.probe('/healthz'),
              readyz: await replica.probe('/readyz'),
            };
          }),
        ),
      100,
    );
    await sleep(1000);

    const killedAt = Date.now();
    await redis.kill();
    await eventually(
      () => probes.samples.some((s) => s.at > killedAt && s.value.every((r) => r.ready === 503 && r.connected === 0)),
      'both replicas to report the outage',
      3000,
    );
    // A new connection during the outage is refused at the handshake, before any socket exists:
    // 503 store_unavailable on both endpoints, which Nginx (proxy_next_upstream http_503) would
    // hand to another replica, and which the client library retries.
    await assert.rejects(PlainClient.connect(replicas[0]!.wsUrl), /handshake refused with HTTP 503/);
    await assert.rejects(SocketIoClient.connect(replicas[1]!.httpUrl), /websocket error/);
    // Longer than ioredis holds commands (~1 s) and than REDIS_COMMAND_TIMEOUT_MS: every sender sees the 1013 path.
    await sleep(Math.max(0, killedAt + 3000 - Date.now()));

    const restartedAt = Date.now();
    await redis.resume();
    for (const replica of replicas) await replica.waitReady(10_000);
    const readyAt = Date.now();
    const countsAtReady = clients.map((client) => client.counts.length);
    await eventually(
      () => clients.every((client, index) => client.counts.length >= countsAtReady[index]! + 5),
      'every client counting again',
      20_000,
    );
    await sleep(Math.max(0, readyAt + 6 * HEARTBEAT_INTERVAL_MS + 200 - Date.now()));
    const windowEnd = Date.now() - 200;
    await probes.stop();
    await Promise.all(clients.map((client) => client.stop()));

    // Replicas stayed up and answered; readiness and the metric told the truth all along.
    assertNoCrash(replicas);
    for (const replica of replicas) assert.equal(await replica.probe('/healthz'), 200);
    const firstDown = probes.samples.find((s) => s.at > killedAt && s.value.some((r) => r.ready !== 200))!;
    assert.ok(firstDown.at - killedAt < 1000, `readiness dropped ${firstDown.at - killedAt} ms after the kill`);
    for (const sample of probes.samples.filter((s) => s.at >= firstDown.at + 300 && s.at < restartedAt)) {
      for (const replica of sample.value) {
        assert.equal(replica.ready, 503, `ready during the outage at +${sample.at - killedAt} ms`);
        assert.ok(replica.reasons.includes('redis'), JSON.stringify(replica.reasons));
        assert.equal(replica.connected, 0, 'wschat_redis_connected during the outage');
        assert.equal(replica.healthz, 200, 'healthz during the outage');
      }
    }
    const afterReady = probes.samples.filter((s) => s.at > readyAt + 500);
    assert.ok(afterReady.length > 5, 'samples after the recovery');
    for (const sample of afterReady) {
      for (const replica of sample.value) assert.deepEqual([replica.ready, replica.connected], [200, 1], 'ready again');
    }
    for (const sample of probes.samples.filter((s) => s.at < killedAt - 300)) {
      for (const replica of sample.value) assert.deepEqual([replica.ready, replica.connected], [200, 1], 'ready before');
    }

    // Counts: exactly once (every loop client resumes with last/pending).
    const inspect = redis.client();
    try {
      for (const [index, client] of clients.entries()) {
        const name = loopClientLabel(client, index);
        assert.ok(client.closes.length > 0, `${name} felt the outage`);
        if (client instanceof PlainLoopClient) assert.deepEqual(new Set(client.closes), new Set([1013]), `${name}: ${client.closes.join(',')}`);
        else assert.deepEqual(new Set(client.closes), new Set(['transport close']), `${name}: ${client.closes.join(',')}`);
        assertByesConsistent(name, client);
        const stored = (await storedCount(inspect, client.session)) ?? 0;
        assertLoopSession(name, client, stored);
      }
    } finally {
      inspect.disconnect();
    }

    // The heartbeat: no tick while Redis was down, then exactly one per tick, reaching each socket once.
    const won = replicas.flatMap((replica) => replica.events('heartbeat_won')).map((line) => String(line.ts));
    assert.equal(new Set(won).size, won.length, 'no tick won twice');
    // A tick that fires less than REDIS_COMMAND_TIMEOUT_MS before Redis is back can still be won (late) once it is:
    // its SET waits in ioredis's queue. Ticks before that are lost for the whole fleet.
    const duringOutage = won.filter(
      (ts) => Date.parse(ts) > killedAt + HEARTBEAT_INTERVAL_MS && Date.parse(ts) < restartedAt - REDIS_COMMAND_TIMEOUT_MS,
    );
    assert.deepEqual(duringOutage, [], 'nobody can win a tick without Redis');
    const after = won.filter((ts) => Date.parse(ts) > readyAt + HEARTBEAT_INTERVAL_MS && Date.parse(ts) <= windowEnd).sort();
    assert.ok(after.length >= 4, `ticks after the recovery: ${after.join(' ')}`);
    for (let i = 1; i < after.length; i += 1) {
      assert.equal(Date.parse(after[i]!) - Date.parse(after[i - 1]!), HEARTBEAT_INTERVAL_MS, `gap or duplicate: ${after.join(' ')}`);
    }
    for (const [index, watcher] of watchers.entries()) {
      const beats = watcher.heartbeats();
      assert.equal(new Set(beats).size, beats.length, `watcher ${index}: a tick twice`);
      const inWindow = beats.filter((ts) => Date.parse(ts) > readyAt + HEARTBEAT_INTERVAL_MS && Date.parse(ts) <= windowEnd).sort();
      assert.deepEqual(inWindow, after, `watcher ${index}: every tick after the recovery, once`);
      // An idle socket rides through the outage: nothing to count, nothing to close.
      if (watcher instanceof PlainClient) assert.equal(watcher.closed, undefined, `watcher ${index} was closed`);
      else assert.equal(watcher.disconnectReason, undefined, `watcher ${index} was disconnected`);
    }
    process.stdout.write(
      `      ${clients.length} sessions, ${clients.reduce((n, c) => n + c.counts.length, 0)} counts, ` +
        `${clients.reduce((n, c) => n + c.closes.length, 0)} closes (1013/transport close), every session exact, ` +
        `readiness 503 ${firstDown.at - killedAt} ms after the kill, ready ${readyAt - restartedAt} ms after the restart\n`,
    );
  });
});

describe('Redis slow (DEBUG SLEEP) under traffic', function () {
  this.timeout(90_000);
  const PLAIN = 200;
  const SOCKETIO = 40;
  const FLOODERS_PER_REPLICA = 5;
  const SOCKETIO_FLOODERS_PER_REPLICA = 2;
  const SLEEP_S = 5;
  /** RSS a replica may gain while Redis sleeps and clients keep sending (measured: a few MB). */
  const RSS_GROWTH_LIMIT = 64 * 1024 * 1024;
  let redis: RedisServer;
  let replicas: ReplicaProcess[] = [];
  let clients: LoopClient[] = [];
  let flooders: PlainFlooder[] = [];
  let ioFlooders: SocketIoFlooder[] = [];

  before(async () => {
    redis = await RedisServer.start({ enableDebugCommand: true });
    const env = {
      HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_INTERVAL_MS),
      REDIS_COMMAND_TIMEOUT_MS: String(REDIS_COMMAND_TIMEOUT_MS),
      MAX_INFLIGHT_PER_CONNECTION: String(MAX_INFLIGHT),
      // The flooders send faster than the per-connection rate limit on purpose: this test is about Redis.
      MAX_MESSAGES_PER_SECOND: '0',
      LOG_LEVEL: 'warn',
    };
    replicas = await Promise.all([ReplicaProcess.start(redis, env), ReplicaProcess.start(redis, env)]);
  });

  after(async () => {
    await stopLoops();
    for (const flooder of [...flooders, ...ioFlooders]) flooder.stop();
    await Promise.all(clients.map((client) => client.stop(1000).catch(() => undefined)));
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis?.destroy();
  });

  it('keeps memory and in-flight work bounded while clients keep sending, recovers its latency, does not crash', async () => {
    clients = loopClients(replicas, PLAIN, SOCKETIO, THINK_MS);
    for (const client of clients) client.start();
    flooders = replicas.flatMap((replica) => range(1, FLOODERS_PER_REPLICA).map(() => new PlainFlooder(replica.wsUrl, { perSecond: 200, size: 1024 })));
    ioFlooders = replicas.flatMap((replica) =>
      range(1, SOCKETIO_FLOODERS_PER_REPLICA).map(() => new SocketIoFlooder(replica.httpUrl, { perSecond: 200, size: 1024 })),
    );
    for (const flooder of [...flooders, ...ioFlooders]) flooder.start();
    await eventually(() => clients.every((client) => client.counts.length >= 3), 'every client counting', 30_000);
    await eventually(() => flooders.every((flooder) => flooder.counts.length >= 50), 'every flooder counting', 10_000);
    const baseline = await roundTrips(replicas[0]!.wsUrl, 30);

    const samples = new Sampler(
      () =>
        Promise.all(
          replicas.map(async (replica) => {
            const { samples } = await scrape(`${replica.httpUrl}/metrics`);
            return {
              rss: sumOf(samples, 'process_resident_memory_bytes'),
              inflight: sumOf(samples, 'wschat_messages_inflight'),
              connections: sumOf(samples, 'wschat_connections_active'),
              healthz: await replica.probe('/healthz'),
              readyz: await replica.probe('/readyz'),
            };
          }),
        ),
      100,
    );
    await sleep(500);
    const sleeper = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    const sleptAt = Date.now();
    await sleeper.call('DEBUG', 'SLEEP', String(SLEEP_S));
    const wokeAt = Date.now();
    sleeper.disconnect();
    assert.ok(wokeAt - sleptAt >= SLEEP_S * 1000, `Redis slept ${wokeAt - sleptAt} ms`);

    // Recovery: every client counts again, the backlog drains, latency comes back.
    const countsAtWake = clients.map((client) => client.counts.length);
    await eventually(
      () => clients.every((client, index) => client.counts.length >= countsAtWake[index]! + 5),
      'every client counting again',
      20_000,
    );
    await eventually(
      async () => (await Promise.all(replicas.map((replica) => replica.metric('wschat_messages_inflight')))).every((n) => n < MAX_INFLIGHT),
      'the in-flight backlog to drain',
      10_000,
    );
    await eventually(async () => (await Promise.all(replicas.map((replica) => replica.probe('/readyz')))).every((status) => status === 200), 'ready again', 10_000);
    const recovered = await roundTrips(replicas[0]!.wsUrl, 30);
    await samples.stop();
    for (const flooder of [...flooders, ...ioFlooders]) flooder.stop();
    await Promise.all(clients.map((client) => client.stop()));

    assertNoCrash(replicas);
    const before = samples.between(0, sleptAt);
    const during = samples.between(sleptAt, wokeAt);
    assert.ok(during.length >= 10, `${during.length} samples while Redis slept`);
    for (const [r] of replicas.entries()) {
      const rssBefore = Math.max(...before.map((s) => s[r]!.rss));
      const rssPeak = Math.max(...during.map((s) => s[r]!.rss));
      assert.ok(rssPeak - rssBefore < RSS_GROWTH_LIMIT, `replica ${r}: RSS grew by ${rssPeak - rssBefore} bytes while Redis slept`);
      // The bound: MAX_INFLIGHT per connection (plain sockets are paused there; socket.io ones closed over it).
      for (const sample of during) {
        assert.ok(
          sample[r]!.inflight <= MAX_INFLIGHT * sample[r]!.connections,
          `replica ${r}: ${sample[r]!.inflight} in flight on ${sample[r]!.connections} connections`,
        );
        assert.equal(sample[r]!.healthz, 200, `replica ${r} answered /healthz while Redis slept`);
      }
      // A Redis that leaves a PING unanswered for REDIS_COMMAND_TIMEOUT_MS cannot be told
      // from a partition: the replica drops that connection and is unready until Redis
      // answers again (probes every half timeout, so within 1.5 timeouts; 500 ms of slack).
      // Only samples read in full before Redis could have woken (it slept from after sleptAt for
      // SLEEP_S): wokeAt is when this busy process read the answer, which can lag the wake.
      const stalled = samples.within(sleptAt + 1.5 * REDIS_COMMAND_TIMEOUT_MS + 500, sleptAt + SLEEP_S * 1000);
      assert.ok(stalled.length >= 5, `${stalled.length} samples after the stall was due to be noticed`);
      for (const sample of stalled) assert.equal(sample[r]!.readyz, 503, `replica ${r} unready while Redis did not answer`);
      for (const sample of before) assert.equal(sample[r]!.readyz, 200, `replica ${r} ready before the stall`);
      const peakInflight = Math.max(...during.map((s) => s[r]!.inflight));
      const bound = MAX_INFLIGHT * (FLOODERS_PER_REPLICA + SOCKETIO_FLOODERS_PER_REPLICA) + (PLAIN + SOCKETIO);
      assert.ok(peakInflight <= bound, `replica ${r}: ${peakInflight} messages in flight, bound ${bound}`);
      // The flooders did reach the bound: the test exercised it.
      assert.ok(peakInflight >= MAX_INFLIGHT * FLOODERS_PER_REPLICA, `replica ${r}: only ${peakInflight} in flight at the peak`);
      const connections = during.map((s) => s[r]!.connections);
      process.stdout.write(
        `      replica ${r}: RSS ${(rssBefore / 2 ** 20).toFixed(1)} MiB before, peak ${(rssPeak / 2 ** 20).toFixed(1)} MiB while Redis slept; ` +
          `peak in flight ${peakInflight} on ${Math.min(...connections)}-${Math.max(...connections)} connections\n`,
      );
    }
    const p50Before = percentile(baseline, 50);
    const p50After = percentile(recovered, 50);
    process.stdout.write(`      round trip p50 ${p50Before.toFixed(2)} ms before, ${p50After.toFixed(2)} ms after the sleep\n`);
    assert.ok(p50After <= Math.max(5 * p50Before, p50Before + 20), `latency did not recover: p50 ${p50Before} ms before, ${p50After} ms after`);

    // What clients saw: slow replies, then bye + 1013 (plain and socket.io loop clients alike), nothing lost.
    // A message waits for its 1013 up to twice REDIS_COMMAND_TIMEOUT_MS: ioredis sends an auto-pipelined batch
    // only once the previous one settled, so a message that arrived after the stall first waits for the batch
    // in flight to time out, then for its own timeout.
    const firstCloses = clients.map((client) => client.closeTimes.find((at) => at > sleptAt)).filter((at) => at !== undefined);
    assert.ok(firstCloses.length > clients.length / 2, `${firstCloses.length} of ${clients.length} loop clients closed while Redis slept`);
    const earliest = Math.min(...firstCloses) - sleptAt;
    const latest = Math.max(...firstCloses) - sleptAt;
    process.stdout.write(`      first 1013 after the stall: ${earliest}-${latest} ms (REDIS_COMMAND_TIMEOUT_MS ${REDIS_COMMAND_TIMEOUT_MS})\n`);
    assert.ok(earliest >= REDIS_COMMAND_TIMEOUT_MS - 50, `a client was closed ${earliest} ms into the stall, before the timeout`);
    assert.ok(latest <= 2 * REDIS_COMMAND_TIMEOUT_MS + 1000, `a client waited ${latest} ms for its 1013`);
    const inspect = redis.client();
    try {
      for (const [index, client] of clients.entries()) {
        const name = loopClientLabel(client, index);
        if (client instanceof PlainLoopClient) assert.ok(client.closes.every((code) => code === 1013), `${name}: ${client.closes.join(',')}`);
        else assert.ok(client.closes.every((reason) => reason === 'transport close'), `${name}: ${client.closes.join(',')}`);
        assertByesConsistent(name, client);
        assertLoopSession(name, client, (await storedCount(inspect, client.session)) ?? 0);
      }
      for (const [index, flooder] of flooders.entries()) {
        const name = `flooder ${index}`;
        assert.ok(flooder.closes.length > 0, `${name} was never closed while Redis slept`);
        assert.ok(flooder.closes.every((code) => code === 1013), `${name}: ${flooder.closes.join(',')}`);
        assertSessionIntact(name, flooder.counts, (await storedCount(inspect, flooder.session)) ?? 0, Number.POSITIVE_INFINITY);
      }
      // socket.io cannot stop reading one client: over the in-flight bound it is closed for good (bye, then 4501).
      for (const [index, flooder] of ioFlooders.entries()) {
        assert.equal(flooder.disconnectReason, 'io server disconnect', `socket.io flooder ${index}`);
        assert.equal(flooder.byes.length, 1, `socket.io flooder ${index}: its bye`);
        assert.equal(flooder.byes[0], flooder.counts.at(-1) ?? 0, `socket.io flooder ${index}: the bye carries the last count`);
      }
    } finally {
      inspect.disconnect();
    }
  });
});
