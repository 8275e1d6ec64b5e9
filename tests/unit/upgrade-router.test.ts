/**
 * The upgrade router in-process: every refusal with its status, JSON body, request
 * id and error kind; the routes by path; and the socket tracking the drain relies on.
 * Sockets are PassThrough streams, requests plain objects with the fields it reads.
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { ConnectionRegistry } from '../../services/gateway/connection-registry.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { UpgradeRouter, type UpgradeRoutes } from '../../services/gateway/upgrade-router.js';
import { refusalNow, type AdmissionState } from '../../services/gateway/admission.js';
import { metricValue, rawAnswer } from '../support/in-process.js';

interface Routed {
  route: 'plain' | 'socketIo';
  url: string | undefined;
  requestId?: string;
}

type Overrides = Partial<UpgradeRoutes> & Partial<AdmissionState>;

/** A router whose admission is the replica's own rule (admission.ts) over the state the test sets. */
function router(overrides: Overrides = {}): { router: UpgradeRouter; routed: Routed[]; metrics: Metrics; registry: ConnectionRegistry } {
  const routed: Routed[] = [];
  const metrics = new Metrics();
  const registry = new ConnectionRegistry();
  const state: AdmissionState = {
    isDraining: overrides.isDraining ?? (() => false),
    storeReady: overrides.storeReady ?? (() => true),
    openSockets: () => registry.openSockets,
    maxConnections: overrides.maxConnections ?? 1000,
  };
  const routes: UpgradeRoutes = {
    refusalNow: () => refusalNow(state),
    originAllowed: () => true,
    plain: (request, _socket, _head, requestId) => void routed.push({ route: 'plain', url: request.url, requestId }),
    socketIo: (request) => void routed.push({ route: 'socketIo', url: request.url }),
    metrics,
    registry,
    ...overrides,
  };
  return { router: new UpgradeRouter(routes), routed, metrics, registry };
}

function request(url: string, headers: Record<string, string> = {}, minor = 1): IncomingMessage {
  return { url, headers, httpVersionMajor: 1, httpVersionMinor: minor } as unknown as IncomingMessage;
}

/** Hands `incoming` to the router on a fresh socket; what it answered, once the socket closes. */
async function refusal(target: UpgradeRouter, incoming: IncomingMessage): Promise<{ status: string; headers: string; body: unknown }> {
  const answer = await rawAnswer((socket) => target.handle(incoming, socket, Buffer.alloc(0)));
  return { status: answer.status, headers: answer.headers.join('\n'), body: JSON.parse(answer.body) };
}

describe('upgrade router', () => {
  const refusals = [
    ['while draining', { isDraining: () => true }, request('/ws/chat/'), 'HTTP/1.1 503 Service Unavailable', 'shutting_down', 'upgrade_while_draining'],
    ['while the session store is not ready', { storeReady: () => false }, request('/ws/chat/'), 'HTTP/1.1 503 Service Unavailable', 'store_unavailable', 'upgrade_store_unavailable'],
    ['over HTTP/1.0', {}, request('/ws/chat/', {}, 0), 'HTTP/1.1 400 Bad Request', 'http_1_1_required', 'upgrade_http_version'],
    ['from an origin not allowed', { originAllowed: () => false }, request('/ws/chat/'), 'HTTP/1.1 403 Forbidden', 'origin_not_allowed', 'origin_refused'],
    ['to an unknown path', {}, request('/ws/other/'), 'HTTP/1.1 404 Not Found', 'not_found', 'upgrade_not_found'],
    ['over MAX_CONNECTIONS', { maxConnections: 0 }, request('/ws/chat/'), 'HTTP/1.1 503 Service Unavailable', 'replica_full', 'replica_full'],
  ] as const;
  for (const [name, overrides, incoming, status, error, kind] of refusals) {
    it(`refuses an upgrade ${name}: ${status}, {"error":"${error}"}, counted as ${kind}, routed nowhere`, async () => {
      const { router: target, routed, metrics } = router(overrides);
      const answer = await refusal(target, incoming);
      assert.equal(answer.status, status);
      assert.deepEqual(answer.body, { error });
      assert.match(answer.headers, /^Connection: close$/m);
      assert.match(answer.headers, /^Content-Type: application\/json$/m);
      assert.match(answer.headers, /^X-Request-Id: [0-9a-f-]{36}$/m, 'a generated request id');
      assert.equal(await metricValue(metrics, 'wschat_errors_total', { kind }), 1);
      assert.deepEqual(routed, []);
    });
  }

  it('asks a client refused for a store outage to retry in a second, and answers a drain before the store', async () => {
    assert.match((await refusal(router({ storeReady: () => false }).router, request('/ws/chat/'))).headers, /^Retry-After: 1$/m);
    const both = await refusal(router({ storeReady: () => false, isDraining: () => true }).router, request('/ws/chat/'));
    assert.deepEqual(both.body, { error: 'shutting_down' });
  });

  it('takes sockets up to MAX_CONNECTIONS, counting every open one, and the next once one closed', async () => {
    const { router: target, routed, registry } = router({ maxConnections: 2 });
    const open = [new PassThrough(), new PassThrough()];
    for (const socket of open) target.handle(request('/ws/chat/'), socket, Buffer.alloc(0));
    assert.equal(routed.length, 2);
    const over = await refusal(target, request('/ws/chat/'));
    assert.deepEqual([over.status, over.body], ['HTTP/1.1 503 Service Unavailable', { error: 'replica_full' }]);
    assert.match(over.headers, /^Retry-After: 1$/m);
    open[0]!.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(registry.openSockets, 1);
    target.handle(request('/ws/chat/'), new PassThrough(), Buffer.alloc(0));
    assert.equal(routed.length, 3, 'a slot freed is taken');
  });

  it("echoes the proxy's request id on a refusal, and replaces one that does not look like an id", async () => {
    const { router: target } = router();
    assert.match((await refusal(target, request('/nope', { 'x-request-id': 'nginx-5f2c1d' }))).headers, /^X-Request-Id: nginx-5f2c1d$/m);
    const forged = await refusal(target, request('/nope', { 'x-request-id': 'a b\r\nSet-Cookie: x' }));
    assert.match(forged.headers, /^X-Request-Id: [0-9a-f-]{36}$/m);
    assert.doesNotMatch(forged.headers, /Set-Cookie/);
  });

  it('routes /ws/chat/ (with or without its slash, with a query) to the plain endpoint and /socket.io/ to engine.io', () => {
    const { router: target, routed } = router();
    for (const url of ['/ws/chat/', '/ws/chat', '/ws/chat/?session=x', '/socket.io/?EIO=4&transport=websocket']) {
      target.handle(request(url, { 'x-request-id': 'rid-1' }), new PassThrough(), Buffer.alloc(0));
    }
    assert.deepEqual(routed, [
      { route: 'plain', url: '/ws/chat/', requestId: 'rid-1' },
      { route: 'plain', url: '/ws/chat', requestId: 'rid-1' },
      { route: 'plain', url: '/ws/chat/?session=x', requestId: 'rid-1' },
      { route: 'socketIo', url: '/socket.io/?EIO=4&transport=websocket' },
    ]);
  });

  it('routes by the start of the path: anything under /socket.io/ to engine.io, a path that only ends in it to 404', async () => {
    const { router: target, routed } = router();
    target.handle(request('/socket.io/extra?EIO=4'), new PassThrough(), Buffer.alloc(0));
    assert.deepEqual(routed, [{ route: 'socketIo', url: '/socket.io/extra?EIO=4' }]);
    const elsewhere = await refusal(target, request('/other/socket.io/?EIO=4'));
    assert.equal(elsewhere.status, 'HTTP/1.1 404 Not Found');
    assert.equal(routed.length, 1);
  });

  it('refuses HTTP/1.0 only: an HTTP/2.0 request line is not taken for it', () => {
    const { router: target, routed } = router();
    target.handle({ url: '/ws/chat/', headers: {}, httpVersionMajor: 2, httpVersionMinor: 0 } as unknown as IncomingMessage, new PassThrough(), Buffer.alloc(0));
    assert.deepEqual(routed, [{ route: 'plain', url: '/ws/chat/', requestId: routed[0]?.requestId }]);
  });

  it('sends Retry-After only with a refusal that has one: not while draining', async () => {
    const drained = await refusal(router({ isDraining: () => true }).router, request('/ws/chat/'));
    assert.doesNotMatch(drained.headers, /Retry-After/);
  });

  it('checks draining before anything else: a draining replica refuses even a bad path with 503', async () => {
    const { router: target } = router({ isDraining: () => true, originAllowed: () => false });
    assert.equal((await refusal(target, request('/nope', {}, 0))).status, 'HTTP/1.1 503 Service Unavailable');
  });

  it("hands every upgraded socket to the registry until it closes: the registry's whenAllClosed resolves true once the last one does", async () => {
    const { router: target, registry } = router();
    const sockets = [new PassThrough(), new PassThrough()];
    for (const socket of sockets) target.handle(request('/ws/chat/'), socket, Buffer.alloc(0));
    const allClosed = registry.whenAllClosed(5000);
    sockets[0]!.destroy();
    await new Promise((resolve) => setImmediate(resolve));
    let settled = false;
    void allClosed.then(() => (settled = true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(settled, false, 'one socket is still open');
    sockets[1]!.destroy();
    assert.equal(await allClosed, true);
    assert.equal(await registry.whenAllClosed(0), true, 'nothing tracked: at once');
  });

  it("registry's whenAllClosed resolves false when its time runs out; destroyAll then ends what is left and says how many", async () => {
    const { router: target, registry } = router();
    const socket = new PassThrough();
    target.handle(request('/socket.io/?EIO=4'), socket, Buffer.alloc(0));
    assert.equal(await registry.whenAllClosed(20), false);
    assert.equal(registry.destroyAll(), 1);
    assert.equal(socket.destroyed, true);
  });

  it('hands a refused socket to the registry too: the drain waits for it as for any other', async () => {
    const { router: target, registry } = router({ isDraining: () => true });
    const socket = new PassThrough();
    target.handle(request('/ws/chat/'), socket, Buffer.alloc(0));
    assert.equal(registry.destroyAll(), 1, 'tracked before its refusal is flushed');
    assert.equal(await registry.whenAllClosed(1000), true, 'and let go once it closed');
  });

  it('a socket that errors mid-handshake is destroyed, not thrown', () => {
    const { router: target } = router();
    const socket = new PassThrough();
    target.handle(request('/ws/chat/'), socket, Buffer.alloc(0));
    socket.emit('error', new Error('ECONNRESET'));
    assert.equal(socket.destroyed, true);
  });
});
