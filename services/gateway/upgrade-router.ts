/**
 * The one owner of HTTP upgrades on the replica's port: refuses every upgrade
 * while draining (503), over HTTP/1.0 (400: RFC 6455 §4.1 needs HTTP/1.1 or later)
 * and from browser pages ALLOWED_ORIGINS does not allow (403), sends /ws/chat/ to
 * the plain endpoint and /socket.io/ to engine.io, and answers anything else with
 * 404. Refusals are plain HTTP responses with a JSON body (raw-http-answer.ts), the
 * socket destroyed once flushed, so a client that keeps its half open cannot hold
 * a drain.
 *
 * It also keeps every upgraded socket until it closes. An upgraded socket leaves
 * the HTTP server's bookkeeping, yet server.close() waits for it; whatever is
 * still open at the end of a drain (a peer that never answers its close frame,
 * on either endpoint, tracked as a session or not) is destroyed from here.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Metrics } from './metrics.js';
import { PLAIN_PATH, SOCKETIO_PATH } from '../../shared/protocol/messages.js';
import { answerAndClose } from './raw-http-answer.js';
import { requestIdFrom } from './request-id.js';

export interface UpgradeRoutes {
  isDraining: () => boolean;
  /** False for a browser page whose Origin ALLOWED_ORIGINS does not allow. */
  originAllowed: (request: IncomingMessage) => boolean;
  plain: (request: IncomingMessage, socket: Duplex, head: Buffer, requestId: string) => void;
  socketIo: (request: IncomingMessage, socket: Duplex, head: Buffer) => void;
  metrics: Metrics;
}

export class UpgradeRouter {
  private readonly sockets = new Set<Duplex>();
  private emptyWaiters: Array<() => void> = [];

  constructor(private readonly routes: UpgradeRoutes) {}

  /** The http.Server 'upgrade' listener. */
  readonly handle = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    this.track(socket);
    // A client that resets mid-handshake must not become an uncaught 'error'.
    socket.on('error', () => socket.destroy());
    const { routes } = this;
    const requestId = requestIdFrom(request.headers);
    if (routes.isDraining()) {
      routes.metrics.error('upgrade_while_draining');
      return answerAndClose(socket, 503, { error: 'shutting_down' }, { 'X-Request-Id': requestId });
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
    if (path?.startsWith(SOCKETIO_PATH)) return routes.socketIo(request, socket, head);
    routes.metrics.error('upgrade_not_found');
    answerAndClose(socket, 404, { error: 'not_found' }, { 'X-Request-Id': requestId });
  };

  /** Resolves true once every upgraded socket has closed, or false when `timeoutMs` passes first. */
  whenAllClosed(timeoutMs: number): Promise<boolean> {
    if (this.sockets.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.emptyWaiters = this.emptyWaiters.filter((waiter) => waiter !== wake);
        resolve(false);
      }, Math.max(0, timeoutMs));
      const wake = (): void => {
        clearTimeout(timer);
        resolve(true);
      };
      this.emptyWaiters.push(wake);
    });
  }

  /** Destroys every upgraded socket still open; returns how many there were. */
  destroyAll(): number {
    const count = this.sockets.size;
    for (const socket of this.sockets) socket.destroy();
    return count;
  }

  private track(socket: Duplex): void {
    this.sockets.add(socket);
    socket.once('close', () => {
      if (this.sockets.delete(socket) && this.sockets.size === 0) {
        const waiters = this.emptyWaiters;
        this.emptyWaiters = [];
        for (const wake of waiters) wake();
      }
    });
  }
}
