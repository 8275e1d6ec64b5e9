/**
 * Session counters in Redis.
 *
 * Key layout (prefix = REDIS_KEY_PREFIX, default "wschat:"):
 *   <prefix>s:<hmac of the id>  the session's message count (session-key.ts). A string while only
 *                            unleased connections used it; a hash {c: count, l: lease,
 *                            r: last count given under lease l} once a leased connection
 *                            did (the leased scripts below). One key per session either way,
 *                            so Redis Cluster needs no hash tag.
 *
 * Lifetime: at least SESSION_TTL_SECONDS after the session's last open or message, and
 * at most one refresh period more (TtlRefreshes). Every refresh sets the key's TTL to
 * SESSION_TTL_SECONDS plus that period, so a message that skips the refresh, later in
 * the same period, still leaves the key at least SESSION_TTL_SECONDS to live.
 *
 * An unleased message is one plain INCR (the common case: no Lua, the same command a
 * bare counter would send), with a PEXPIRE beside it when the session's refresh is
 * due; the key's hash form answers WRONGTYPE, and only then does the increment script
 * run. Opens and leased messages are one Lua script each, so the read, the fencing and
 * the refresh are atomic. With auto-pipelining, concurrent messages share writes.
 */
import type { Result } from 'ioredis';
import type { RedisClient } from './redis-client.js';
import { legacySessionKey, sessionKey } from './session-key.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    wschatSessionOpen(key: string, legacy: string, ttlMs: number): Result<number, Context>;
    wschatSessionIncrement(key: string, ttlMs: number): Result<number, Context>;
    wschatSessionOpenLeased(
      key: string,
      legacy: string,
      ttlMs: number,
      last: number,
      maxAhead: number,
      newTtlMs: number,
    ): Result<[number, number, number, number], Context>;
    wschatSessionIncrementLeased(key: string, ttlMs: number, lease: number, expected: number): Result<number, Context>;
  }
}

/**
 * Both unleased scripts read either form of the key (string or hash), so a session a
 * leased connection used stays countable by unleased ones; they never convert it.
 * An unleased increment of a hash also takes the lease: the leased connection's
 * expected counts no longer line up with the store, so its next command is stale
 * (the session is in use elsewhere) rather than answered with a count it did not get.
 */

/**
 * Both opens first adopt the session's key from the id-named format (KEYS[2]) when
 * only that one exists: RENAME keeps its count, its form and its TTL. Where the two
 * names may live on different nodes (Cluster), KEYS[2] is KEYS[1] and nothing moves.
 */
const ADOPT_LEGACY = `
if KEYS[2] ~= KEYS[1] and redis.call('EXISTS', KEYS[1]) == 0 and redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('RENAME', KEYS[2], KEYS[1])
end`;

/** Returns the stored count and refreshes the TTL, or -1 when the session is unknown. */
const OPEN_SCRIPT = `${ADOPT_LEGACY}
local kind = redis.call('TYPE', KEYS[1]).ok
local count
if kind == 'hash' then count = redis.call('HGET', KEYS[1], 'c') else count = redis.call('GET', KEYS[1]) end
if not count then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return tonumber(count)`;

/**
 * An unleased increment that met the hash form (the plain INCR answered WRONGTYPE).
 * INCR first all the same: the key may have expired and come back as a string since.
 */
const INCREMENT_SCRIPT = `
local count = redis.pcall('INCR', KEYS[1])
if type(count) == 'table' and count.err then
  count = redis.call('HINCRBY', KEYS[1], 'c', 1)
  redis.call('HINCRBY', KEYS[1], 'l', 1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return count`;

/**
 * The hash form's lease, last count given and count, in one read; a string key (only
 * unleased connections used it) is turned into the hash form first, keeping its count.
 */
const LEASE_FIELDS = `
local function lease_fields(key)
  local got = redis.pcall('HMGET', key, 'l', 'r', 'c')
  if got.err then
    local count = redis.call('GET', key)
    redis.call('DEL', key)
    redis.call('HSET', key, 'c', count)
    got = {false, false, count}
  end
  return tonumber(got[1] or '0'), tonumber(got[2] or '0'), tonumber(got[3] or '0')
end`;

/**
 * Opens a session for a connection that said which count its client saw last: takes
 * the next lease (every command of an older connection becomes a no-op), raises the
 * count to `last` when the store lost counts the client saw (a failover, a restore:
 * none is handed out again), marks every count so far as given (`r`), and answers
 * {count, lease, known (0/1), raisedBy}. An unknown session is created.
 *
 * A `last` more than `maxAhead` (ARGV[3], MAX_RESUME_AHEAD) above the stored count
 * (0 for an unknown session) is no loss the store could have had: it changes nothing
 * and answers lease 0 (refused). So a client moves its count by at most that much a
 * handshake, and counts stay far below 2^53, where Lua's doubles stop being exact.
 *
 * A new key's lease starts from the server's clock in microseconds, not 1: a
 * connection that still holds a lease on the session's expired or lost key must not
 * find its lease handed out again. That is also what lets a new key live only
 * NEW_SESSION_TTL_MS (ARGV[4]) until its first count, which sets the full TTL: a
 * handshake that never counts costs Redis a key for a minute, not a day, and its
 * connection still counts correctly if the key expired meanwhile (the leased
 * increment takes the lease again and goes on from the count it expects).
 */
const OPEN_LEASED_SCRIPT = `${LEASE_FIELDS}${ADOPT_LEGACY}
local key = KEYS[1]
local known = redis.call('EXISTS', key)
local _, _, count = lease_fields(key)
local last = tonumber(ARGV[2])
if last - count > tonumber(ARGV[3]) then return {count, 0, known, 0} end
local raised = 0
if count < last then raised = last - count; count = last end
local lease
if known == 1 then
  lease = redis.call('HINCRBY', key, 'l', 1)
else
  local now = redis.call('TIME')
  lease = tonumber(now[1]) * 1000000 + tonumber(now[2])
  redis.call('HSET', key, 'l', lease)
end
redis.call('HSET', key, 'c', count, 'r', count)
if known == 1 then redis.call('PEXPIRE', key, ARGV[1]) else redis.call('PEXPIRE', key, ARGV[4]) end
return {count, lease, known, raised}`;

/**
 * Counts one message of the connection holding `lease`. `expected` is the count the
 * connection expects before it (its open's count plus the messages it counted
 * since), so the command fills one slot, count `expected + 1`, and only once:
 * - a newer lease exists: the connection was given up and its client resumed on
 *   another one; the command is stale, changes nothing and answers -1;
 * - the slot is filled already (`r`, the highest count given to a leased command,
 *   is past `expected`): the same command resent by the Redis client after a
 *   reconnect, or overtaken by the store's recovery below; it changes nothing and
 *   answers the slot's count again;
 * - the store lost writes (a failover to a replica that lagged): a lease older than
 *   this one is taken back, and a count below `expected` is raised to it, so no
 *   count is handed out twice.
 * An unleased increment (a client that does not send `last`) takes the lease too.
 */
const INCREMENT_LEASED_SCRIPT = `${LEASE_FIELDS}
local key = KEYS[1]
local lease = tonumber(ARGV[2])
local expected = tonumber(ARGV[3])
local held, given, count = lease_fields(key)
if held > lease then return -1 end
if held < lease then redis.call('HSET', key, 'l', lease) end
if given > expected then return expected + 1 end
if count < expected then count = expected end
count = count + 1
redis.call('HSET', key, 'c', count, 'r', count)
redis.call('PEXPIRE', key, ARGV[1])
return count`;

export interface OpenedSession {
  /** Messages counted so far (0 for a new session). */
  count: number;
  /** True when Redis already knew the session. */
  resumed: boolean;
}

/** What a leased open found: the count to continue from, and the lease its connection now holds. */
export interface LeasedSession extends OpenedSession {
  lease: number;
  /** How far the count was raised to the client's `last` (the store had lost that many). */
  raisedBy: number;
}

/** How long a session key a leased open created lives until its first count (OPEN_LEASED_SCRIPT). */
export const NEW_SESSION_TTL_MS = 60_000;

/** The answer of a leased increment whose lease a newer connection took. */
export const STALE_LEASE = -1;

/**
 * A leased open's answer when the client's `last` is further ahead of the stored count
 * than MAX_RESUME_AHEAD: nothing was changed and no lease taken.
 */
export interface ResumeTooFar {
  readonly refused: 'too_far_ahead';
  /** The stored count (0 for an unknown session). */
  readonly count: number;
}

/**
 * The session counters. Unleased calls serve clients that do not say which count they
 * saw last (at least once); leased ones serve those that do, exactly once across lost
 * replies, delayed and resent commands and lost writes (DESIGN.md, "Exactly once").
 */
export interface SessionStore {
  open(sessionId: string): Promise<OpenedSession>;
  /** Counts one message; resolves with the new count once Redis has stored it. */
  increment(sessionId: string): Promise<number>;
  openLeased(sessionId: string, last: number): Promise<LeasedSession | ResumeTooFar>;
  /** The new count, or STALE_LEASE when a newer connection holds the session. */
  incrementLeased(sessionId: string, lease: number, expected: number): Promise<number>;
  /** A connection on the session closed: the store may drop what it keeps in memory for it. */
  released?(sessionId: string): void;
}

/**
 * A session's TTL is refreshed once per period per replica, not on every message:
 * refreshing it with each INCR needed a script (INCR and EXPIRE) or a second command
 * per message, for a deadline a day away, where a plain INCR now does. The longest
 * period is a minute; a short SESSION_TTL_SECONDS gets a tenth of it.
 */
const MAX_REFRESH_PERIOD_MS = 60_000;
const REFRESH_PERIODS_PER_TTL = 10;

/**
 * Which sessions had their TTL refreshed in the current period. It holds the ids of
 * the open sessions that sent a message in the current period (their strings are the
 * connections' own): a closing connection's id leaves it, or a replica taking a
 * thousand connects a second would keep a minute of closed sessions' ids
 * (tests/integration/memory-cycles.test.ts). Forgetting one costs at most an extra refresh.
 */
export class TtlRefreshes {
  private readonly refreshed = new Set<string>();
  private periodEnds = 0;

  constructor(readonly periodMs: number) {}

  /** True, once per period, for each session: its refresh is due now. */
  due(sessionId: string, now = performance.now()): boolean {
    if (now >= this.periodEnds) {
      this.refreshed.clear();
      this.periodEnds = now + this.periodMs;
    }
    if (this.refreshed.has(sessionId)) return false;
    this.refreshed.add(sessionId);
    return true;
  }

  forget(sessionId: string): void {
    this.refreshed.delete(sessionId);
  }
}

/** What Redis answers a command on a key of the wrong type: here, INCR on the hash form. */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}

export interface SessionStoreOptions {
  /** REDIS_KEY_PREFIX */
  readonly keyPrefix: string;
  /** SESSION_KEY_SECRET: the key of the hash that names a session's key (session-key.ts). */
  readonly keySecret: string;
  /** False where a session's two key names may live on different nodes (Cluster): no adoption. */
  readonly adoptLegacyKeys: boolean;
  /** SESSION_TTL_SECONDS */
  readonly ttlSeconds: number;
  /** MAX_RESUME_AHEAD: how far a resuming client's `last` may be above the stored count. */
  readonly maxResumeAhead: number;
}

export class RedisSessionStore implements SessionStore {
  /** The TTL every refresh sets: SESSION_TTL_SECONDS plus one refresh period (TtlRefreshes). */
  private readonly ttlMs: number;
  private readonly refreshes: TtlRefreshes;
  private readonly maxResumeAhead: number;
  /**
   * The key of each session with an open connection here: hashed once per connection,
   * not once per message. A session two connections share is hashed again when the
   * first one closes: forgetting it costs one hash.
   */
  private readonly keys = new Map<string, string>();

  constructor(
    private readonly redis: RedisClient,
    private readonly options: SessionStoreOptions,
  ) {
    const { ttlSeconds, maxResumeAhead } = options;
    this.maxResumeAhead = maxResumeAhead;
    const periodMs = Math.min(MAX_REFRESH_PERIOD_MS, (ttlSeconds * 1000) / REFRESH_PERIODS_PER_TTL);
    this.refreshes = new TtlRefreshes(periodMs);
    this.ttlMs = ttlSeconds * 1000 + periodMs;
    redis.defineCommand('wschatSessionOpen', { numberOfKeys: 2, lua: OPEN_SCRIPT });
    redis.defineCommand('wschatSessionIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    redis.defineCommand('wschatSessionOpenLeased', { numberOfKeys: 2, lua: OPEN_LEASED_SCRIPT });
    redis.defineCommand('wschatSessionIncrementLeased', { numberOfKeys: 1, lua: INCREMENT_LEASED_SCRIPT });
  }

  async open(sessionId: string): Promise<OpenedSession> {
    const count = await this.redis.wschatSessionOpen(this.key(sessionId), this.legacyKey(sessionId), this.ttlMs);
    return count < 0 ? { count: 0, resumed: false } : { count, resumed: true };
  }

  /**
   * INCR, and PEXPIRE after it in the same pipeline when the session's refresh is due.
   * A count of 1 that came without a refresh is a key INCR just created (Redis lost
   * it: a failover, a restore, a FLUSHALL): it gets its TTL at once, or it would never
   * expire. WRONGTYPE is the hash form: the increment script counts it (and takes the
   * lease from the leased connection that made it). Commands of one connection run in
   * order, so a later message's INCR fails the same way, and the scripts run in order;
   * only a key deleted between the two answers could reorder them, and that resets
   * the count anyway.
   */
  increment(sessionId: string): Promise<number> {
    const key = this.key(sessionId);
    const refresh = this.refreshes.due(sessionId);
    const counted = this.redis.incr(key).then(
      (count) => {
        if (count === 1 && !refresh) this.restoreTtl(key);
        return count;
      },
      (error: unknown) => {
        if (isWrongType(error)) return this.redis.wschatSessionIncrement(key, this.ttlMs);
        throw error;
      },
    );
    if (!refresh) return counted;
    return Promise.all([counted, this.redis.pexpire(key, this.ttlMs)]).then(([count]) => count);
  }

  async openLeased(sessionId: string, last: number): Promise<LeasedSession | ResumeTooFar> {
    const [count, lease, known, raisedBy] = await this.redis.wschatSessionOpenLeased(
      this.key(sessionId),
      this.legacyKey(sessionId),
      this.ttlMs,
      last,
      this.maxResumeAhead,
      Math.min(this.ttlMs, NEW_SESSION_TTL_MS),
    );
    if (lease === 0) return { refused: 'too_far_ahead', count };
    return { count, lease, resumed: known === 1, raisedBy };
  }

  incrementLeased(sessionId: string, lease: number, expected: number): Promise<number> {
    return this.redis.wschatSessionIncrementLeased(this.key(sessionId), this.ttlMs, lease, expected);
  }

  released(sessionId: string): void {
    this.refreshes.forget(sessionId);
    this.keys.delete(sessionId);
  }

  /** The count is confirmed already: a PEXPIRE that fails (Redis failing) leaves the key without a TTL until its next refresh. */
  private restoreTtl(key: string): void {
    this.redis.pexpire(key, this.ttlMs).catch(() => undefined);
  }

  private key(sessionId: string): string {
    let key = this.keys.get(sessionId);
    if (key === undefined) {
      key = sessionKey(this.options.keyPrefix, this.options.keySecret, sessionId);
      this.keys.set(sessionId, key);
    }
    return key;
  }

  /** The session's id-named key to adopt, or its own key where none may be adopted. */
  private legacyKey(sessionId: string): string {
    return this.options.adoptLegacyKeys ? legacySessionKey(this.options.keyPrefix, sessionId) : this.key(sessionId);
  }
}
