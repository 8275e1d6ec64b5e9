/**
 * The HTTP surface: probes, version, metrics and the live page. Every answer is JSON
 * (metrics and the page aside), with no stack traces; while draining every response
 * carries Connection: close so keep-alive clients move on.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { errorFields, type Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import { PLAIN_PATH } from '../../shared/protocol/messages.js';
import { requestIdFrom } from './request-id.js';

/** Set by the public side's proxy (nginx/nginx.conf.template) on every request it forwards. */
export const PUBLIC_EDGE_HEADER = 'X-Wschat-Edge';

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

/**
 * The compiled page (services/gateway/public, built by tools/stack/build-page.sh): <out>/page,
 * next to <out>/services/gateway/http-app.js, so every release serves its own page.
 */
const PAGE_DIR = fileURLToPath(new URL('../../page/', import.meta.url));

/** The page's HTML lives here inside the page folder; its assets are served from the folder's root under /static/. */
const PAGE_HTML = 'services/gateway/public/index.html';

/**
 * The page runs only its own script and style and talks only to its own origin
 * ('self' covers ws:// and wss:// to the same host and port in CSP Level 3, which
 * Chromium follows; tests/stack/page.e2e.test.ts connects under this policy).
 */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export function createHttpApp(deps: HttpAppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  // Each route answers its own spelling only: /metrics is not /Metrics or /metrics/, so a
  // proxy rule that keeps the public away from one path keeps it away from the route.
  app.set('case sensitive routing', true);
  app.set('strict routing', true);

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

  // The original service documents /healthz/ and /version/ with their slash: both spellings answer.
  app.get(['/healthz', '/healthz/'], (_request, response) => {
    response.json({ status: 'ok' });
  });

  // Why a replica is not ready is for operators: a request the public proxy forwarded
  // (it sets PUBLIC_EDGE_HEADER, overwriting any the client sent) gets the status only.
  app.get('/readyz', (request, response) => {
    const { ready, reasons } = deps.readiness();
    if (ready) response.json({ status: 'ready' });
    else if (request.get(PUBLIC_EDGE_HEADER) !== undefined) response.status(503).json({ status: 'not_ready' });
    else response.status(503).json({ status: 'not_ready', reasons });
  });

  app.get(['/version', '/version/'], (_request, response) => {
    response.json({ version: deps.version });
  });

  app.get('/metrics', async (_request, response) => {
    response.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  servePage(app, deps);

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

/**
 * GET / is the page, /static/ its scripts and style. Both revalidate on every load
 * (ETag + Cache-Control: no-cache, so a 304 most of the time): the page must be the
 * live colour's, which changes at every release, under the same URLs.
 */
function servePage(app: express.Express, deps: HttpAppDeps): void {
  if (!existsSync(`${PAGE_DIR}/${PAGE_HTML}`)) {
    deps.logger.warn('the page is not built: GET / answers 404 (npm run build builds it)', { event: 'page_missing', page_dir: PAGE_DIR });
    return;
  }
  // express.static, not res.sendFile: sendFile follows the app's `etag` setting, which
  // is off for the JSON answers. Only files found get no-cache; a miss falls through
  // to the JSON 404 (no-store).
  const files = express.static(PAGE_DIR, {
    etag: true,
    lastModified: true,
    cacheControl: false,
    dotfiles: 'ignore',
    index: false,
    redirect: false,
    fallthrough: true,
    setHeaders: (response: Response) => void response.set('Cache-Control', 'no-cache'),
  });

  app.get('/', (request, response, next) => {
    response.set('Content-Security-Policy', PAGE_CSP);
    request.url = `/${PAGE_HTML}`;
    files(request, response, next);
  });
  app.use('/static', files);
}

/** Errors raised by express's own parsing carry a 4xx status; anything else is ours. */
function httpStatusOf(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 600 ? status : 500;
}
