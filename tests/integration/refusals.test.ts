/**
 * An HTTP refusal (a refused upgrade, a request Node's parser rejects) must leave
 * nothing open: a client that reads the answer and keeps its half of the TCP
 * connection open would otherwise stay tracked and hold a drain for its whole
 * budget. In-process: the router and the clientError handler on an http.Server of
 * the test's own, port 0, and clients that never close (allowHalfOpen).
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ConnectionRegistry } from '../../services/gateway/connection-registry.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { answerClientError } from '../../services/gateway/http-client-error.js';
import { UpgradeRouter } from '../../services/gateway/upgrade-router.js';
import { exchange, upgradeRequest } from '../support/raw-websocket.js';

describe('refusals', () => {
  let server: http.Server;
  let router: UpgradeRouter;
  /** Keeps the upgraded sockets the router hands over, as in a replica. */
  const registry = new ConnectionRegistry();
  /** Server-side sockets of every connection, to see whether they were closed. */
  const serverSockets = new Set<Duplex>();
  const clients: Array<{ destroy: () => void }> = [];
  /** Upgrades the router passed on to an endpoint (none should be). */
  const routed: string[] = [];

  before(async () => {
    server = http.createServer((_request, response) => response.end());
    router = new UpgradeRouter({
      refusalNow: () => undefined,
      originAllowed: () => true,
      plain: (_request, socket) => {
        routed.push('plain');
        socket.destroy();
      },
      socketIo: (_request, socket) => {
        routed.push('socket.io');
        socket.destroy();
      },
      metrics: new Metrics(),
      registry,
    });
    server.on('upgrade', router.handle);
    server.on('clientError', (error: Error & { code?: string }, socket) => answerClientError(new Metrics(), error, socket));
    server.on('connection', (socket) => {
      serverSockets.add(socket);
      socket.once('close', () => serverSockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.destroy();
  });

  after(async () => {
    for (const socket of serverSockets) socket.destroy();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const port = (): number => (server.address() as AddressInfo).port;

  it('destroys a refused upgrade once its response is flushed, even when the client keeps its half open', async () => {
    const response = await exchange(port(), upgradeRequest({ path: '/elsewhere' }).text, { allowHalfOpen: true });
    clients.push(response.socket);
    assert.deepEqual([response.status, JSON.parse(response.body)], [404, { error: 'not_found' }]);
    assert.equal(response.socket.destroyed, false, 'the client never closes its side');
    assert.equal(await registry.whenAllClosed(1000), true, 'the registry still tracks the refused socket');
  });

  it('refuses an HTTP/1.0 upgrade with 400 (RFC 6455 §4.1 needs HTTP/1.1)', async () => {
    const response = await exchange(port(), upgradeRequest({ httpVersion: '1.0' }).text);
    assert.deepEqual([response.status, JSON.parse(response.body)], [400, { error: 'http_1_1_required' }]);
    assert.deepEqual(routed, []);
  });

  it('destroys a connection answered by the clientError handler, even when the client keeps its half open', async () => {
    const response = await exchange(port(), 'HELLO THERE\r\n\r\n', { allowHalfOpen: true });
    clients.push(response.socket);
    assert.deepEqual([response.status, JSON.parse(response.body)], [400, { error: 'bad_request' }]);
    assert.equal(response.socket.destroyed, false, 'the client never closes its side');
    const deadline = Date.now() + 1000;
    while (serverSockets.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.equal(serverSockets.size, 0, 'the server-side socket is still open');
  });
});
