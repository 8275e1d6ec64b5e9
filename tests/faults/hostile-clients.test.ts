/**
 * Hostile clients against the real stack (Nginx in front of a replica and Redis),
 * each attack run while bystander sockets count through the same Nginx: the attacker
 * gets its documented answer, and afterwards every bystander still counts 1..N with
 * no close, the replica is ready, and its memory stayed within a bound the attacker
 * cannot move (DESIGN.md, "Threat model").
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { PlainClient, SocketIoClient, range, textOf, type Closed } from '../../tools/harness/clients.js';
import { eventually, sleep, withTimeout } from '../../tools/harness/processes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { NativeStack } from '../support/stack.js';
import { stackPid } from '../support/stack-run-dir.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';

const PLAIN_BYSTANDERS = 10;
const SOCKETIO_BYSTANDERS = 5;
const MAX_CONNECTIONS = 60;
const HANDSHAKES_PER_SECOND = 20;
const HANDSHAKE_BURST = 20;
/** What the replica may grow by over the whole suite: a few connections' worth, far from what the attacks asked for. */
const SOCKETIO = { transport: 'socketio' };
const RSS_GROWTH_BOUND_BYTES = 64 * 1024 * 1024;

/** The status, headers and body of an HTTP answer, the path sent exactly as given (no URL normalisation). */
function rawGet(port: number, requestPath: string, localAddress?: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path: requestPath, localAddress, headers: { connection: 'close' } }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.once('error', reject);
    request.end();
  });
}

type Refused = { status: number; body: string; retryAfter: string | undefined };

/**
 * A WebSocket handshake's outcome: the HTTP status and body that refused it, or after a
 * 101 what `opened` asks: 'wait' for the server's close, 'close' it at once (1000) and
 * report that close, or 'keep' it open and hand over the socket.
 */
function handshake(url: string, localAddress: string | undefined, opened: 'wait' | 'close'): Promise<{ closed: Closed } | Refused>;
function handshake(url: string, localAddress: string | undefined, opened: 'keep'): Promise<{ open: WebSocket } | Refused>;
function handshake(url: string, localAddress: string | undefined, opened: 'wait' | 'close' | 'keep'): Promise<{ closed: Closed } | { open: WebSocket } | Refused> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress });
    if (opened === 'close') ws.once('open', () => ws.close(1000));
    if (opened === 'keep') ws.once('open', () => resolve({ open: ws }));
    ws.once('close', (code, reason) => resolve({ closed: { code, reason: reason.toString() } }));
    ws.once('unexpected-response', (_request, response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, retryAfter: response.headers['retry-after'] }));
    });
    ws.once('error', (error) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((entry) => entry.startsWith('VmRSS:'));
  return Number(/(\d+)/.exec(line ?? '')?.[1] ?? 0) * 1024;
}

describe('hostile clients, behind Nginx, with bystanders counting', function () {
  this.timeout(60_000);
  let stack: NativeStack;
  let port: number;
  let replicaPid: number;
  /** The stack's one replica, on the internal side. */
  let replicaPort: number;
  const replicaMetric = (name: string, labels: Record<string, string>): Promise<number> =>
    metricSum(`http://127.0.0.1:${replicaPort}/metrics`, name, labels);
  let rssAtStart: number;
  const plain: PlainClient[] = [];
  const socketIo: SocketIoClient[] = [];
  /** Every session id any client of this suite used: none may appear in a log. */
  const sessionIds: string[] = [];
  let rounds = 0;

  before(async () => {
    stack = await NativeStack.started({
      replicas: 1,
      heartbeatIntervalMs: 30_000,
      env: {
        MAX_CONNECTIONS: String(MAX_CONNECTIONS),
        NGINX_HANDSHAKES_PER_ADDRESS: String(HANDSHAKES_PER_SECOND),
        NGINX_HANDSHAKE_BURST: String(HANDSHAKE_BURST),
      },
    });
    port = Number(stack.env.STACK_PORT);
    replicaPid = stackPid(stack, 'replica-blue-1') ?? assert.fail('no replica pid');
    replicaPort = Number(stack.env.BLUE_PORT_BASE) + 1;
    for (let i = 0; i < PLAIN_BYSTANDERS; i += 1) {
      const id = randomSessionId();
      sessionIds.push(id);
      plain.push(await PlainClient.connect(stack.wsUrl, id));
    }
    for (let i = 0; i < SOCKETIO_BYSTANDERS; i += 1) {
      const id = randomSessionId();
      sessionIds.push(id);
      socketIo.push(await SocketIoClient.connect(stack.httpUrl, id));
    }
    rssAtStart = rssOf(replicaPid);
  });

  after(async () => {
    for (const client of [...plain, ...socketIo]) client.close();
    await stack?.destroy();
  });

  /** Each bystander sends one more message and gets the next count; none was closed; the replica is ready and its memory bounded. */
  async function bystandersUnharmed(): Promise<void> {
    rounds += 1;
    for (const client of [...plain, ...socketIo]) client.send(`round ${rounds}`);
    for (const client of [...plain, ...socketIo]) assert.deepEqual(await client.waitForCounts(rounds), range(1, rounds));
    for (const client of plain) assert.equal(client.closed, undefined);
    for (const client of socketIo) assert.equal(client.disconnectReason, undefined);
    assert.equal((await rawGet(replicaPort, '/readyz')).status, 200);
    const grown = rssOf(replicaPid) - rssAtStart;
    assert.ok(grown < RSS_GROWTH_BOUND_BYTES, `replica RSS grew by ${Math.round(grown / 1e6)} MB`);
  }

  it('refuses resume positions the replica never issued with 4506, on both endpoints, and takes one within its limits', async () => {
    const victim = randomSessionId();
    sessionIds.push(victim);
    for (const query of ['last=60000000', 'last=0&pending=60000000', 'last=9007199254740990', 'last=0&pending=65']) {
      const answer = await handshake(`${stack.wsUrl}?session=${victim}&${query}`, undefined, 'wait');
      assert.deepEqual(answer, { closed: { code: 4506, reason: 'invalid resume position' } }, query);
    }
    const socket = io(stack.httpUrl, { transports: ['websocket'], reconnection: false, forceNew: true, auth: { session: victim, last: 0, pending: 60_000_000 } });
    const refused = await withTimeout(new Promise<unknown>((resolve) => socket.once('connect_error', (error: Error & { data?: unknown }) => resolve(error.data))), 5000, 'connect_error');
    socket.close();
    assert.deepEqual(refused, { code: 4506, reason: 'invalid resume position' });
    const within = await PlainClient.connect(`${stack.wsUrl}?session=${victim}&last=0&pending=64`);
    within.send('counted');
    assert.deepEqual(await within.waitForCounts(1), [1]);
    within.close();
    await bystandersUnharmed();
  });

  it('gives one engine.io connection one session, however many CONNECT packets it writes', async () => {
    const openedBefore = await replicaMetric('wschat_connections_opened_total', SOCKETIO);
    const raw = new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`);
    const frames: string[] = [];
    raw.on('message', (data) => frames.push(textOf(data)));
    const closed = new Promise<void>((resolve) => raw.once('close', () => resolve()));
    await eventually(() => frames.some((frame) => frame.startsWith('0')), 'the engine.io open packet');
    // One write's worth of CONNECT packets: those that arrive before the first session is
    // open get 4507; one after it makes socket.io close the whole connection.
    for (let i = 0; i < 2000; i += 1) raw.send('40');
    await withTimeout(closed, 15_000, 'the attacking connection to close');
    assert.equal((await replicaMetric('wschat_connections_opened_total', SOCKETIO)) - openedBefore, 1, 'one session opened');
    assert.equal(frames.filter((frame) => frame.startsWith('40{')).length, 1, 'one session announced');
    for (const refusal of frames.filter((frame) => frame.startsWith('44'))) assert.match(refusal, /"code":4507/);
    await eventually(async () => (await replicaMetric('wschat_connections_active', SOCKETIO)) === SOCKETIO_BYSTANDERS, 'the attacker gone');
    await bystandersUnharmed();
  });

  it('keeps /metrics off the public side in every spelling, and answers the probes with and without their slash', async () => {
    for (const variant of ['/metrics', '/metrics/', '/Metrics', '/METRICS', '/metrics/.', '/%6detrics', '//metrics']) {
      const answer = await rawGet(port, variant);
      assert.equal(answer.status, 404, variant);
      assert.deepEqual(JSON.parse(answer.body), { error: 'not_found' }, variant);
      assert.equal(answer.headers['x-content-type-options'], 'nosniff', `${variant}: Nginx's own answer carries the headers`);
    }
    for (const probe of ['/healthz', '/healthz/', '/version', '/version/']) assert.equal((await rawGet(port, probe)).status, 200, probe);
    await bystandersUnharmed();
  });

  it('refuses handshakes over the per-address rate with 429 and Retry-After, and only from that address', async () => {
    const attempts = 4 * HANDSHAKE_BURST;
    const answers = await Promise.all(range(1, attempts).map(() => handshake(stack.wsUrl, '127.0.0.9', 'close')));
    const refused = answers.filter((answer) => 'status' in answer);
    assert.ok(refused.length >= attempts - HANDSHAKE_BURST - HANDSHAKES_PER_SECOND, `${refused.length} of ${attempts} refused`);
    for (const answer of refused) assert.deepEqual(answer, { status: 429, body: '{"error":"too_many_handshakes"}', retryAfter: '1' });
    await sleep(100);
    const elsewhere = await PlainClient.connect(stack.wsUrl, undefined);
    elsewhere.close();
    await bystandersUnharmed();
  });

  it('holds at most MAX_CONNECTIONS sockets, answering the rest 503 replica_full', async () => {
    const held: WebSocket[] = [];
    const refusals: unknown[] = [];
    const room = MAX_CONNECTIONS - PLAIN_BYSTANDERS - SOCKETIO_BYSTANDERS;
    for (let i = 0; i < room + 5; i += 1) {
      // A fresh source address every HANDSHAKE_BURST sockets, so the rate limit stays out of it.
      const localAddress = `127.0.1.${Math.floor(i / HANDSHAKE_BURST) + 1}`;
      const answer = await handshake(stack.wsUrl, localAddress, 'keep');
      if ('open' in answer) held.push(answer.open);
      else refusals.push(answer);
    }
    for (const client of held) client.close();
    assert.equal(held.length, room);
    assert.deepEqual(refusals, Array.from({ length: 5 }, () => ({ status: 503, body: '{"error":"replica_full"}', retryAfter: '1' })));
    await eventually(async () => (await replicaMetric('wschat_connections_active', { transport: 'plain' })) === PLAIN_BYSTANDERS, 'the held sockets closed');
    await bystandersUnharmed();
  });

  it('names no Redis key after a session id: a reader of Redis cannot resume what it sees', async () => {
    const redis = new Redis(`redis://127.0.0.1:${stack.env.REDIS_PORT}`, { maxRetriesPerRequest: 1 });
    try {
      const keys = await redis.keys('*');
      assert.ok(keys.length > PLAIN_BYSTANDERS, `${keys.length} keys`);
      for (const id of sessionIds) assert.ok(keys.every((key) => !key.includes(id)), `a key names ${id.slice(0, 8)}…`);
    } finally {
      redis.disconnect();
    }
  });

  it('writes no session id into any log, of Nginx or the replica', () => {
    const logs = ['nginx-access.log', 'nginx-error.log', 'replica-blue-1.log'].map((name) => {
      try {
        return readFileSync(path.join(stack.runDir, 'logs', name), 'utf8');
      } catch {
        return '';
      }
    });
    assert.ok(logs[0]!.includes('/ws/chat/'), 'the access log has the requests');
    for (const id of sessionIds) for (const [index, text] of logs.entries()) assert.ok(!text.includes(id), `session ${id.slice(0, 8)}… in log ${index}`);
  });
});
