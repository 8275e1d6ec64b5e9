/**
 * The ceiling to compare the product against: the same plain-WebSocket counting
 * protocol on raw `ws`, with nothing else, or with the product's two unavoidable
 * costs and nothing else (the "fair ceiling", docs/benchmarks.md):
 *
 *   - `--redis URL`: one INCR per message on a key per connection, through ioredis
 *     with enableAutoPipelining (as the product's client), and the count is written
 *     only once Redis answered it. One connection answers in order, so replies keep
 *     the order of the messages, as the product's do.
 *   - `--heartbeat-ms N`: a heartbeat `{"ts": ISO}` on wall-clock multiples of N (the
 *     product's HEARTBEAT_INTERVAL_MS alignment), framed ONCE per tick and that one
 *     buffer written to every socket: the least a broadcast can cost.
 *
 * Without either it is the bare ceiling: a counter in memory, no heartbeat.
 *
 *   node dist/tools/loadtest/reference-server.js [PORT] [--redis URL] [--heartbeat-ms N]
 *     (PORT default 8900 on 127.0.0.1; 0: any free port)
 *   node dist/tools/loadtest.js --reference ...   (forks it and runs the same scenario against it)
 *
 * When forked with an IPC channel (by the load test) it reports its port once
 * listening, and answers {type: 'sample'} with its memory, CPU, open sockets and its
 * own heartbeat fan-out (tick instant to the last socket write, in the buckets of the
 * product's wschat_heartbeat_fanout_seconds so both read the same way).
 */
import type { Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import * as wsModule from 'ws';
import { WebSocketServer, type WebSocket } from 'ws';
import { FAN_OUT_BUCKETS, type FanOutHistogram, type ReferenceMessage } from './protocol.js';

/** ws's frame builder (`Sender.frame`, exported by ws), which @types/ws does not declare. */
interface FrameBuilder {
  frame(data: Buffer, options: { fin: boolean; rsv1: boolean; opcode: number; mask: boolean; readOnly: boolean }): Buffer[];
}
const { Sender } = wsModule as unknown as { Sender: FrameBuilder };
const TEXT_OPCODE = 1;
const OPEN = 1;

/** Keys of this process's connections: unique per run, gone ten minutes after their first count. */
const KEY_PREFIX = `wschat-ceiling:${process.pid}-${Date.now()}:`;
const KEY_TTL_MS = 600_000;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { redis: { type: 'string' }, 'heartbeat-ms': { type: 'string', default: '0' } },
});
const port = Number(positionals[0] ?? 8900);
const heartbeatMs = Number(values['heartbeat-ms']);
if (!Number.isInteger(port) || !Number.isInteger(heartbeatMs) || heartbeatMs < 0) {
  throw new Error('usage: reference-server.js [PORT] [--redis URL] [--heartbeat-ms N]');
}
const redis = values.redis === undefined ? undefined : new Redis(values.redis, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
redis?.on('error', (error: Error) => process.stderr.write(`reference server: redis: ${error.message}\n`));

/** Every WebSocket not yet closed, and its raw TCP socket: what the heartbeat writes to. */
const sockets = new Map<WebSocket, Socket>();
let connectionIds = 0;
const fanOut: FanOutHistogram = { count: 0, sum: 0, buckets: FAN_OUT_BUCKETS.map((le) => ({ le, count: 0 })) };

/** The bare ceiling's counter: in memory. */
function countInMemory(ws: WebSocket): void {
  let count = 0;
  ws.on('message', () => {
    count += 1;
    ws.send(`{"count":${count}}`);
  });
}

/** The fair ceiling's counter: INCR, the reply written when Redis answered. */
function countInRedis(ws: WebSocket, client: Redis): void {
  const key = `${KEY_PREFIX}${(connectionIds += 1)}`;
  ws.on('message', () => {
    client.incr(key).then(
      (count) => {
        ws.send(`{"count":${count}}`);
        if (count === 1) void client.pexpire(key, KEY_TTL_MS).catch(() => undefined);
      },
      () => ws.close(1011, 'redis'),
    );
  });
}

/** Frames the tick's heartbeat once and writes that buffer to every socket; records tick to last write. */
function broadcast(tick: number): void {
  if (sockets.size > 0) {
    const text = Buffer.from(JSON.stringify({ ts: new Date(tick).toISOString() }));
    const frame = Buffer.concat(Sender.frame(text, { fin: true, rsv1: false, opcode: TEXT_OPCODE, mask: false, readOnly: false }));
    // ws writes each of its frames whole and synchronously (no compression here), so a
    // raw write between two of them cannot split one.
    // Only to open ones: nothing may follow a close frame (as the product checks its connection's state).
    for (const [ws, socket] of sockets) if (ws.readyState === OPEN) socket.write(frame);
    record((Date.now() - tick) / 1000);
  }
  scheduleHeartbeat();
}

function record(seconds: number): void {
  fanOut.count += 1;
  fanOut.sum += seconds;
  for (const bucket of fanOut.buckets) if (seconds <= bucket.le) bucket.count += 1;
}

function scheduleHeartbeat(): void {
  const now = Date.now();
  const next = Math.floor(now / heartbeatMs) * heartbeatMs + heartbeatMs;
  setTimeout(() => broadcast(next), next - now);
}

const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws/chat/', perMessageDeflate: false, clientTracking: false });
server.on('connection', (ws, request) => {
  sockets.set(ws, request.socket);
  if (redis === undefined) countInMemory(ws);
  else countInRedis(ws, redis);
  ws.on('close', () => sockets.delete(ws));
  ws.on('error', () => ws.terminate());
});
if (heartbeatMs > 0) scheduleHeartbeat();

const report = (message: ReferenceMessage): void => void process.send?.(message);
server.on('listening', () => {
  const { port: listening } = server.address() as { port: number };
  process.stdout.write(`reference server on ws://127.0.0.1:${listening}/ws/chat/ (redis: ${redis === undefined ? 'no' : 'yes'}, heartbeat: ${heartbeatMs || 'no'})\n`);
  report({ type: 'listening', port: listening });
});
process.on('message', (message: { type: string }) => {
  if (message.type !== 'sample') return;
  const { user, system } = process.cpuUsage();
  report({
    type: 'sample',
    processes: 1,
    rssBytes: process.memoryUsage.rss(),
    cpuSeconds: (user + system) / 1e6,
    connections: sockets.size,
    fanOut: heartbeatMs > 0 ? { ...fanOut, buckets: fanOut.buckets.map((bucket) => ({ ...bucket })) } : undefined,
  });
});
// Forked by the load test: when it is gone (killed, crashed) this process goes too, never an orphan holding a port.
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => {
  redis?.disconnect();
  server.close(() => process.exit(0));
  // close() waits for no socket (clientTracking is off); exit even if one lingers.
  setTimeout(() => process.exit(0), 1000).unref();
});
