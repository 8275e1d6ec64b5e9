/**
 * Session counters in Redis.
 *
 * Key layout (prefix = REDIS_KEY_PREFIX, default "wschat:"):
 *   <prefix>session:<uuid>   string, the session's message count; TTL SESSION_TTL_SECONDS,
 *                            refreshed on open and on every message.
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
  }
}

/** Returns the stored count and refreshes the TTL, or -1 when the session is unknown. */
const OPEN_SCRIPT = `
local count = redis.call('GET', KEYS[1])
if not count then return -1 end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return tonumber(count)`;

const INCREMENT_SCRIPT = `
local count = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return count`;

export interface OpenedSession {
  /** Messages counted so far (0 for a new session). */
  count: number;
  /** True when Redis already knew the session. */
  resumed: boolean;
}

export interface SessionStore {
  open(sessionId: string): Promise<OpenedSession>;
  /** Counts one message; resolves with the new count once Redis has stored it. */
  increment(sessionId: string): Promise<number>;
}

export class RedisSessionStore implements SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: string,
    private readonly ttlSeconds: number,
  ) {
    redis.defineCommand('wschatSessionOpen', { numberOfKeys: 1, lua: OPEN_SCRIPT });
    redis.defineCommand('wschatSessionIncrement', { numberOfKeys: 1, lua: INCREMENT_SCRIPT });
  }

  async open(sessionId: string): Promise<OpenedSession> {
    const count = await this.redis.wschatSessionOpen(this.key(sessionId), this.ttlSeconds);
    return count < 0 ? { count: 0, resumed: false } : { count, resumed: true };
  }

  increment(sessionId: string): Promise<number> {
    return this.redis.wschatSessionIncrement(this.key(sessionId), this.ttlSeconds);
  }

  private key(sessionId: string): string {
    return `${this.keyPrefix}session:${sessionId}`;
  }
}
