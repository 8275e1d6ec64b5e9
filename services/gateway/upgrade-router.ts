/**
 * The one owner of HTTP upgrades on the replica's port: every refusal and every route
 * decided in one place, before either library sees the socket. Refusals for a full or
 * draining replica are 503, so that Nginx's proxy_next_upstream http_503 hands the
 * handshake to another replica; each refused socket is destroyed once its answer is
 * flushed, so a client that keeps its half open cannot hold a drain. Every upgraded
 * socket goes to the registry first: what a drain waits for.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionRegistry } from './connection-registry.js';
import type { Metrics } from './metrics.js';
import { PLAIN_PATH, SOCKETIO_PATH } from '../../shared/protocol/messages.js';
import type { AdmissionRefusal } from './admission.js';
import { answerAndClose } from './raw-http-answer.js';
import { requestIdFrom } from './request-id.js';

export interface UpgradeRoutes {
  /** Whether the replica takes a new connection now (admission.ts). */
  refusalNow: () => AdmissionRefusal | undefined;
  /** False for a browser page whose Origin ALLOWED_ORIGINS does not allow. */
  originAllowed: (request: IncomingMessage) => boolean;
  plain: (request: IncomingMessage, socket: Duplex, head: Buffer, requestId: string) => void;
  socketIo: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  metrics: Metrics;
  /** Keeps every upgraded socket until it closes. */
  registry: ConnectionRegistry;
}

/**
 * The upgraded socket's 'error' listener until an endpoint's library listens itself
 * (the plain endpoint removes it once ws does). One function shared by every socket,
 * so a socket carries no closure of its own; Node calls it with the socket as `this`.
 */
export function destroyOnError(this: Duplex): void {
  this.destroy();
}

export class UpgradeRouter {
  constructor(private readonly routes: UpgradeRoutes) {}

  /** The http.Server 'upgrade' listener. */
  readonly handle = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.routes.registry.trackUpgraded(socket);
    // A client that resets mid-handshake must not become an uncaught 'error'.
    socket.on('error', destroyOnError);
    const { routes } = this;
    const requestId = requestIdFrom(request.headers);
    const refused = routes.refusalNow();
    if (refused !== undefined) {
      routes.metrics.error(refused.kind);
      const headers: Record<string, string> = { 'X-Request-Id': requestId };
      if (refused.retryAfterSeconds !== undefined) headers['Retry-After'] = String(refused.retryAfterSeconds);
      return answerAndClose(socket, refused.status, { error: refused.error }, headers);
    }
    if (request.httpVersionMajor === 1 && request.httpVersionMinor === 0) {
      routes.metrics.error('upgrade_http_version');
      return answerAndClose(socket, 400, { error: 'http_1_1_required' }, { 'X-Request-Id': requestId });
    }
    if (!routes.originAllowed(request)) {
      routes.metrics.error('origin_refused');
      return answerAndClose(socket, 403, { error: 'origin_not_allowed' }, { 'X-Request-Id': requestId });
    }
    const path = (request.url ?? '/').split('?', 1)[0];
    if (path === PLAIN_PATH || path === PLAIN_PATH.slice(0, -1)) return routes.plain(request, socket, head, requestId);
    // Stryker disable next-line OptionalChaining: equivalent, split() always returns a first element.
    if (path?.startsWith(SOCKETIO_PATH)) return routes.socketIo(request, socket, head);
    routes.metrics.error('upgrade_not_found');
    answerAndClose(socket, 404, { error: 'not_found' }, { 'X-Request-Id': requestId });
  };
}
