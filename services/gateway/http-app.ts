/**
 * The HTTP surface: probes, version and metrics. Every answer is JSON (metrics
 * aside), with no stack traces; while draining every response carries
 * Connection: close so keep-alive clients move on.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../../shared/logger.js';
import { errorFields } from '../../shared/logger.js';
import type { Metrics } from '../../shared/metrics.js';
import { PLAIN_PATH } from '../../shared/protocol.js';
import { requestIdFrom } from './request-id.js';

export interface Readiness {
  ready: boolean;
  /** Why not ready: 'starting', 'draining', 'redis', 'adapter'. */
  reasons: string[];
}

export interface HttpAppDeps {
  version: string;
  metrics: Metrics;
  logger: Logger;
  readiness: () => Readiness;
  isDraining: () => boolean;
}

export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((request: Request, response: Response, next: NextFunction) => {
    const requestId = requestIdFrom(request.headers);
    response.set({
      'X-Request-Id': requestId,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
      'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'",
      'Referrer-Policy': 'no-referrer',
    });
    if (deps.isDraining()) response.set('Connection', 'close');
    response.locals.requestId = requestId;
    next();
  });

  app.get('/healthz', (_request, response) => {
    response.json({ status: 'ok' });
  });

  app.get('/readyz', (_request, response) => {
    const { ready, reasons } = deps.readiness();
    if (ready) response.json({ status: 'ready' });
    else response.status(503).json({ status: 'not_ready', reasons });
  });

  app.get('/version', (_request, response) => {
    response.json({ version: deps.version });
  });

  app.get('/metrics', async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  // A browser tab or curl pointed at the WebSocket endpoint learns what it needs.
  app.all([PLAIN_PATH, PLAIN_PATH.slice(0, -1)], (_request, response) => {
    response.status(426).set('Upgrade', 'websocket').json({ error: 'upgrade_required' });
  });

  app.use((_request: Request, response: Response) => {
    response.status(404).json({ error: 'not_found' });
  });

  // Express recognises an error handler by its four parameters.
  app.use((error: unknown, _request: Request, response: Response, _next: NextFunction) => {
    const status = httpStatusOf(error);
    if (status >= 500) {
      deps.metrics.error('http');
      const requestId = response.locals.requestId as string | undefined;
      deps.logger.error('http request failed', { event: 'http_error', request_id: requestId, ...errorFields(error) });
    }
    response.status(status).json({ error: status >= 500 ? 'internal_error' : 'bad_request' });
  });

  return app;
}

/** Errors raised by express's own parsing carry a 4xx status; anything else is ours. */
function httpStatusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}
