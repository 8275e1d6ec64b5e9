/**
 * STACK_TLS=1: the native stack's public side serves https:// and wss:// only, with a
 * certificate signed by a CA the stack made (ca.pem in its run folder), HSTS on its
 * answers, both endpoints counting over TLS, and a release (the scripts' own checks
 * reach the public side over TLS too).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { textOf } from '../../tools/harness/clients.js';
import { eventually, withTimeout } from '../../tools/harness/processes.js';
import { NativeStack } from '../support/stack.js';

function get(url: string, ca: Buffer): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, headers: { connection: 'close' } }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      })
      .once('error', reject);
  });
}

describe('the native stack over TLS (STACK_TLS=1)', function () {
  // Two releases are built (blue at dev-up, green at the promotion).
  this.timeout(240_000);
  let stack: NativeStack;
  let ca: Buffer;
  let base: string;

  before(async () => {
    stack = await NativeStack.started({ replicas: 1, heartbeatIntervalMs: 30_000, env: { STACK_TLS: '1' } });
    ca = readFileSync(path.join(stack.runDir, 'tls', 'ca.pem'));
    base = `https://127.0.0.1:${stack.env.STACK_PORT}`;
  });

  after(async () => {
    await stack?.destroy();
  });

  it('answers https with the stack CA\'s certificate and HSTS, and refuses a client that does not trust it', async () => {
    const version = await get(`${base}/version`, ca);
    assert.deepEqual([version.status, JSON.parse(version.body)], [200, { version: 'blue' }]);
    assert.match(String(version.headers['strict-transport-security']), /^max-age=\d+/);
    await assert.rejects(get(`${base}/version`, Buffer.from('')), /self-signed|unable to verify|certificate/i);
  });

  it('counts over wss:// on both endpoints', async () => {
    const ws = new WebSocket(`wss://127.0.0.1:${stack.env.STACK_PORT}/ws/chat/`, { ca });
    const frames: string[] = [];
    ws.on('message', (data) => frames.push(textOf(data)));
    await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5000, 'wss open');
    ws.send('one');
    ws.send('two');
    await eventually(() => frames.length === 2, 'two counts');
    assert.deepEqual(frames, ['{"count":1}', '{"count":2}']);
    ws.close();
    const socket = io(base, { transports: ['websocket'], reconnection: false, forceNew: true, ca: ca.toString() });
    const count = await withTimeout(
      new Promise<unknown>((resolve, reject) => {
        socket.once('connect_error', reject);
        socket.once('session', () => socket.emit('message', 'hi', resolve));
      }),
      5000,
      'a socket.io count over wss',
    );
    socket.close();
    assert.deepEqual(count, { count: 1 });
  });

  it('releases the other colour, its checks going through the public side over TLS', async () => {
    const promoted = await stack.promote();
    assert.equal(promoted.code, 0, promoted.output);
    assert.deepEqual(JSON.parse((await get(`${base}/version`, ca)).body), { version: 'green' });
  });
});
