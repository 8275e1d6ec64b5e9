/**
 * Where a session lives in Redis. The key is a keyed hash of the id (HMAC-SHA256
 * with SESSION_KEY_SECRET), never the id: the id is a bearer secret, and whoever
 * can read key names (SCAN, MONITOR, a backup, a slow log) must not be able to
 * resume the sessions they see. An id is 122 random bits, so even without a secret
 * the hash cannot be turned back into it; with one, a copy of the data cannot even
 * be checked against an id that leaked elsewhere.
 *
 * The key names the replicas used before were the id itself (`legacySessionKey`):
 * a session's first open on a replica that hashes moves that key to its hashed name
 * (session-store.ts), so a release to this format loses no live session.
 */
import { createHmac } from 'node:crypto';

export function sessionKey(prefix: string, secret: string, sessionId: string): string {
  return `${prefix}s:${createHmac('sha256', secret).update(sessionId).digest('base64url')}`;
}

export function legacySessionKey(prefix: string, sessionId: string): string {
  return `${prefix}session:${sessionId}`;
}
