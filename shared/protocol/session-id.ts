/**
 * Session ids, for the server and every client alike: the one rule for what the
 * server accepts, and how a client (Node or browser) picks a fresh id.
 */

/**
 * Canonical, lowercase, RFC 9562 uuid of version 4 with the standard variant.
 * Session ids are bearer secrets: only version 4 is 122 random bits (the others
 * carry clocks, node ids or names, and can be guessed), and accepting only one
 * spelling of each id keeps a single Redis key per session and rules out
 * case-folding tricks.
 */
const SESSION_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function isValidSessionId(value: unknown): value is string {
  // Stryker disable next-line ConditionalExpression: equivalent, the anchored pattern matches 36 characters only; the length check is a fast refusal.
  return typeof value === 'string' && value.length === 36 && SESSION_ID.test(value);
}

/**
 * A fresh uuid4 from the platform's CSPRNG. Browsers offer crypto.randomUUID only
 * in secure contexts (https, or http://127.0.0.1 and localhost); on a plain-http
 * host the same uuid4 is built from crypto.getRandomValues, which they always offer.
 */
export function randomSessionId(): string {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
