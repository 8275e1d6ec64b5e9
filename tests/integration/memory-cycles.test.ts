/**
 * No memory growth over many connect / message / disconnect cycles. One replica
 * runs with the V8 inspector on loopback; full collections are forced through it
 * (HeapProfiler.collectGarbage) and process.memoryUsage() read through it, so the
 * product is measured as it ships. After a warm-up, the V8 heap after GC is read;
 * then MEMORY_CYCLES cycles (default 20,000: 90% plain, 10% socket.io, 32 at a
 * time, each connects, gets one count and closes) run, and the heap after GC is
 * read again, with the open descriptors and the active-connection gauge.
 *
 * Threshold: the heap may grow by at most HEAP_SLACK_BYTES in all, i.e. well under
 * 100 bytes per cycle at the default count (a leak of one small object per cycle,
 * ~100 bytes, makes 2 MB over 20,000 cycles and fails it). The slack covers what
 * a warm process still allocates once (code, inline caches) and GC noise; both were
 * measured at a few hundred KB here. `MEMORY_CYCLES=50000 npx mocha
 * dist/tests/integration/memory-cycles.test.js` runs the full figure (about 2 minutes here).
 */
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { textOf } from '../../tools/harness/clients.js';
import { Inspector, type Memory } from '../../tools/harness/inspector.js';
import { eventually, freePort, RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';

const CYCLES = Number(process.env.MEMORY_CYCLES ?? 30_000);
const WARM_UP_CYCLES = 5000;
const CONCURRENCY = 32;
/** One cycle in this many is a socket.io one. */
const SOCKETIO_EVERY = 10;
const HEAP_SLACK_BYTES = 1024 * 1024;
/** RSS is noisier (allocator arenas, kernel pages): a coarse bound that still catches a leak of sockets or buffers. */
const RSS_SLACK_BYTES = 24 * 1024 * 1024;

/** One plain cycle: connect (new session), one message, its count, close, closed. */
function plainCycle(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => ws.send('x'));
    ws.on('message', (data) => {
      if (textOf(data) === '{"count":1}') ws.close(1000);
      else reject(new Error(`unexpected ${textOf(data)}`));
    });
    ws.on('error', reject);
    ws.on('close', () => resolve());
  });
}

function socketIoCycle(url: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true });
    socket.on('connect', () => {
      socket.emit('message', 'x', (reply: { count: number }) => {
        if (reply.count !== 1) reject(new Error(`count ${reply.count}`));
        socket.disconnect();
        resolve();
      });
    });
    socket.on('connect_error', reject);
  });
}

async function runCycles(replica: ReplicaProcess, total: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      next += 1;
      if (next % SOCKETIO_EVERY === 0) await socketIoCycle(replica.httpUrl);
      else await plainCycle(replica.wsUrl);
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

describe('memory over connect/disconnect cycles', function () {
  this.timeout(Math.max(120_000, CYCLES * 6));
  let redis: RedisServer;
  let replica: ReplicaProcess;
  let inspector: Inspector | undefined;

  before(async () => {
    redis = await RedisServer.start();
    const inspectPort = await freePort();
    replica = await ReplicaProcess.start(redis, { NODE_OPTIONS: `--inspect=127.0.0.1:${inspectPort}`, LOG_LEVEL: 'warn' });
    inspector = await Inspector.connect(inspectPort);
  });

  after(async () => {
    inspector?.close();
    await replica?.stop();
    await redis?.destroy();
  });

  /** Once every socket is gone on both sides: heap and RSS after full collections, open descriptors. */
  async function settled(): Promise<Memory & { fds: number }> {
    await eventually(
      async () =>
        (await replica.metric('wschat_connections_active', { transport: 'plain' })) +
          (await replica.metric('wschat_connections_active', { transport: 'socketio' })) ===
        0,
      'every connection closed',
      10_000,
    );
    await sleep(500);
    const memory = await inspector!.memoryAfterGc();
    return { ...memory, fds: await replica.metric('process_open_fds') };
  }

  it(`keeps the heap flat over ${CYCLES} cycles`, async () => {
    await runCycles(replica, WARM_UP_CYCLES);
    const before = await settled();
    const started = Date.now();
    await runCycles(replica, CYCLES);
    const seconds = (Date.now() - started) / 1000;
    const after = await settled();

    const heapGrowth = after.heapUsed - before.heapUsed;
    const rssGrowth = after.rss - before.rss;
    process.stdout.write(
      `      ${CYCLES} cycles in ${seconds.toFixed(1)} s; heap after GC ${before.heapUsed} -> ${after.heapUsed} bytes ` +
        `(${(heapGrowth / CYCLES).toFixed(1)} bytes/cycle); RSS ${(before.rss / 2 ** 20).toFixed(1)} -> ${(after.rss / 2 ** 20).toFixed(1)} MiB; ` +
        `fds ${before.fds} -> ${after.fds}\n`,
    );
    const counted =
      (await replica.metric('wschat_messages_total', { transport: 'plain' })) +
      (await replica.metric('wschat_messages_total', { transport: 'socketio' }));
    assert.equal(counted, WARM_UP_CYCLES + CYCLES, 'every cycle was counted');
    assert.ok(heapGrowth < HEAP_SLACK_BYTES, `heap grew by ${heapGrowth} bytes over ${CYCLES} cycles (slack ${HEAP_SLACK_BYTES})`);
    assert.ok(rssGrowth < RSS_SLACK_BYTES, `RSS grew by ${rssGrowth} bytes over ${CYCLES} cycles (slack ${RSS_SLACK_BYTES})`);
    assert.ok(after.fds <= before.fds + 2, `open descriptors ${before.fds} -> ${after.fds}`);
    assert.equal(replica.stderr.replace(/Debugger listening on .*\n|For help, see: .*\n|Debugger attached\.\n/g, ''), '', 'nothing on stderr');
  });
});
