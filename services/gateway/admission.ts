/**
 * Whether the replica takes a new connection at all, asked before any session: one
 * rule for the upgrade router (both endpoints' WebSocket handshakes) and for
 * engine.io's own handshakes (socket.io's allowRequest). A refusal is 503 with a JSON
 * body, so Nginx's proxy_next_upstream hands the handshake to a sibling replica.
 */
import type { ErrorKind } from './metrics.js';

export interface AdmissionRefusal {
  readonly status: 503;
  /** The JSON body's `error`. */
  readonly error: string;
  /** The errors metric's kind. */
  readonly kind: ErrorKind;
  /** Retry-After, for a refusal that passes on its own. */
  readonly retryAfterSeconds?: number;
}

/** Every refusal of a new connection, by cause. */
export const REFUSE = Object.freeze({
  draining: { status: 503, error: 'shutting_down', kind: 'upgrade_while_draining' },
  /** No count could be confirmed: the handshake belongs on a replica whose store answers. */
  storeUnavailable: { status: 503, error: 'store_unavailable', kind: 'upgrade_store_unavailable', retryAfterSeconds: 1 },
  /** MAX_CONNECTIONS sockets are open: what one replica holds is its own limit, not the clients'. */
  full: { status: 503, error: 'replica_full', kind: 'replica_full', retryAfterSeconds: 1 },
} satisfies Record<string, AdmissionRefusal>);

export interface AdmissionState {
  isDraining: () => boolean;
  /** False while the session store's connection is down or stalled. */
  storeReady: () => boolean;
  /** Upgraded sockets open now, the one asking included. */
  openSockets: () => number;
  /** MAX_CONNECTIONS */
  maxConnections: number;
}

/** The refusal for a new connection now, or undefined to take it. A drain is answered first. */
export function refusalNow(state: AdmissionState): AdmissionRefusal | undefined {
  if (state.isDraining()) return REFUSE.draining;
  if (!state.storeReady()) return REFUSE.storeUnavailable;
  if (state.openSockets() > state.maxConnections) return REFUSE.full;
  return undefined;
}
