/**
 * Session counters in Redis.
 *
 * Key layout (prefix = REDIS_KEY_PREFIX, default "wschat:"):
 *   <prefix>session:<uuid>   the session's message count; TTL SESSION_TTL_SECONDS,
 *                            refreshed on open and on every message. A string while only
 *                            unleased connections used it; a hash {c: count, l: lease,
 *                            r: last count given under lease l} once a leased connection
 *                            did (the leased scripts below). One key per session either way,
 *                            so Redis Cluster needs no hash tag.
 *
 * Each operation is one Lua script, so one round trip does the read-or-increment
 * and the TTL refresh atomically; with auto-pipelining, concurrent messages share
 * writes to the socket.
 */
import type { Result } from 'ioredis';
import type { RedisClient } from './redis-client.js';

declare module 'ioredis' {
  interface RedisCommander<Context> {
    wschatSessionOpen(key: string, ttlSeconds: number): Result<number, Context>;
    wschatSessionIncrement(key: string, ttlSeconds: number): Result<number, Context>;
    wschatSessionOpenLeased(key: string, ttlSeconds: number, last: number): Result<[number, number, number, number], Context>;
    wschatSessionIncrementLeased(key: string, ttlSeconds: number, lease: number, expected: number): Result<number, Context>;
  }
}

/**
 * Both unleased scripts read either form of the key (string or hash), so a session a
 * leased connection used stays countable by unleased ones; they never convert it.
 * An unleased increment of a hash also takes the lease: the leased connection's
 * expected counts no longer line up with the store, so its next command is stale
 * (the session is in use elsewhere) rather than answered with a count it did not get.
 */

/** Returns the stored count and refreshes the TTL, or -1 when the session is unknown. */
const OPEN_SCRIPT = `
local kind = redis.call('TYPE', KEYS[1]).ok
local count
if kind == 'hash' then count = redis.call('HGET', KEYS[1], 'c') else count = redis.call('GET', KEYS[1]) end
if not count then return -1 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return tonumber(count)`;

/** INCR first: a string key (the usual case) costs no TYPE call; WRONGTYPE means the hash form. */
const INCREMENT_SCRIPT = `
local count = redis.pcall('INCR', KEYS[1])
if type(count) == 'table' and count.err then
  count = redis.call('HINCRBY', KEYS[1], 'c', 1)
  redis.call('HINCRBY', KEYS[1], 'l', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
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
 */
const OPEN_LEASED_SCRIPT = `${LEASE_FIELDS}
local key = KEYS[1]
local known = redis.call('EXISTS', key)
local _, _, count = lease_fields(key)
local last = tonumber(ARGV[2])
local raised = 0
if count < last then raised = last - count; count = last end
local lease = redis.call('HINCRBY', key, 'l', 1)
redis.call('HSET', key, 'c', count, 'r', count)
redis.call('EXPIRE', key, ARGV[1])
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
redis.call('EXPIRE', key, ARGV[1])
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

/** The answer of a leased increment whose lease a newer connection took. */
export const STALE_LEASE = -1;

/**
 * The session counters. Unleased calls serve clients that do not say which count they
 * saw last (at least once); leased ones serve those that do, exactly once across lost
 * replies, delayed and resent commands and lost writes (DESIGN.md, "Exactly once").
 */
export interface SessionStore {
  open(sessionId: string): Promise<OpenedSession>;
  /** Counts one message; resolves with the new count once Redis has stored it. */
  increment(sessionId: string): Promise<number>;
  openLeased(sessionId: string, last: number): Promise<LeasedSession>;
  /** The new count, or STALE_LEASE when a newer connection holds the session. */
  incrementLeased(sessionId: string, lease: number, expected: number): Promise<number>;
}

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('wschatSessionOpen', { numberOfKeys: 1, lua: OPEN_SCRIPT });
    redis.defineCommand('wschatSessionIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
    redis.defineCommand('wschatSessionOpenLeased', { numberOfKeys: 1, lua: OPEN_LEASED_SCRIPT });
    redis.defineCommand('wschatSessionIncrementLeased', { numberOfKeys: 1, lua: INCREMENT_LEASED_SCRIPT });
  }

  async open(sessionId: string): Promise<OpenedSession> {
    const count = await this.redis.wschatSessionOpen(this.key(sessionId), this.ttlSeconds);
    return count < 0 ? { count: 0, resumed: false } : { count, resumed: true };
  }

  increment(sessionId: string): Promise<number> {
    return this.redis.wschatSessionIncrement(this.key(sessionId), this.ttlSeconds);
  }

  async openLeased(sessionId: string, last: number): Promise<LeasedSession> {
    const [count, lease, known, raisedBy] = await this.redis.wschatSessionOpenLeased(this.key(sessionId), this.ttlSeconds, last);
    return { count, lease, resumed: known === 1, raisedBy };
  }

  incrementLeased(sessionId: string, lease: number, expected: number): Promise<number> {
    return this.redis.wschatSessionIncrementLeased(this.key(sessionId), this.ttlSeconds, lease, expected);
  }

  private key(sessionId: string): string {
    return `${this.keyPrefix}session:${sessionId}`;
  }
}
