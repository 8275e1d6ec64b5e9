/**
 * The fleet heartbeat in-process: a clock moved by hand (ManualClock), an election
 * Redis whose every SET the test answers by hand, a fleet channel that records what
 * is published and hands the heartbeat what the test sends it, and real
 * SessionConnections over RecordingSinks in a real registry. Covers tick alignment,
 * timers that fire early or late, who publishes, an election that fails or is slow,
 * stop/start, and the fan-out to local sockets (probes included).
 */
import assert from 'node:assert/strict';
import { loadConfig } from '../../services/gateway/config.js';
import { ConnectionRegistry } from '../../services/gateway/connection-registry.js';
import type { FleetChannel } from '../../services/gateway/fleet-channel.js';
import { Heartbeat, type ElectionRedis } from '../../services/gateway/heartbeat.js';
import { createLogger, sessionTag, type Logger } from '../../services/gateway/logger.js';
import { PassThrough } from 'node:stream';
import { Metrics } from '../../services/gateway/metrics.js';
import type { FleetHeartbeat, HeartbeatMessage } from '../../shared/protocol/messages.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { ManualClock } from '../support/manual-clock.js';
import { Deferred, settled } from '../support/manual-store.js';
import { sessionHarness } from '../support/session-harness.js';
import { RecordingSink } from '../support/recording-sink.js';
import { metricValue } from '../support/in-process.js';
import type { Transport } from '../../services/gateway/metrics.js';
import type { SlicePolicy } from '../../services/gateway/sliced-walk.js';
import type { HeartbeatPacket } from '../../services/gateway/heartbeat-packet.js';
import { ManualYielder } from '../support/manual-yielder.js';

const INTERVAL_MS = 1000;
/** A quarter past a tick: the next tick is 750 ms away. */
const START = 1_700_000_000_250;
const FIRST_TICK = 1_700_000_001_000;
const REPLICA = 'unit-a';

/** One SET NX PX the heartbeat asked for, answered by the test. */
interface Election {
  key: string;
  value: string;
  /** The SET's options as sent, in order: what makes it an expiring lock only one replica takes. */
  options: [string, number, string];
  ttlMs: number;
  answer: Deferred<'OK' | null>;
}

class ManualElection implements ElectionRedis {
  status = 'ready';
  readonly elections: Election[] = [];

  set(key: string, value: string, px: 'PX', ttlMs: number, nx: 'NX'): Promise<'OK' | null> {
    const answer = new Deferred<'OK' | null>();
    this.elections.push({ key, value, options: [px, ttlMs, nx], ttlMs, answer });
    return answer.promise;
  }

  /** Election `n` (1-based, in call order); fails the test if it was never asked for. */
  nth(n: number): Election {
    const election = this.elections[n - 1];
    if (election === undefined) throw new Error(`election ${n} was never started (${this.elections.length} were)`);
    return election;
  }
}

class RecordingFleet implements FleetChannel {
  readonly published: HeartbeatMessage[] = [];
  private handler: ((message: FleetHeartbeat) => void) | undefined;

  publish(message: HeartbeatMessage): void {
    this.published.push(message);
  }
  subscribe(handler: (message: FleetHeartbeat) => void): void {
    this.handler = handler;
  }
  /** What another replica published reaches this one; `unknown` because the wire can carry anything. */
  receive(message: unknown): void {
    if (this.handler === undefined) throw new Error('the heartbeat never subscribed to the fleet channel');
    this.handler(message as FleetHeartbeat);
  }
}

interface Harness {
  heartbeat: Heartbeat;
  clock: ManualClock;
  redis: ManualElection;
  fleet: RecordingFleet;
  registry: ConnectionRegistry;
  metrics: Metrics;
  ticks: number[];
}

/** A logger at info whose lines the test reads back, each without its timestamp, replica and version. */
function recordingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const stream = new PassThrough();
  const lines: Array<Record<string, unknown>> = [];
  stream.on('data', (chunk: Buffer) => {
    for (const text of String(chunk).split('\n')) {
      if (text === '') continue;
      const line = Object.entries(JSON.parse(text) as Record<string, unknown>);
      lines.push(Object.fromEntries(line.filter(([key]) => !['timestamp', 'replica', 'version'].includes(key))));
    }
  });
  return { logger: createLogger({ level: 'info', replica: REPLICA, version: 'blue', stream }), lines };
}

/**
 * `onTick` replaces the default one, which records each tick's clock reading in `ticks`;
 * `slices` replaces the fan-out's slicing (a ManualYielder's policy drives it by hand).
 */
function harness(intervalMs = INTERVAL_MS, onTick?: () => void, slices?: SlicePolicy, logger?: Logger): Harness {
  const clock = new ManualClock(START);
  const redis = new ManualElection();
  const fleet = new RecordingFleet();
  const registry = new ConnectionRegistry();
  const metrics = new Metrics();
  const ticks: number[] = [];
  const config = loadConfig({ HEARTBEAT_INTERVAL_MS: String(intervalMs), REPLICA_ID: REPLICA, REDIS_KEY_PREFIX: 'unit:' });
  const heartbeat = new Heartbeat({
    config,
    redis,
    fleet,
    registry,
    metrics,
    // Error level: the warn lines of skipped ticks would only clutter the reporter.
    logger: logger ?? createLogger({ level: 'error', replica: REPLICA, version: 'blue' }),
    onTick: onTick ?? (() => ticks.push(clock.now())),
    clock,
    ...(slices === undefined ? {} : { slices }),
  });
  return { heartbeat, clock, redis, fleet, registry, metrics, ticks };
}

/** A live connection of `session` in the registry; what the heartbeat writes to it lands in the returned sink. */
function connect(registry: ConnectionRegistry, transport: Transport, session = randomSessionId()): RecordingSink {
  const sink = new RecordingSink(transport);
  registry.add(sessionHarness({}, sink, session).connection);
  return sink;
}

const iso = (time: number): string => new Date(time).toISOString();
const keyOf = (time: number): string => `unit:heartbeat:${time / INTERVAL_MS}`;
const keys = (redis: ManualElection): string[] => redis.elections.map(({ key }) => key);

async function fanOutSeconds(metrics: Metrics): Promise<{ sum: number; count: number }> {
  const values = (await metrics.heartbeatFanOut.get()).values;
  const of = (suffix: string): number => values.find((value) => value.metricName === `wschat_heartbeat_fanout_seconds${suffix}`)?.value ?? NaN;
  return { sum: of('_sum'), count: of('_count') };
}

describe('Heartbeat (unit)', () => {
  describe('ticks', () => {
    it('wakes at the next wall-clock multiple of the interval and elects that tick by its index, with its replica id', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      assert.deepEqual(clock.delays, [FIRST_TICK - START], 'the first tick is the next multiple of the interval');
      assert.equal(redis.elections.length, 0, 'no election before the tick');
      clock.fireNext();
      assert.deepEqual(
        redis.elections.map(({ key, value }) => [key, value]),
        [[keyOf(FIRST_TICK), REPLICA]],
      );
      heartbeat.stop();
    });

    it('elects with SET NX PX: only the first replica takes the tick, and the lock expires', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      clock.fireNext();
      heartbeat.stop();
      // Without NX every replica would win every tick; without PX a lock would stay in Redis for ever.
      assert.deepEqual(redis.nth(1).options, ['PX', 10_000, 'NX']);
    });

    it('locks a tick for 10 ticks, never under 10 s', () => {
      for (const [interval, ttl] of [[100, 10_000], [1000, 10_000], [5000, 50_000], [30_000, 300_000]] as const) {
        const { heartbeat, clock, redis } = harness(interval);
        heartbeat.start();
        clock.fireNext();
        heartbeat.stop();
        assert.equal(redis.nth(1).ttlMs, ttl, `HEARTBEAT_INTERVAL_MS=${interval}`);
      }
    });

    it('goes on from tick to tick, one interval apart, whether or not the elections were answered', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      clock.advanceTo(FIRST_TICK + 3 * INTERVAL_MS);
      assert.deepEqual(keys(redis), [0, 1, 2, 3].map((n) => keyOf(FIRST_TICK + n * INTERVAL_MS)));
      assert.deepEqual(clock.delays, [FIRST_TICK - START, INTERVAL_MS, INTERVAL_MS, INTERVAL_MS, INTERVAL_MS]);
      assert.equal(clock.pending, 1, 'one timer at a time');
      heartbeat.stop();
    });

    it('a timer that fires early on the wall clock never runs its tick twice', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      clock.fireNext(FIRST_TICK - 5);
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK)]);
      // The clock still reads the first tick's interval: the next tick is the one after it.
      assert.equal(clock.nextDue, FIRST_TICK + INTERVAL_MS, 'the next timer is for the tick after the one just run');
      clock.fireNext();
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK), keyOf(FIRST_TICK + INTERVAL_MS)]);
      heartbeat.stop();
    });

    it('a timer that fires late (a blocked event loop) elects the tick it was set for, then skips the ticks it slept through', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      clock.fireNext(FIRST_TICK + 2 * INTERVAL_MS + 500);
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK)], 'the late tick keeps its own index (its lock stops a second win)');
      assert.equal(clock.nextDue, FIRST_TICK + 3 * INTERVAL_MS, 'the next tick is the next multiple from now');
      heartbeat.stop();
    });

    it('runs onTick on every tick, before its election is answered, won, lost or failed', async () => {
      const { heartbeat, clock, redis, ticks } = harness();
      heartbeat.start();
      clock.fireNext();
      assert.deepEqual(ticks, [FIRST_TICK], 'before the election is answered');
      redis.nth(1).answer.reject(new Error('Command timed out'));
      await settled();
      clock.fireNext();
      redis.nth(2).answer.resolve(null);
      await settled();
      clock.fireNext();
      redis.nth(3).answer.resolve('OK');
      await settled();
      assert.deepEqual(ticks, [0, 1, 2].map((n) => FIRST_TICK + n * INTERVAL_MS));
      heartbeat.stop();
    });
  });

  describe('stop and start', () => {
    it('stop cancels the next tick; start again wakes at the next multiple from then', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      heartbeat.stop();
      assert.equal(clock.pending, 0, 'no timer left after stop');
      clock.advanceTo(FIRST_TICK + 5 * INTERVAL_MS + 100);
      assert.equal(redis.elections.length, 0, 'no tick while stopped');
      heartbeat.start();
      assert.equal(clock.nextDue, FIRST_TICK + 6 * INTERVAL_MS);
      clock.fireNext();
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK + 6 * INTERVAL_MS)]);
      heartbeat.stop();
    });

    it('start on a running heartbeat keeps its one timer', () => {
      const { heartbeat, clock, redis } = harness();
      heartbeat.start();
      heartbeat.start();
      assert.equal(clock.pending, 1);
      clock.advanceTo(FIRST_TICK);
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK)], 'one election per tick');
      heartbeat.stop();
    });

    it('stop from inside a tick (its onTick) leaves no timer behind', () => {
      const h = harness(INTERVAL_MS, () => h.heartbeat.stop());
      h.heartbeat.start();
      h.clock.fireNext();
      assert.equal(h.clock.pending, 0, 'the timer the tick set for the next one is cancelled too');
      h.clock.advanceTo(FIRST_TICK + 5 * INTERVAL_MS);
      assert.deepEqual(keys(h.redis), [keyOf(FIRST_TICK)], 'the tick that was running still elects; none after it');
    });

    it('an election answered after stop still publishes its tick: this replica holds its lock, nobody else can', async () => {
      const { heartbeat, clock, redis, fleet } = harness();
      heartbeat.start();
      clock.fireNext();
      heartbeat.stop();
      redis.nth(1).answer.resolve('OK');
      await settled();
      assert.deepEqual(fleet.published, [{ ts: iso(FIRST_TICK) }]);
      assert.equal(clock.pending, 0, 'and no tick after it');
    });
  });

  describe('the election', () => {
    it('the winner publishes one message carrying the tick instant, and writes it to its own sockets on both transports', async () => {
      const { heartbeat, clock, redis, fleet, registry, metrics } = harness();
      const sinks = [connect(registry, 'plain'), connect(registry, 'plain'), connect(registry, 'socketio')];
      heartbeat.start();
      clock.fireNext();
      assert.deepEqual(fleet.published, [], 'nothing before Redis answered');
      clock.time = FIRST_TICK + 40;
      redis.nth(1).answer.resolve('OK');
      await settled();
      assert.deepEqual(fleet.published, [{ ts: iso(FIRST_TICK) }]);
      for (const sink of sinks) assert.deepEqual(sink.events, [`heartbeat ${iso(FIRST_TICK)}`], sink.transport);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_published_total'), 1);
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 1);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'plain' }), 2);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'socketio' }), 1);
      assert.deepEqual(await fanOutSeconds(metrics), { sum: 0.04, count: 1 }, 'fan-out is measured from the tick instant');
      heartbeat.stop();
    });

    it('a replica that lost publishes nothing and writes only what the fleet sends it', async () => {
      const { heartbeat, clock, redis, fleet, registry, metrics } = harness();
      const sink = connect(registry, 'socketio');
      heartbeat.start();
      clock.fireNext();
      redis.nth(1).answer.resolve(null);
      await settled();
      assert.deepEqual(fleet.published, []);
      assert.deepEqual(sink.events, [], 'the winner elsewhere has not published yet');
      fleet.receive({ ts: iso(FIRST_TICK) });
      assert.deepEqual(sink.events, [`heartbeat ${iso(FIRST_TICK)}`]);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_published_total'), 0);
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 1);
      heartbeat.stop();
    });

    it('a failed election skips the tick (counted, nothing published or written); the next tick elects again', async () => {
      const { heartbeat, clock, redis, fleet, registry, metrics } = harness();
      const sink = connect(registry, 'plain');
      heartbeat.start();
      clock.fireNext();
      redis.nth(1).answer.reject(new Error('Command timed out'));
      await settled();
      assert.deepEqual(fleet.published, []);
      assert.deepEqual(sink.events, []);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'heartbeat_election' }), 1);
      assert.equal(clock.pending, 1, 'the next tick is still on');

      clock.fireNext();
      redis.nth(2).answer.resolve('OK');
      await settled();
      assert.deepEqual(fleet.published, [{ ts: iso(FIRST_TICK + INTERVAL_MS) }]);
      assert.deepEqual(sink.events, [`heartbeat ${iso(FIRST_TICK + INTERVAL_MS)}`]);
      heartbeat.stop();
    });

    it('a slow election does not hold back the next tick, and its late win still carries its own tick instant', async () => {
      const { heartbeat, clock, redis, fleet, metrics } = harness();
      heartbeat.start();
      clock.fireNext();
      clock.fireNext();
      assert.deepEqual(keys(redis), [keyOf(FIRST_TICK), keyOf(FIRST_TICK + INTERVAL_MS)], 'the second tick elected while the first was unanswered');
      clock.time = FIRST_TICK + INTERVAL_MS + 250;
      // One Redis connection answers in order: the first tick's SET comes back first.
      redis.nth(1).answer.resolve('OK');
      redis.nth(2).answer.resolve(null);
      await settled();
      assert.deepEqual(fleet.published, [{ ts: iso(FIRST_TICK) }]);
      assert.deepEqual(await fanOutSeconds(metrics), { sum: 1.25, count: 1 }, 'the lateness shows in the fan-out histogram');
      heartbeat.stop();
    });

    it('a tick won while Redis is not ready is not published, nor written locally, and is counted', async () => {
      const { heartbeat, clock, redis, fleet, registry, metrics } = harness();
      const sink = connect(registry, 'plain');
      heartbeat.start();
      clock.fireNext();
      redis.status = 'reconnecting';
      redis.nth(1).answer.resolve('OK');
      await settled();
      assert.deepEqual(fleet.published, []);
      assert.deepEqual(sink.events, [], 'the fleet skips the tick: so do this replica’s sockets');
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'heartbeat_publish' }), 1);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_published_total'), 0);
      heartbeat.stop();
    });
  });

  describe('a tick in slices', () => {
    /** A sink that also keeps every packet it was handed, to see one packet serve the whole tick. */
    class PacketSink extends RecordingSink {
      readonly packets: HeartbeatPacket[] = [];
      override sendHeartbeat(packet: HeartbeatPacket): void {
        this.packets.push(packet);
        super.sendHeartbeat(packet);
      }
    }

    /** `n` opened sessions (their counts answered by hand), registered in order. */
    async function openedSessions(registry: ConnectionRegistry, n: number): Promise<Array<ReturnType<typeof sessionHarness>>> {
      const sessions = Array.from({ length: n }, () => sessionHarness({}, new PacketSink()));
      for (const session of sessions) {
        session.connection.open();
        session.store.opens[0]!.resolve({ count: 0, resumed: false });
        registry.add(session.connection);
      }
      await settled();
      return sessions;
    }

    it('writes a slice, yields, and answers a count between two slices: each socket one heartbeat, one packet, in order with its counts', async () => {
      const yields = new ManualYielder();
      const { registry, fleet, metrics } = harness(INTERVAL_MS, undefined, yields.policy(2));
      const sessions = await openedSessions(registry, 5);
      const ts = iso(FIRST_TICK);
      fleet.receive({ ts });
      assert.deepEqual(sessions.map(({ sink }) => sink.written.length), [1, 1, 0, 0, 0], 'the first slice: two sockets');
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 0, 'the tick is not delivered until its last slice');
      // Between two slices, messages on the first and the last socket are counted and answered.
      for (const index of [0, 4]) {
        sessions[index]!.connection.receive(3);
        sessions[index]!.store.nthIncrement(1).resolve(1);
      }
      await settled();
      assert.equal(yields.runAll(), 2, 'two more slices');
      assert.deepEqual(sessions[0]!.sink.written, [`heartbeat ${ts}`, 'count 1'], 'a socket of an earlier slice: the tick, then the count');
      assert.deepEqual(sessions[4]!.sink.written, ['count 1', `heartbeat ${ts}`], 'a socket of a later slice: the count, then the tick');
      for (const { sink } of sessions) assert.equal(sink.written.filter((line) => line.startsWith('heartbeat')).length, 1);
      const packets = new Set(sessions.flatMap(({ sink }) => (sink as PacketSink).packets));
      assert.equal(packets.size, 1, 'one packet, serialised once, for the whole tick');
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 1);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'plain' }), 5);
    });

    it('a socket that joins during the tick gets the next one, not this one; a socket that closes during it is skipped', async () => {
      const yields = new ManualYielder();
      const { registry, fleet, metrics } = harness(INTERVAL_MS, undefined, yields.policy(1));
      const sessions = await openedSessions(registry, 3);
      const ts = iso(FIRST_TICK);
      fleet.receive({ ts });
      const [joined] = await openedSessions(registry, 1);
      sessions[2]!.connection.transportClosed(1000);
      registry.delete(sessions[2]!.connection);
      yields.runAll();
      assert.deepEqual(sessions[0]!.sink.written, [`heartbeat ${ts}`]);
      assert.deepEqual(sessions[1]!.sink.written, [`heartbeat ${ts}`]);
      assert.deepEqual(sessions[2]!.sink.written, [], 'closed before its slice');
      assert.deepEqual(joined!.sink.written, [], 'joined after the tick came');
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'plain' }), 2);
      const next = iso(FIRST_TICK + INTERVAL_MS);
      fleet.receive({ ts: next });
      yields.runAll();
      assert.deepEqual(joined!.sink.written, [`heartbeat ${next}`]);
    });

    it('a tick that comes while the previous one is still being written finishes the previous one first: every socket gets both, in order', async () => {
      const yields = new ManualYielder();
      const { registry, fleet, metrics } = harness(INTERVAL_MS, undefined, yields.policy(2));
      const sessions = await openedSessions(registry, 5);
      const [first, second] = [iso(FIRST_TICK), iso(FIRST_TICK + INTERVAL_MS)];
      fleet.receive({ ts: first });
      fleet.receive({ ts: second });
      assert.deepEqual(sessions.map(({ sink }) => sink.written.length), [2, 2, 1, 1, 1], 'the first tick written to its end, the second one begun');
      yields.runAll();
      for (const { sink } of sessions) assert.deepEqual(sink.written, [`heartbeat ${first}`, `heartbeat ${second}`]);
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 2);
    });

    it('a probe is sliced the same way and reaches its session on a later slice', () => {
      const yields = new ManualYielder();
      const { registry, fleet } = harness(INTERVAL_MS, undefined, yields.policy(1));
      const session = randomSessionId();
      const others = [connect(registry, 'plain'), connect(registry, 'plain')];
      const probed = connect(registry, 'socketio', session);
      const ts = iso(FIRST_TICK + 7);
      fleet.receive({ ts, probe: session });
      assert.deepEqual(probed.events, []);
      yields.runAll();
      assert.deepEqual(probed.events, [`heartbeat ${ts}`]);
      for (const other of others) assert.deepEqual(other.events, []);
    });
  });

  describe('log lines', () => {
    it('logs a won tick, a failed election and a win that Redis could not publish, each with its tick index', async () => {
      const { logger, lines } = recordingLogger();
      const { heartbeat, clock, redis } = harness(INTERVAL_MS, undefined, undefined, logger);
      heartbeat.start();
      clock.fireNext();
      redis.nth(1).answer.resolve('OK');
      await settled();
      clock.fireNext();
      redis.nth(2).answer.reject(Object.assign(new Error('Command timed out'), { code: 'ETIMEDOUT' }));
      await settled();
      redis.status = 'reconnecting';
      clock.fireNext();
      redis.nth(3).answer.resolve('OK');
      await settled();
      heartbeat.stop();
      const index = FIRST_TICK / INTERVAL_MS;
      assert.deepEqual(lines, [
        { level: 'info', message: 'heartbeat won', event: 'heartbeat_won', tick: index, ts: iso(FIRST_TICK) },
        { level: 'warn', message: 'heartbeat election failed', event: 'heartbeat_skipped', tick: index + 1, error: 'Command timed out', error_code: 'ETIMEDOUT' },
        { level: 'warn', message: 'heartbeat won but redis not ready; not published', event: 'heartbeat_skipped', tick: index + 2 },
      ]);
    });

    it('logs a probe delivered with its session tag and how many sockets got it, and nothing for a probe no socket here holds', () => {
      const { logger, lines } = recordingLogger();
      const { registry, fleet } = harness(INTERVAL_MS, undefined, undefined, logger);
      const session = randomSessionId();
      connect(registry, 'plain', session);
      connect(registry, 'socketio', session);
      const ts = iso(FIRST_TICK);
      fleet.receive({ ts, probe: randomSessionId() });
      fleet.receive({ ts, probe: session });
      return settled().then(() => {
        assert.deepEqual(lines, [{ level: 'info', message: 'heartbeat probe delivered', event: 'heartbeat_probe', session: sessionTag(session), sockets: 2, ts }]);
      });
    });

    it('stops cleanly when it never started', () => {
      const { heartbeat, clock } = harness();
      heartbeat.stop();
      assert.equal(clock.pending, 0);
    });
  });

  describe('what the fleet sends', () => {
    it('writes a heartbeat to every local socket, each once, and needs no tick of its own (a heartbeat never started still delivers)', async () => {
      const { registry, metrics, fleet } = harness();
      const sinks = [connect(registry, 'plain'), connect(registry, 'socketio'), connect(registry, 'socketio')];
      const ts = iso(FIRST_TICK);
      fleet.receive({ ts });
      for (const sink of sinks) assert.deepEqual(sink.events, [`heartbeat ${ts}`], sink.transport);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'plain' }), 1);
      assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport: 'socketio' }), 2);
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 1);
    });

    for (const [label, message] of [
      ['no ts', {}],
      ['a number', { ts: FIRST_TICK }],
      ['not ISO-8601', { ts: 'Tue, 14 Nov 2023 22:13:21 GMT' }],
      ['ISO without milliseconds', { ts: '2023-11-14T22:13:21Z' }],
      ['ISO with an offset', { ts: '2023-11-14T22:13:21.000+00:00' }],
      ['text before the ISO instant', { ts: 'x2023-11-14T22:13:21.000Z' }],
      ['text after the ISO instant', { ts: '2023-11-14T22:13:21.000Zx' }],
      ['null', null],
      ['a string', 'heartbeat'],
    ] as const) {
      it(`drops a fleet message with ${label}: written nowhere, counted heartbeat_malformed`, async () => {
        const { registry, metrics, fleet } = harness();
        const sink = connect(registry, 'plain');
        fleet.receive(message);
        assert.deepEqual(sink.events, []);
        assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'heartbeat_malformed' }), 1);
        assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 0);
      });
    }

    it("writes a probe to its session's sockets only, on both transports, and counts it as no tick", async () => {
      const { registry, metrics, fleet } = harness();
      const session = randomSessionId();
      const probed = [connect(registry, 'plain', session), connect(registry, 'socketio', session)];
      const other = connect(registry, 'plain');
      const ts = iso(FIRST_TICK + 123);
      fleet.receive({ ts, probe: session });
      for (const sink of probed) assert.deepEqual(sink.events, [`heartbeat ${ts}`], sink.transport);
      assert.deepEqual(other.events, [], 'another session gets nothing');
      assert.equal(await metricValue(metrics, 'wschat_heartbeat_ticks_delivered_total'), 0);
      for (const transport of ['plain', 'socketio']) {
        assert.equal(await metricValue(metrics, 'wschat_heartbeats_delivered_total', { transport }), 0, transport);
      }
    });

    it('drops a probe whose session id is malformed (counted), writing nothing', async () => {
      const { registry, metrics, fleet } = harness();
      const sink = connect(registry, 'plain');
      for (const probe of ['not a session', 42, '']) fleet.receive({ ts: iso(FIRST_TICK), probe });
      assert.deepEqual(sink.events, []);
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind: 'heartbeat_malformed' }), 3);
    });
  });
});
