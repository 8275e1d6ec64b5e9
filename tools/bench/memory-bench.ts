/**
 * Memory per idle socket, after garbage collection, for the product and for the
 * reference server (tools/loadtest/reference-server.ts), measured the same way:
 *
 *   npm run bench:memory -- [SOCKETS per kind, default 5000, at most 9000]
 *
 * Starts its own redis-server, one replica and two reference servers (the fair
 * ceiling: INCR in the same Redis and the heartbeat; the bare one: neither) on free
 * loopback ports, each with the V8 inspector on loopback, which is how a full GC is
 * forced and the process's memory read without adding anything to the product. For
 * each kind (product plain, product socket.io, fair ceiling plain, bare reference
 * plain): warm up, GC, read the baseline,
 * open N sockets that each get one count (then stay idle), GC, read again, close them.
 * Per socket = growth / N, for RSS (what the operator pays) and the V8 heap.
 * Kernel socket buffers are not in RSS; they are the same for any server.
 *
 * Prints a Markdown table and one JSON line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlainClient, SocketIoClient } from '../harness/clients.js';
import { Inspector } from '../harness/inspector.js';
import { eventually, freePorts, RedisServer, ReplicaProcess, sleep } from '../harness/processes.js';

const BATCH = 200;
const WARM_UP = 200;

/** An idle client: connected, one message counted, nothing more. */
interface IdleClient {
  close(): void;
}

type Connect = () => Promise<IdleClient>;

async function plainClient(url: string): Promise<IdleClient> {
  const client = await PlainClient.connect(url);
  client.send('x');
  await client.waitForCounts(1, 30_000);
  return client;
}

async function socketIoClient(url: string): Promise<IdleClient> {
  const client = await SocketIoClient.connect(url);
  client.send('x');
  await eventually(() => client.acks.length === 1, 'the first ack', 30_000);
  return client;
}

async function openMany(connect: Connect, count: number): Promise<IdleClient[]> {
  const clients: IdleClient[] = [];
  for (let opened = 0; opened < count; opened += BATCH) {
    clients.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, count - opened) }, connect))));
  }
  return clients;
}

interface KindResult {
  kind: string;
  sockets: number;
  rss_per_socket_kib: number;
  heap_per_socket_kib: number;
}

const kib = (bytes: number, sockets: number): number => Math.round((bytes / sockets / 1024) * 100) / 100;

/** Baseline after a warm-up (lazy initialisation is not per socket), then N idle sockets. */
async function measure(kind: string, inspector: Inspector, connect: Connect, sockets: number): Promise<KindResult> {
  for (const client of await openMany(connect, WARM_UP)) client.close();
  await sleep(1000);
  const before = await inspector.memoryAfterGc();
  const clients = await openMany(connect, sockets);
  await sleep(1000);
  const after = await inspector.memoryAfterGc();
  for (const client of clients) client.close();
  await sleep(1000);
  return {
    kind,
    sockets,
    rss_per_socket_kib: kib(after.rss - before.rss, sockets),
    heap_per_socket_kib: kib(after.heapUsed - before.heapUsed, sockets),
  };
}

function startReference(port: number, inspectPort: number, args: string[] = []): ChildProcess {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), '../loadtest/reference-server.js');
  return spawn(process.execPath, [`--inspect=127.0.0.1:${inspectPort}`, script, String(port), ...args], { stdio: 'ignore' });
}

async function main(): Promise<void> {
  const sockets = Number(process.argv[2] ?? 5000);
  if (!Number.isInteger(sockets) || sockets < 1 || sockets > 9000) throw new Error('usage: memory-bench.js SOCKETS (1-9000)');
  const ports = (await freePorts(5)) as [number, number, number, number, number];
  const [replicaInspect, fairPort, fairInspect, barePort, bareInspect] = ports;
  const redis = await RedisServer.start();
  // The product's default heartbeat interval; no tick falls in a run, its sockets are tracked all the same.
  const replica = await ReplicaProcess.start(redis, { NODE_OPTIONS: `--inspect=127.0.0.1:${replicaInspect}`, LOG_LEVEL: 'warn', HEARTBEAT_INTERVAL_MS: '30000' });
  const fair = startReference(fairPort, fairInspect, ['--redis', redis.url, '--heartbeat-ms', '30000']);
  const bare = startReference(barePort, bareInspect);
  const inspectors: Inspector[] = [];
  try {
    const productInspector = await Inspector.connect(replicaInspect);
    const fairInspector = await Inspector.connect(fairInspect);
    const bareInspector = await Inspector.connect(bareInspect);
    inspectors.push(productInspector, fairInspector, bareInspector);
    const results = [
      await measure('product plain', productInspector, () => plainClient(replica.wsUrl), sockets),
      await measure('product socket.io', productInspector, () => socketIoClient(replica.httpUrl), sockets),
      await measure('fair ceiling plain', fairInspector, () => plainClient(`ws://127.0.0.1:${fairPort}/ws/chat/`), sockets),
      await measure('bare reference plain', bareInspector, () => plainClient(`ws://127.0.0.1:${barePort}/ws/chat/`), sockets),
    ];
    const [plain, , ref, bareRef] = results as [KindResult, KindResult, KindResult, KindResult];
    const ratio = Math.round((plain.rss_per_socket_kib / ref.rss_per_socket_kib) * 100) / 100;
    const bareRatio = Math.round((plain.rss_per_socket_kib / bareRef.rss_per_socket_kib) * 100) / 100;
    const rows = results.map((r) => `| ${r.kind} | ${r.sockets} | ${r.rss_per_socket_kib} KiB | ${r.heap_per_socket_kib} KiB |`);
    process.stdout.write(
      [
        '| kind | idle sockets | RSS / socket after GC | V8 heap / socket after GC |',
        '|---|---|---|---|',
        ...rows,
        '',
        `product/fair ceiling RSS per plain socket: ${ratio} (product/bare reference: ${bareRatio})`,
        JSON.stringify({ date: new Date().toISOString(), results, product_ceiling_rss_ratio: ratio, product_bare_reference_rss_ratio: bareRatio }),
        '',
      ].join('\n'),
    );
  } finally {
    for (const inspector of inspectors) inspector.close();
    fair.kill('SIGTERM');
    bare.kill('SIGTERM');
    await replica.stop();
    await redis.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`memory-bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
