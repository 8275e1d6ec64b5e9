/**
 * What Redis holds for sessions, as the tests and tools read it: a session key is a
 * string counter, or a hash {c, l, r} once a connection resumed it with `last`
 * (services/gateway/store/session-store.ts). One script reads either form, so a
 * check never depends on which clients used the session.
 */
import type { Redis } from 'ioredis';
import { sessionKey as hashedKey } from '../../services/gateway/store/session-key.js';

/** Each KEYS[i]'s count, nil when the key does not exist. Standalone Redis only (the keys may span slots). */
export const STORED_COUNTS_LUA = `
local counts = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  if kind == 'hash' then counts[i] = redis.call('HGET', key, 'c')
  elseif kind == 'string' then counts[i] = redis.call('GET', key)
  else counts[i] = false end
end
return counts`;

/** The session's Redis key as replicas with `secret` as SESSION_KEY_SECRET name it; the empty one is what replicas without it use (the native stacks the tests start). */
export function sessionKey(sessionId: string, prefix = 'wschat:', secret = ''): string {
  return hashedKey(prefix, secret, sessionId);
}

/** The counts Redis holds for `sessionIds`, in order; undefined for a session it does not know. */
export async function storedCounts(redis: Redis, sessionIds: readonly string[], prefix = 'wschat:'): Promise<Array<number | undefined>> {
  if (sessionIds.length === 0) return [];
  const keys = sessionIds.map((id) => sessionKey(id, prefix));
  const counts = (await redis.eval(STORED_COUNTS_LUA, keys.length, ...keys)) as Array<string | null>;
  return counts.map((count) => (count === null ? undefined : Number(count)));
}

/** The count Redis holds for one session; undefined when it does not know it. */
export async function storedCount(redis: Redis, sessionId: string, prefix = 'wschat:'): Promise<number | undefined> {
  const [count] = await storedCounts(redis, [sessionId], prefix);
  return count;
}
