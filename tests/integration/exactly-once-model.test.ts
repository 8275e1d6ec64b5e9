/**
 * The exactly-once mechanism on a model (fast-check), against the real Lua scripts
 * in a real Redis: one client resuming with the last count it saw, over connections
 * whose commands and replies the network delays, duplicates and loses, and a store
 * that loses recent writes (a failover to a replica that lagged).
 *
 * What the model controls, one step at a time:
 * - `send`: the client sends its next message on the live connection, which gives
 *   it the next expected count (or discards it: a re-send the resume replayed);
 * - `flush` / `flushResent`: the live connection's oldest command reaches Redis and
 *   its answer the client (`flushResent`: applied, answer lost, resent by the Redis
 *   client and applied again, as ioredis does after a reconnect);
 * - `cut`: the client gives up on the live connection (a partition): its commands
 *   not yet applied are held in the network and answers are lost from now on;
 * - `reconnect`: a new connection opens with the client's last count and its number
 *   of unanswered messages, replays what the store counted beyond it (planResume),
 *   and the client re-sends every unanswered message;
 * - `stale`: a held command of a dead connection reaches Redis (any one, any time);
 * - `duplicate`: a command that reached Redis already reaches it again, whoever sent
 *   it (its answer goes nowhere);
 * - `failover`: the session key goes back to what it was 1 to MAX_WRITES_LOST writes ago.
 * At the end every held command arrives, the client resumes once more and the new
 * connection answers everything, and:
 * the client got exactly one count per message, 1..N in the order it sent them, and
 * Redis holds N. fast-check prints the seed and the shrunk steps of a failure.
 */
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { planResume } from '../../services/gateway/resume-plan.js';
import { NEW_SESSION_TTL_MS, RedisSessionStore, STALE_LEASE, type LeasedSession } from '../../services/gateway/store/session-store.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { RedisServer } from '../../tools/harness/processes.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

const NUM_RUNS = Number(process.env.EXACTLY_ONCE_RUNS ?? 300);
const KEY_PREFIX = 'model:';
const TTL_SECONDS = 600;
const MAX_RESUME_AHEAD = 1000;

/** A leased open the model expects to succeed (its `last` is never far ahead). */
async function leasedOpen(store: RedisSessionStore, session: string, last: number): Promise<LeasedSession> {
  const opened = await store.openLeased(session, last);
  if ('refused' in opened) throw new Error(`open refused: last ${last}, stored ${opened.count}`);
  return opened;
}
const MAX_STEPS = Number(process.env.EXACTLY_ONCE_STEPS ?? 80);
/** How many of its latest writes a failover can lose. */
const MAX_WRITES_LOST = 4;

type Step =
  | { kind: 'send' | 'flush' | 'flushResent' | 'cut' | 'reconnect' }
  | { kind: 'stale' | 'duplicate'; pick: number }
  | { kind: 'failover'; back: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'send' } as const), weight: 6 },
  { arbitrary: fc.constant({ kind: 'flush' } as const), weight: 6 },
  { arbitrary: fc.constant({ kind: 'flushResent' } as const), weight: 1 },
  { arbitrary: fc.constant({ kind: 'cut' } as const), weight: 2 },
  { arbitrary: fc.constant({ kind: 'reconnect' } as const), weight: 2 },
  { arbitrary: fc.nat().map((pick) => ({ kind: 'stale', pick }) as const), weight: 2 },
  { arbitrary: fc.nat().map((pick) => ({ kind: 'duplicate', pick }) as const), weight: 1 },
  { arbitrary: fc.integer({ min: 1, max: MAX_WRITES_LOST }).map((back) => ({ kind: 'failover', back }) as const), weight: 1 },
);

/** A command a connection sent to Redis: count one message, expecting `expected` before it. */
interface Command {
  readonly lease: number;
  readonly expected: number;
}

/** The server side of one connection. */
interface Connection {
  readonly lease: number;
  /** The count its next counted message expects before it. */
  next: number;
  /** Re-sends still to come that the resume answered already. */
  discard: number;
  /** Commands sent, not yet applied. */
  readonly outbox: Command[];
}

/** One run: a client, its connections, the network between them and Redis. */
class World {
  readonly session = randomSessionId();
  private readonly key = sessionKey(this.session, KEY_PREFIX);
  /** Messages the client sent, numbered 1..sent. */
  private sent = 0;
  /** The client's messages without a count, oldest first. */
  private readonly unanswered: number[] = [];
  /** The count each message got, by message number. */
  readonly counts = new Map<number, number>();
  private last = 0;
  private live: Connection | undefined;
  /** Commands of given-up connections, still in the network. */
  private readonly held: Command[] = [];
  /** Every command that reached Redis. */
  private readonly applied: Command[] = [];
  /** The session key after every write, oldest first (null: no key). */
  private readonly snapshots: Array<Buffer | null> = [null];

  constructor(
    private readonly store: RedisSessionStore,
    private readonly redis: Redis,
  ) {}

  async start(): Promise<void> {
    await this.reconnect();
  }

  async run(step: Step): Promise<void> {
    switch (step.kind) {
      case 'send':
        return this.send();
      case 'flush':
        return this.flush(false);
      case 'flushResent':
        return this.flush(true);
      case 'cut':
        return this.cut();
      case 'reconnect':
        return this.live === undefined ? this.reconnect() : undefined;
      case 'stale':
        return this.stale(step.pick);
      case 'duplicate':
        return this.duplicate(step.pick);
      case 'failover':
        return this.failover(step.back);
    }
  }

  /**
   * Every held command arrives, then the client resumes on a new connection (the open
   * gives the store back counts a failover lost) and it answers everything sent.
   */
  async heal(): Promise<void> {
    while (this.held.length > 0) await this.stale(0);
    this.cut();
    await this.reconnect();
    while (this.live!.outbox.length > 0) await this.flush(false);
  }

  stored(): Promise<string | null> {
    return this.redis.hget(this.key, 'c');
  }

  get messages(): number {
    return this.sent;
  }

  private send(): void {
    if (this.live === undefined) return;
    this.sent += 1;
    this.unanswered.push(this.sent);
    this.receive(this.live);
  }

  /** The server reads one message: a re-send the resume answered, or a command to Redis. */
  private receive(connection: Connection): void {
    if (connection.discard > 0) {
      connection.discard -= 1;
      return;
    }
    connection.outbox.push({ lease: connection.lease, expected: connection.next });
    connection.next += 1;
  }

  private async flush(resent: boolean): Promise<void> {
    const connection = this.live;
    const command = connection?.outbox.shift();
    if (command === undefined) return;
    const first = await this.apply(command);
    if (resent) assert.equal(await this.apply(command), first, 'a resent command answers what it answered the first time');
    assert.notEqual(first, STALE_LEASE, 'the live connection holds the newest lease');
    this.answer(first);
  }

  private cut(): void {
    if (this.live === undefined) return;
    this.held.push(...this.live.outbox);
    this.live = undefined;
  }

  private async reconnect(): Promise<void> {
    const opened = await leasedOpen(this.store, this.session, this.last);
    await this.snapshot();
    const plan = planResume(opened.count, this.last, this.unanswered.length);
    const connection: Connection = { lease: opened.lease, next: opened.count, discard: plan.discard, outbox: [] };
    this.live = connection;
    for (let i = 0; i < this.unanswered.length; i += 1) this.receive(connection);
    for (let count = plan.firstReplay; count <= plan.lastReplay; count += 1) this.answer(count);
  }

  private async stale(pick: number): Promise<void> {
    if (this.held.length === 0) return;
    const [command] = this.held.splice(pick % this.held.length, 1);
    await this.apply(command!);
  }

  private async duplicate(pick: number): Promise<void> {
    if (this.applied.length > 0) await this.apply(this.applied[pick % this.applied.length]!);
  }

  private async failover(back: number): Promise<void> {
    const index = Math.max(0, this.snapshots.length - 1 - back);
    const dump = this.snapshots[index]!;
    this.snapshots.length = index + 1;
    if (dump === null) await this.redis.del(this.key);
    else await this.redis.restore(this.key, 0, dump, 'REPLACE');
  }

  /** The client reads a count: the answer to its oldest unanswered message. */
  private answer(count: number): void {
    const message = this.unanswered.shift();
    assert.ok(message !== undefined, `count ${count} with no message waiting for one`);
    assert.ok(!this.counts.has(message), `message ${message} counted twice`);
    this.counts.set(message, count);
    this.last = count;
  }

  private async apply(command: Command): Promise<number> {
    const count = await this.store.incrementLeased(this.session, command.lease, command.expected);
    this.applied.push(command);
    await this.snapshot();
    return count;
  }

  private async snapshot(): Promise<void> {
    this.snapshots.push(await this.redis.dumpBuffer(this.key));
  }
}

describe('exactly once, on a model with delayed, resent and lost commands and replies and lost writes', function () {
  this.timeout(120_000);
  let server: RedisServer;
  let redis: Redis;
  let store: RedisSessionStore;

  before(async () => {
    server = await RedisServer.start();
    redis = server.client();
    store = new RedisSessionStore(redis, { keyPrefix: KEY_PREFIX, keySecret: '', adoptLegacyKeys: true, ttlSeconds: TTL_SECONDS, maxResumeAhead: MAX_RESUME_AHEAD });
  });

  after(async () => {
    redis?.disconnect();
    await server?.destroy();
  });

  describe('the lease, with two connections on one session', () => {
    const key = (session: string): string => sessionKey(session, KEY_PREFIX);

    it("makes an older connection's command a no-op once a newer one opened, whether its slot is free or filled", async () => {
      const session = randomSessionId();
      const older = await leasedOpen(store, session, 0);
      assert.equal(await store.incrementLeased(session, older.lease, 0), 1);
      const newer = await leasedOpen(store, session, 1);
      assert.ok(newer.lease > older.lease);
      assert.equal(await store.incrementLeased(session, older.lease, 1), STALE_LEASE, 'free slot');
      assert.equal(await store.incrementLeased(session, older.lease, 0), STALE_LEASE, 'filled slot');
      assert.equal(await redis.hget(key(session), 'c'), '1');
      assert.equal(await store.incrementLeased(session, newer.lease, 1), 2);
    });

    it('takes back a lease a failover lost, so the older connection stays fenced', async () => {
      const session = randomSessionId();
      const older = await leasedOpen(store, session, 0);
      const beforeNewer = await redis.dumpBuffer(key(session));
      const newer = await leasedOpen(store, session, 0);
      await redis.restore(key(session), 0, beforeNewer, 'REPLACE');
      assert.equal(await store.incrementLeased(session, newer.lease, 0), 1, "the newer connection's lease is back");
      assert.equal(await store.incrementLeased(session, older.lease, 1), STALE_LEASE);
      assert.equal(await redis.hget(key(session), 'l'), String(newer.lease));
    });

    it('shares the count with unleased connections, each reading and counting either form of the key; an unleased count fences the leased connection', async () => {
      const session = randomSessionId();
      assert.equal(await store.increment(session), 1, 'an unleased client starts the session (a string key)');
      const leased = await leasedOpen(store, session, 0);
      assert.deepEqual([leased.count, leased.resumed, leased.raisedBy], [1, true, 0], 'a leased open keeps the string count');
      assert.equal(await redis.type(key(session)), 'hash');
      assert.equal(await store.incrementLeased(session, leased.lease, 1), 2);
      assert.deepEqual(await store.open(session), { count: 2, resumed: true }, 'an unleased open reads the hash');
      assert.equal(await store.increment(session), 3, 'an unleased increment counts in the hash');
      assert.equal(await store.incrementLeased(session, leased.lease, 2), STALE_LEASE, 'its slots no longer line up: stale, not a count another client got');
      assert.equal(await redis.hget(key(session), 'c'), '3');
      const resumed = await leasedOpen(store, session, 2);
      assert.equal(await store.incrementLeased(session, resumed.lease, resumed.count), 4, 'resuming takes the lease back');
    });

    it("adopts a session's id-named key from the release before, keeping its count, form and TTL", async () => {
      const legacy = (session: string): string => `${KEY_PREFIX}session:${session}`;
      const plain = randomSessionId();
      await redis.set(legacy(plain), '5', 'EX', 300);
      assert.deepEqual(await store.open(plain), { count: 5, resumed: true });
      assert.equal(await redis.exists(legacy(plain)), 0, 'moved, not copied');
      assert.equal(await store.increment(plain), 6);
      assert.ok((await redis.ttl(sessionKey(plain, KEY_PREFIX))) > 0);
      const leased = randomSessionId();
      await redis.hset(legacy(leased), 'c', '7', 'l', '2', 'r', '7');
      const opened = await leasedOpen(store, leased, 7);
      assert.deepEqual([opened.count, opened.resumed, opened.lease], [7, true, 3], 'the lease goes on from the adopted one');
      assert.equal(await redis.exists(legacy(leased)), 0);
    });

    it('adopts nothing where the two names may be on different nodes (Cluster)', async () => {
      const clustered = new RedisSessionStore(redis, { keyPrefix: KEY_PREFIX, keySecret: '', adoptLegacyKeys: false, ttlSeconds: TTL_SECONDS, maxResumeAhead: MAX_RESUME_AHEAD });
      const session = randomSessionId();
      await redis.set(`${KEY_PREFIX}session:${session}`, '5');
      assert.deepEqual(await clustered.open(session), { count: 0, resumed: false });
      assert.equal(await redis.get(`${KEY_PREFIX}session:${session}`), '5');
    });

    it('never names a key after the id, and a secret changes every name', async () => {
      const session = randomSessionId();
      await store.increment(session);
      const keys = await redis.keys(`${KEY_PREFIX}*`);
      assert.ok(keys.includes(sessionKey(session, KEY_PREFIX)));
      assert.ok(keys.every((key) => !key.includes(session)));
      const keyed = new RedisSessionStore(redis, { keyPrefix: KEY_PREFIX, keySecret: 'x'.repeat(32), adoptLegacyKeys: true, ttlSeconds: TTL_SECONDS, maxResumeAhead: MAX_RESUME_AHEAD });
      assert.deepEqual(await keyed.open(session), { count: 0, resumed: false }, 'another secret, another key');
    });

    it('refuses a last further ahead of the stored count than MAX_RESUME_AHEAD, changing nothing', async () => {
      const session = randomSessionId();
      assert.deepEqual(await store.openLeased(session, MAX_RESUME_AHEAD + 1), { refused: 'too_far_ahead', count: 0 });
      assert.equal(await redis.exists(sessionKey(session, KEY_PREFIX)), 0, 'an unknown session stays unknown');
      const opened = await leasedOpen(store, session, MAX_RESUME_AHEAD);
      assert.equal(opened.count, MAX_RESUME_AHEAD, 'at the bound: raised');
      assert.deepEqual(await store.openLeased(session, 2 * MAX_RESUME_AHEAD + 1), { refused: 'too_far_ahead', count: MAX_RESUME_AHEAD });
      assert.equal(await redis.hget(sessionKey(session, KEY_PREFIX), 'l'), String(opened.lease), 'no lease taken');
    });

    it('keeps a session that has not counted yet for NEW_SESSION_TTL_MS only, and the full TTL from its first count', async () => {
      const session = randomSessionId();
      const opened = await leasedOpen(store, session, 0);
      const key = sessionKey(session, KEY_PREFIX);
      const fresh = await redis.pttl(key);
      assert.ok(fresh > 0 && fresh <= NEW_SESSION_TTL_MS, `${fresh} ms`);
      assert.equal(await store.incrementLeased(session, opened.lease, 0), 1);
      assert.ok((await redis.pttl(key)) > TTL_SECONDS * 1000 - 5000, 'the full TTL once it counted');
      await redis.del(key);
      assert.equal(await store.incrementLeased(session, opened.lease, 1), 2, 'a key that expired before a count: the connection goes on');
    });

    it("starts a new key's lease above any lease the key had before it expired", async () => {
      const session = randomSessionId();
      const older = await leasedOpen(store, session, 0);
      await redis.del(sessionKey(session, KEY_PREFIX));
      const newer = await leasedOpen(store, session, 0);
      assert.ok(newer.lease > older.lease, `${newer.lease} > ${older.lease}`);
      assert.equal(await store.incrementLeased(session, older.lease, 0), STALE_LEASE);
    });

    it("raises a count the store lost to the client's last, and says by how much", async () => {
      const session = randomSessionId();
      const opened = await leasedOpen(store, session, 7);
      assert.deepEqual([opened.count, opened.resumed, opened.raisedBy], [7, false, 7]);
      assert.equal(await store.incrementLeased(session, opened.lease, 7), 8);
    });
  });

  it('gives every message exactly one count, 1..N in order, and Redis holds N', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: MAX_STEPS }), async (steps) => {
        const world = new World(store, redis);
        await world.start();
        for (const next of steps) await world.run(next);
        await world.heal();
        const expected = Array.from({ length: world.messages }, (_, index) => index + 1);
        assert.deepEqual(
          expected.map((message) => world.counts.get(message)),
          expected,
          'the count of each message, in the order they were sent',
        );
        assert.equal(Number((await world.stored()) ?? 0), world.messages, 'Redis holds one count per message');
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
