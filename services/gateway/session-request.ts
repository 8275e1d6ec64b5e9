/**
 * The session a connection asks for, one rule for both endpoints: asking for none
 * gets a fresh id, a canonical id is served as it is, anything else is refused. A
 * client may also say where it resumes (`last`, `pending`: DESIGN.md, "Exactly
 * once"). Where the request carries them differs (the plain endpoint's query,
 * socket.io's auth or query), and so does how a refusal reaches the client (a close
 * frame after the 101, a connect_error); what is counted and logged does not.
 */
import type { Logger } from './logger.js';
import type { Metrics, Transport } from './metrics.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';
import type { Resume } from './resume-plan.js';
import { flattened } from './flat-string.js';

export type { Resume };


/** What a request carries, as found: each field undefined, a value, or every value when repeated. */
export interface SessionAsk {
  readonly session: unknown;
  readonly last: unknown;
  readonly pending: unknown;
}

/** A close that refuses a request before any session is opened. */
export type Refusal = typeof CLOSE.invalidSession | typeof CLOSE.invalidResume | typeof CLOSE.sessionPerConnection;

/** The session to serve (and where to resume it), or the close that refuses the request. */
export type SessionRequest =
  | { readonly sessionId: string; readonly resume: Resume | undefined }
  | { readonly refused: Refusal };

const FIELDS = ['session', 'last', 'pending'] as const;

/** The id to serve: a fresh one when `requested` is undefined, `requested` when valid, else undefined (refuse). */
export function resolveSessionId(requested: unknown): string | undefined {
  // Flattened: the connection keeps it for its life (flat-string.ts).
  if (requested === undefined) return flattened(randomSessionId());
  return isValidSessionId(requested) ? requested : undefined;
}

/**
 * The one rule: a valid or absent session, and a resume position only with a session
 * the client names (a fresh one has nothing to resume). `pending` defaults to 0 and is
 * at most `maxPending` (MAX_INFLIGHT_PER_CONNECTION): a client cannot have more
 * unanswered messages than the replica lets one connection have in flight, and the
 * resume's cost grows with it. How far `last` may be ahead of the store is the
 * store's call (session-store.ts, MAX_RESUME_AHEAD).
 */
export function resolveRequest(ask: SessionAsk, maxPending: number): SessionRequest {
  const sessionId = resolveSessionId(ask.session);
  if (sessionId === undefined) return { refused: CLOSE.invalidSession };
  if (ask.last === undefined && ask.pending === undefined) return { sessionId, resume: undefined };
  const last = position(ask.last);
  const pending = ask.pending === undefined ? 0 : position(ask.pending);
  if (ask.session === undefined || last === undefined || pending === undefined || pending > maxPending) {
    return { refused: CLOSE.invalidResume };
  }
  return { sessionId, resume: { last, pending } };
}

/** A count or a number of messages: a whole number from 0 to 2^53 - 1, given as a number or in decimal digits. */
function position(value: unknown): number | undefined {
  const number = typeof value === 'string' && /^(0|[1-9][0-9]{0,15})$/.test(value) ? Number(value) : value;
  // Stryker disable next-line ConditionalExpression: equivalent, Number.isSafeInteger is false for every non-number.
  return typeof number === 'number' && Number.isSafeInteger(number) && number >= 0 ? number : undefined;
}

/** What the plain endpoint's query asks: ?session=, ?last=, ?pending=. */
export function askInQuery(url: string | undefined): SessionAsk {
  // Stryker disable next-line StringLiteral: equivalent, an empty URL resolves to the base, which has no query either.
  const params = new URL(url ?? '/', 'http://localhost').searchParams;
  const field = (name: string): unknown => {
    const values = params.getAll(name);
    if (values.length === 0) return undefined;
    return values.length === 1 ? values[0] : values;
  };
  return { session: field('session'), last: field('last'), pending: field('pending') };
}

/** What a socket.io handshake asks: each field from auth, preferred, else from the query (as socket.io parsed it). */
export function askInHandshake(auth: unknown, query: Readonly<Record<string, unknown>>): SessionAsk {
  const fromAuth = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>) : {};
  const [session, last, pending] = FIELDS.map((name) => fromAuth[name] ?? query[name]);
  return { session, last, pending };
}

export interface RefusalDeps {
  metrics: Metrics;
  logger: Logger;
}

/** Counts and logs a refused request; the endpoint then tells the client the way its transport can. */
export function recordRefusal({ metrics, logger }: RefusalDeps, refused: Refusal, requestId: string, transport: Transport): void {
  metrics.error(refused.kind);
  logger.info(`${refused.reason} refused`, { event: 'refused', code: refused.code, request_id: requestId, transport });
}
