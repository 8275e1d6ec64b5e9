/**
 * The session a connection asks for, one rule for both endpoints: asking for none
 * gets a fresh id, a canonical id is served as it is, anything else is refused.
 * Where the request carries it differs (the plain endpoint's ?session=, socket.io's
 * auth.session or ?session=), and so does how the refusal reaches the client (a
 * close frame after the 101, a connect_error); what is counted and logged does not.
 */
import type { Logger } from './logger.js';
import type { Metrics, Transport } from './metrics.js';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';

/** The id to serve: a fresh one when `requested` is undefined, `requested` when valid, else undefined (refuse). */
export function resolveSessionId(requested: unknown): string | undefined {
  if (requested === undefined) return randomSessionId();
  return isValidSessionId(requested) ? requested : undefined;
}

/** What ?session= asks for: undefined when absent, its value, or every value when repeated (never an id). */
export function sessionInQuery(url: string | undefined): unknown {
  const values = new URL(url ?? '/', 'http://localhost').searchParams.getAll('session');
  if (values.length === 0) return undefined;
  return values.length === 1 ? values[0] : values;
}

/** What a socket.io handshake asks for: auth.session, preferred, else ?session= (as socket.io parsed it). */
export function sessionInHandshake(auth: unknown, querySession: unknown): unknown {
  const fromAuth = typeof auth === 'object' && auth !== null ? (auth as Record<string, unknown>).session : undefined;
  return fromAuth ?? querySession;
}

export interface RefusalDeps {
  metrics: Metrics;
  logger: Logger;
}

/** Counts and logs a refused session id; the endpoint then tells the client the way its transport can. */
export function recordInvalidSession({ metrics, logger }: RefusalDeps, requestId: string, transport: Transport): void {
  metrics.error(CLOSE.invalidSession.kind);
  logger.info('invalid session id refused', {
    event: 'refused',
    code: CLOSE.invalidSession.code,
    request_id: requestId,
    transport,
  });
}
