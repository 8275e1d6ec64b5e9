/**
 * Exactly once under real network faults (DESIGN.md, "Exactly once" and
 * "Failure modes"): 200 closed-loop clients through Nginx (mostly plain, some socket.io,
 * every one resuming with `last` and `pending`), two replicas, one Redis with AOF
 * `appendfsync always`, and for each fault in turn:
 *   a) replica 1 cut from Redis both ways (DROP, no reset), then healed;
 *   b) only Redis -> replica 1 dropped (its commands reach Redis and are applied, the
 *      replies never come back), then healed;
 *   c) Nginx <-> replica 1 dropped (handshakes and proxied traffic), then healed;
 *   d) replica 1 SIGKILLed (and started again);
 *   e) Redis SIGKILLed and restarted;
 * and, on a Sentinel set, f) a failover under the traffic (SENTINEL FAILOVER without
 * waiting for the replica to catch up, so the newest writes can be lost).
 * Every session must end with counts exactly 1..N, N stored in Redis: 0 skipped, 0
 * repeated. A replica cut from Redis must turn unready within its documented bound and
 * come back by itself; new sessions opened through Nginx during a replica's fault must
 * get counted by a working replica.
 *
 * The faults are iptables rules on loopback (tests/support/loopback-faults.ts): each
 * replica reaches Redis through a loopback address of its own (127.0.77.<index>), so
 * its links can be cut by address without touching the other's. Needs root. Rules are
 * removed by the after hooks whatever happens, and by the next run if this one dies.
 * Writes what it measured to reports/network-faults.json.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { type LoopClient, loopClientLabel, loopClientsOf } from '../support/loop-clients.js';
import { LoopbackFaults, type Direction } from '../support/loopback-faults.js';
import { ConnectProber, stopLoops } from '../support/probes.js';
import { RedisSentinelSet } from '../support/redis-topologies.js';
import { ReplicaFleet } from '../support/replica-fleet.js';
import { eventually, RedisServer, sleep, type ReplicaProcess } from '../../tools/harness/processes.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';
import { storedCounts } from '../../tools/harness/session-keys.js';

const COMMAND_TIMEOUT_MS = 1000;
/** Also the plain endpoint's liveness period: a peer silent for two of them is dropped. */
const HEARTBEAT_INTERVAL_MS = 1000;
const PLAIN_CLIENTS = 160;
const SOCKETIO_CLIENTS = 40;
/** ~6 messages/s per client: ~1,300/s through Nginx, leaving room on a shared 2-core box. */
const THINK_MS = 150;
/** DESIGN.md: unready within 1.5 × REDIS_COMMAND_TIMEOUT_MS of the cut; plus room for a busy machine. */
const UNREADY_BOUND_MS = 1.5 * COMMAND_TIMEOUT_MS + 1500;
/** A connect into the partition gives up after REDIS_COMMAND_TIMEOUT_MS, then at most 1 s of back-off; plus room. */
const READY_AGAIN_BOUND_MS = COMMAND_TIMEOUT_MS + 1000 + 3000;
/** How long a fault is held once it is in effect, so that clients move and new sessions are tried meanwhile. */
const HOLD_MS = 3000;
/** Every client counting again after a fault (the plain clients' back-off is at most 500 ms). */
const COUNTING_AGAIN_BOUND_MS = 15_000;
/** A new session through Nginx must get its count within this, fault or not (a connect to a dead upstream included). */
const NEW_SESSION_TIMEOUT_MS = 5000;
/** Each replica's own loopback address for Redis. */
const redisAddressOf = (index: number): string => `127.0.77.${index}`;

interface FaultFigures {
  fault: string;
  clients: number;
  /** Clients that lost a connection (a close they did not ask for) from the fault on: they moved. */
  clients_moved: number;
  /** From the fault to the last moved client's first close. */
  clients_closed_ms: number | null;
  /** What detection means for this fault, and how long it took from the fault. */
  detected: { what: string; ms: number } | null;
  /** What recovery means for this fault, and how long it took from the heal (or the fault, for a kill). */
  recovered: { what: string; ms: number }[];
  messages: number;
  skipped: number;
  repeated: number;
  new_sessions: { tried: number; failed_during_fault: number; slowest_ms: number };
  /** From the replicas' resume log lines since the fault: counts answered from the store (replies lost), counts raised back to `last` (writes the store lost). */
  resumes: { replayed: number; raised: number };
}

const figures: FaultFigures[] = [];

function writeReport(): void {
  mkdirSync('reports', { recursive: true });
  const report = {
    command: 'npm run build && npx mocha dist/tests/faults/network-faults.test.js',
    measured_at: new Date().toISOString(),
    settings: {
      replicas: 2,
      plain_clients: PLAIN_CLIENTS,
      socketio_clients: SOCKETIO_CLIENTS,
      think_ms: THINK_MS,
      redis_command_timeout_ms: COMMAND_TIMEOUT_MS,
      heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
      hold_ms: HOLD_MS,
    },
    faults: figures,
  };
  writeFileSync('reports/network-faults.json', `${JSON.stringify(report, null, 2)}\n`);
}

/** One fault's traffic: the clients, a prober opening new sessions through Nginx, and the counts at chosen moments. */
class Traffic {
  readonly clients: LoopClient[];
  readonly prober: ConnectProber;

  private constructor(endpoint: { wsUrl: string; httpUrl: string }) {
    this.clients = loopClientsOf(endpoint, PLAIN_CLIENTS, SOCKETIO_CLIENTS, { thinkMs: THINK_MS });
    for (const client of this.clients) client.start();
    this.prober = new ConnectProber(endpoint.wsUrl, 100, NEW_SESSION_TIMEOUT_MS);
  }

  static async start(endpoint: { wsUrl: string; httpUrl: string }): Promise<Traffic> {
    const traffic = new Traffic(endpoint);
    await eventually(() => traffic.clients.every((client) => client.counts.length >= 3), 'every client counting before the fault', 30_000);
    return traffic;
  }

  snapshot(): number[] {
    return this.clients.map((client) => client.counts.length);
  }

  /** Waits until every client has a count beyond `since` (a snapshot); returns when that was. */
  async everyClientCountsSince(since: number[], what: string, timeoutMs = COUNTING_AGAIN_BOUND_MS): Promise<number> {
    const waiting = (): LoopClient[] => this.clients.filter((client, index) => client.counts.length <= since[index]!);
    try {
      await eventually(() => waiting().length === 0, what, timeoutMs);
    } catch (error) {
      const stuck = waiting();
      const first = stuck[0]!;
      throw new Error(
        `${(error as Error).message}: ${stuck.length} of ${this.clients.length} clients did not count; ` +
          `${loopClientLabel(first, this.clients.indexOf(first))} (${first.handshakeFailures} failed handshakes, ${first.closes.length} closes: ` +
          `${first.closes.slice(-5).join(',')}), its last events:\n  ${first.trace.slice(-12).join('\n  ')}`,
        { cause: error },
      );
    }
    return Date.now();
  }

  async stop(): Promise<void> {
    await this.prober.stop();
    await Promise.all(this.clients.map((client) => client.stop(3000).catch(() => undefined)));
  }

  /** Clients that lost a connection at or after `from`, and when the last of them first did. */
  moved(from: number): { count: number; lastFirstCloseMs: number | null } {
    const firsts = this.clients.map((client) => client.closeTimes.find((at) => at >= from)).filter((at): at is number => at !== undefined);
    return { count: firsts.length, lastFirstCloseMs: firsts.length === 0 ? null : Math.max(...firsts) - from };
  }
}

interface Tally {
  messages: number;
  skipped: number;
  repeated: number;
  /** Each session that is not exactly 1..N with N stored, described with its last events. */
  broken: string[];
}

/** Every session's counts against 1..N and against what Redis stored: skips, repeats, and which sessions are not exact. */
function tally(clients: LoopClient[], stored: Array<number | undefined>): Tally {
  let messages = 0;
  let skipped = 0;
  let repeated = 0;
  const broken: string[] = [];
  for (const [index, client] of clients.entries()) {
    const counts = client.counts;
    const distinct = new Set(counts);
    const highest = Math.max(counts.at(-1) ?? 0, stored[index] ?? 0, ...counts);
    const sessionRepeats = counts.length - distinct.size;
    const sessionSkips = highest - distinct.size;
    messages += counts.length;
    repeated += sessionRepeats;
    skipped += sessionSkips;
    const exact = counts.every((count, at) => count === at + 1) && stored[index] === counts.length && client.answered === counts.length;
    if (!exact) {
      broken.push(
        `${loopClientLabel(client, index)}: ${counts.length} counts for ${client.answered} messages, Redis holds ${stored[index]}, ` +
          `${sessionSkips} skipped, ${sessionRepeats} repeated; last counts ${counts.slice(-8).join(',')}; its last events:\n  ${client.trace.join('\n  ')}`,
      );
    }
  }
  return { messages, skipped, repeated, broken };
}

/** New sessions opened through Nginx from `from` to `to` all got their count; the slowest of them. */
function assertNewSessionsServed(
  prober: ConnectProber,
  from: number,
  to: number,
  what: string,
  atLeast = 3,
): { tried: number; failed: number; slowestMs: number } {
  const during = prober.attempts.filter((attempt) => attempt.started >= from && attempt.started <= to);
  const failed = during.filter((attempt) => attempt.error !== undefined);
  assert.deepEqual(
    failed.map((attempt) => `${attempt.started - from} ms in: ${attempt.error}`),
    [],
    `new sessions through Nginx ${what} must reach a working replica and be counted`,
  );
  assert.ok(during.length >= atLeast, `only ${during.length} new session(s) tried ${what}`);
  return { tried: during.length, failed: failed.length, slowestMs: Math.max(...during.map((attempt) => attempt.ended - attempt.started)) };
}

/** What the replicas' resumes since `from` did: counts replayed to clients (replies lost) and counts raised back to `last` (writes lost). */
function resumesSince(replicas: readonly ReplicaProcess[], from: number): { replayed: number; raised: number } {
  const lines = replicas.flatMap((replica) => replica.events('resume')).filter((line) => Date.parse(String(line.timestamp)) >= from);
  const sum = (field: string): number => lines.reduce((total, line) => total + Number(line[field] ?? 0), 0);
  return { replayed: sum('replays'), raised: sum('raised') };
}

async function clientsOn(replica: ReplicaProcess): Promise<number> {
  return metricSum(`${replica.httpUrl}/metrics`, 'wschat_connections_active');
}

describe('exactly once under network faults (200 clients through Nginx, 2 replicas)', function () {
  this.timeout(90_000);
  let faults: LoopbackFaults;
  let traffic: Traffic | undefined;

  before(() => {
    faults = LoopbackFaults.create();
  });

  afterEach(async () => {
    faults.heal();
    await stopLoops();
    await traffic?.stop();
    traffic = undefined;
  });

  after(() => {
    faults?.heal();
    writeReport();
  });

  /** Stops the traffic, reads what Redis stored, asserts exactly once for every session and records the figures. */
  async function finish(
    redis: Redis,
    replicas: readonly ReplicaProcess[],
    faultAt: number,
    entry: Omit<FaultFigures, 'clients' | 'clients_moved' | 'clients_closed_ms' | 'messages' | 'skipped' | 'repeated' | 'resumes'>,
  ): Promise<FaultFigures> {
    const current = traffic!;
    await current.stop();
    const moved = current.moved(faultAt);
    const stored = await storedCounts(redis, current.clients.map((client) => client.session));
    const { broken, ...totals } = tally(current.clients, stored);
    const result: FaultFigures = {
      fault: entry.fault,
      clients: current.clients.length,
      clients_moved: moved.count,
      clients_closed_ms: moved.lastFirstCloseMs,
      detected: entry.detected,
      recovered: entry.recovered,
      ...totals,
      new_sessions: entry.new_sessions,
      resumes: resumesSince(replicas, faultAt),
    };
    // Recorded before the verdict, so that a failed run's report shows what it measured.
    figures.push(result);
    process.stdout.write(
      `      ${result.fault}: ${result.messages} messages, ${result.skipped} skipped, ${result.repeated} repeated; ${result.clients_moved} clients moved; ` +
        `${result.detected === null ? '' : `${result.detected.what} ${result.detected.ms} ms; `}` +
        `${result.recovered.map((step) => `${step.what} ${step.ms} ms`).join('; ')}; new sessions: ${result.new_sessions.tried} tried, slowest ${result.new_sessions.slowest_ms} ms; ` +
        `resumes replayed ${result.resumes.replayed} count(s), raised ${result.resumes.raised}\n`,
    );
    assert.ok(
      broken.length === 0,
      `${broken.length} of ${current.clients.length} sessions are not exactly 1..N equal to Redis ` +
        `(${totals.skipped} skipped, ${totals.repeated} repeated in all); the first of them:\n${broken.slice(0, 3).join('\n')}`,
    );
    return result;
  }

  describe('one Redis (AOF appendfsync always)', () => {
    let redis: RedisServer;
    let inspect: Redis;
    let fleet: ReplicaFleet;

    before(async () => {
      redis = await RedisServer.start({ extraAddresses: [redisAddressOf(1), redisAddressOf(2)] });
      inspect = redis.client();
      // Redis is killed in e): its reconnect errors are expected, not unhandled.
      inspect.on('error', () => undefined);
      fleet = await ReplicaFleet.start({
        replicas: 2,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        replicaEnv: (index) => ({
          REDIS_URL: `redis://${redisAddressOf(index)}:${redis.port}`,
          REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        }),
      });
    });

    after(async () => {
      faults?.heal();
      await fleet?.destroy();
      inspect?.disconnect();
      await redis?.destroy();
    });

    /** a) and b): replica 1's links to Redis cut in `direction`, held, healed. */
    async function redisPartition(fault: string, direction: Direction): Promise<void> {
      traffic = await Traffic.start(fleet);
      const victim = fleet.replica(1);
      const onVictim = await clientsOn(victim);
      assert.ok(onVictim >= 20, `only ${onVictim} clients on replica 1 before the cut`);

      const cutAt = Date.now();
      faults.blackhole({ address: redisAddressOf(1), port: redis.port }, direction);
      await eventually(async () => (await victim.probe('/readyz')) === 503, 'replica 1 unready after the cut', UNREADY_BOUND_MS);
      const unreadyAt = Date.now();
      // Its clients were told bye + 1013 and resume on replica 2 while the cut lasts.
      const atDetection = traffic.snapshot();
      const movedAt = await traffic.everyClientCountsSince(atDetection, 'every client counting during the cut (replica 1’s clients moved)', HOLD_MS * 3);
      await sleep(Math.max(0, unreadyAt + HOLD_MS - Date.now()));
      assert.equal(await victim.probe('/readyz'), 503, 'replica 1 unready for the whole cut');
      assert.ok(victim.events('redis_stalled').some((line) => line.role === 'commands'), 'replica 1 logs the stall');

      const healAt = Date.now();
      faults.heal();
      await eventually(async () => (await victim.probe('/readyz')) === 200, 'replica 1 ready again by itself after the heal', READY_AGAIN_BOUND_MS);
      const readyAt = Date.now();
      const countingAt = await traffic.everyClientCountsSince(traffic.snapshot(), 'every client counting after the heal');
      await sleep(500);
      const served = assertNewSessionsServed(traffic.prober, unreadyAt, healAt, 'while replica 1 was cut from Redis');
      await finish(inspect, fleet.replicas, cutAt, {
        fault,
        detected: { what: 'replica 1 /readyz 503', ms: unreadyAt - cutAt },
        recovered: [
          { what: 'every client counting again, cut still on (from /readyz 503)', ms: movedAt - unreadyAt },
          { what: 'replica 1 /readyz 200 (from the heal)', ms: readyAt - healAt },
          { what: 'every client counting after the heal', ms: countingAt - healAt },
        ],
        new_sessions: { tried: served.tried, failed_during_fault: served.failed, slowest_ms: served.slowestMs },
      });
    }

    it('a) replica 1 cut from Redis both ways (DROP, no reset), then healed: exactly once, unready within its bound, ready again by itself', async () => {
      await redisPartition('a) replica 1 <-> Redis dropped both ways', 'both');
    });

    it('b) Redis -> replica 1 dropped, replica 1 -> Redis flowing (its commands applied, replies lost), then healed: the same', async () => {
      await redisPartition('b) Redis -> replica 1 dropped (one direction)', 'from-server');
    });

    it('c) Nginx <-> replica 1 dropped (handshakes and proxied traffic), then healed: exactly once; new sessions go to replica 2', async () => {
      traffic = await Traffic.start(fleet);
      const onVictim = await clientsOn(fleet.replica(1));
      assert.ok(onVictim >= 20, `only ${onVictim} clients on replica 1 before the cut`);
      const cutAt = Date.now();
      faults.blackhole({ port: fleet.replicaPort(1) }, 'both');
      // Long enough for replica 1's liveness sweep to drop its silent plain peers (two heartbeat intervals).
      await sleep(HOLD_MS + 2 * HEARTBEAT_INTERVAL_MS);
      const healAt = Date.now();
      faults.heal();
      const countingAt = await traffic.everyClientCountsSince(traffic.snapshot(), 'every client counting after the heal');
      await sleep(500);
      // One prober, one session at a time: those Nginx tried on replica 1 first take proxy_connect_timeout (2 s) each.
      const served = assertNewSessionsServed(traffic.prober, cutAt, healAt, 'while Nginx could not reach replica 1', 2);
      await finish(inspect, fleet.replicas, cutAt, {
        fault: 'c) Nginx <-> replica 1 dropped',
        detected: { what: 'slowest new session during the cut (Nginx giving up on replica 1)', ms: served.slowestMs },
        recovered: [{ what: 'every client counting after the heal', ms: countingAt - healAt }],
        new_sessions: { tried: served.tried, failed_during_fault: served.failed, slowest_ms: served.slowestMs },
      });
    });

    it('d) replica 1 SIGKILLed: exactly once, its clients resume on replica 2 through Nginx', async () => {
      traffic = await Traffic.start(fleet);
      const onVictim = await clientsOn(fleet.replica(1));
      assert.ok(onVictim >= 20, `only ${onVictim} clients on replica 1 before the kill`);
      const before = traffic.snapshot();
      const killAt = Date.now();
      await fleet.killReplica(1);
      const countingAt = await traffic.everyClientCountsSince(before, 'every client counting after the kill');
      await sleep(HOLD_MS);
      const served = assertNewSessionsServed(traffic.prober, killAt, Date.now(), 'after replica 1 was killed');
      // The metric may have counted one prober socket besides the clients.
      const moved = traffic.moved(killAt).count;
      assert.ok(moved <= onVictim && moved >= onVictim - 1, `${moved} clients moved, ${onVictim} sockets were on replica 1: only its clients move`);
      await finish(inspect, fleet.replicas, killAt, {
        fault: 'd) replica 1 SIGKILLed',
        detected: null,
        recovered: [{ what: 'every client counting again (from the kill)', ms: countingAt - killAt }],
        new_sessions: { tried: served.tried, failed_during_fault: served.failed, slowest_ms: served.slowestMs },
      });
      await fleet.restartReplica(1);
    });

    it('e) Redis SIGKILLed and restarted: exactly once, every count the clients saw survives (AOF)', async () => {
      traffic = await Traffic.start(fleet);
      const killAt = Date.now();
      await redis.kill();
      await eventually(
        async () => (await Promise.all(fleet.replicas.map((replica) => replica.probe('/readyz')))).every((status) => status === 503),
        'both replicas unready once Redis is gone',
        2000,
      );
      const unreadyAt = Date.now();
      await sleep(HOLD_MS);
      const restartAt = Date.now();
      await redis.resume();
      await eventually(
        async () => (await Promise.all(fleet.replicas.map((replica) => replica.probe('/readyz')))).every((status) => status === 200),
        'both replicas ready again once Redis is back',
        READY_AGAIN_BOUND_MS,
      );
      const readyAt = Date.now();
      const countingAt = await traffic.everyClientCountsSince(traffic.snapshot(), 'every client counting after the restart');
      await sleep(HOLD_MS);
      // No replica can count while Redis is down: new sessions are owed a count only once both are ready again.
      const served = assertNewSessionsServed(traffic.prober, readyAt, Date.now(), 'once Redis was back');
      const outage = traffic.prober.attempts.filter((attempt) => attempt.started >= killAt && attempt.started < restartAt);
      await finish(inspect, fleet.replicas, killAt, {
        fault: 'e) Redis SIGKILLed, restarted after 3 s',
        detected: { what: 'both replicas /readyz 503', ms: unreadyAt - killAt },
        recovered: [
          { what: 'both replicas /readyz 200 (from the restart)', ms: readyAt - restartAt },
          { what: 'every client counting again (from the restart)', ms: countingAt - restartAt },
        ],
        new_sessions: {
          tried: served.tried + outage.length,
          failed_during_fault: outage.filter((attempt) => attempt.error !== undefined).length,
          slowest_ms: served.slowestMs,
        },
      });
    });
  });

  describe('a Sentinel set (primary, replica, sentinel)', () => {
    let sentinel: RedisSentinelSet;
    let fleet: ReplicaFleet;

    before(async function () {
      this.timeout(60_000);
      sentinel = await RedisSentinelSet.start();
      fleet = await ReplicaFleet.start({
        replicas: 2,
        heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS,
        replicaEnv: () => ({
          REDIS_MODE: 'sentinel',
          REDIS_SENTINELS: sentinel.sentinelList,
          REDIS_SENTINEL_MASTER: RedisSentinelSet.MASTER_NAME,
          REDIS_COMMAND_TIMEOUT_MS: String(COMMAND_TIMEOUT_MS),
        }),
      });
    });

    after(async () => {
      await fleet?.destroy();
      await sentinel?.destroy();
    });

    it('f) a failover under the traffic (the newest writes may be lost with the old primary): exactly once', async () => {
      traffic = await Traffic.start(fleet);
      const oldPrimary = await sentinel.currentPrimaryPort();
      const failoverAt = Date.now();
      await sentinel.failover({ waitForSync: false });
      await eventually(async () => (await sentinel.currentPrimaryPort()) !== oldPrimary, 'the sentinel to name the new primary', 10_000, 50);
      const switchedAt = Date.now();
      const countingAt = await traffic.everyClientCountsSince(traffic.snapshot(), 'every client counting once the sentinel named the new primary');
      await sleep(HOLD_MS);
      const served = assertNewSessionsServed(traffic.prober, countingAt, Date.now(), 'once every client counted on the new primary');
      const primary = new Redis(await sentinel.currentPrimaryPort(), '127.0.0.1', { maxRetriesPerRequest: 1 });
      try {
        await finish(primary, fleet.replicas, failoverAt, {
          fault: 'f) Sentinel failover (SENTINEL FAILOVER, replica not waited for)',
          detected: { what: 'the sentinel names the new primary', ms: switchedAt - failoverAt },
          recovered: [{ what: 'every client counting again (from the failover command)', ms: countingAt - failoverAt }],
          new_sessions: { tried: served.tried, failed_during_fault: served.failed, slowest_ms: served.slowestMs },
        });
      } finally {
        primary.disconnect();
      }
    });
  });
});
