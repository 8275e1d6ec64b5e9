/**
 * The HTTP surface in-process on port 0: each route answers its own spelling only (so
 * a proxy rule on /metrics covers the route), the original service's slashed probes,
 * and /readyz keeping its reasons from requests the public proxy forwarded.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpApp, PUBLIC_EDGE_HEADER, type Readiness } from '../../services/gateway/http-app.js';
import { createLogger } from '../../services/gateway/logger.js';
import { Metrics } from '../../services/gateway/metrics.js';

describe('HTTP surface', () => {
  let server: http.Server;
  let base: string;
  let readiness: Readiness = { ready: true, reasons: [] };

  before(async () => {
    const app = createHttpApp({
      version: 'blue',
      metrics: new Metrics(),
      logger: createLogger({ level: 'error', replica: 'unit', version: 'blue' }),
      readiness: () => readiness,
      isDraining: () => false,
    });
    server = http.createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const status = async (path: string, headers: Record<string, string> = {}): Promise<number> => (await fetch(`${base}${path}`, { headers })).status;

  it('serves /metrics at its own spelling only', async () => {
    assert.equal(await status('/metrics'), 200);
    for (const other of ['/metrics/', '/Metrics', '/METRICS', '/%6detrics']) assert.equal(await status(other), 404, other);
  });

  it('answers /healthz and /version with and without the slash the original service documents', async () => {
    for (const path of ['/healthz', '/healthz/', '/version', '/version/']) assert.equal(await status(path), 200, path);
    assert.deepEqual(await (await fetch(`${base}/version/`)).json(), { version: 'blue' });
  });

  it('tells operators why it is not ready, and the public only that it is not', async () => {
    readiness = { ready: false, reasons: ['redis'] };
    try {
      assert.deepEqual(await (await fetch(`${base}/readyz`)).json(), { status: 'not_ready', reasons: ['redis'] });
      const publicAnswer = await fetch(`${base}/readyz`, { headers: { [PUBLIC_EDGE_HEADER]: 'public' } });
      assert.equal(publicAnswer.status, 503);
      assert.deepEqual(await publicAnswer.json(), { status: 'not_ready' });
    } finally {
      readiness = { ready: true, reasons: [] };
    }
  });
});
