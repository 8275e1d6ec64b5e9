/**
 * The least a client can do to read a heartbeat: `ws` sockets that count the frames
 * they receive and check nothing. It is the yardstick of the load test's own cost:
 * tools/bench/heartbeat-reader-bench.ts runs both against the same server and compares
 * how long each takes to read a tick from every socket.
 *
 *   node dist/tools/bench/raw-heartbeat-client.js --url ws://127.0.0.1:PORT/ws/chat/
 *     --sockets N --heartbeat-ms MS [--ticks 2] [--handshakes 100]
 *
 * Connects N sockets (from 127.2.x.y, so the load test's ports stay free), then for
 * the next `ticks` ticks of the wall-clock grid notes when the 50%, 99% and last of
 * the N frames arrived, from the tick's instant. A frame belongs to the tick before
 * it on the grid (the reader finishes a tick long before the next). Prints one JSON
 * line: per tick, and its own CPU per frame.
 */
import { parseArgs } from 'node:util';
import WebSocket from 'ws';

interface TickReading {
  tick: string;
  frames: number;
  p50_ms: number | null;
  p99_ms: number | null;
  last_ms: number | null;
}

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    sockets: { type: 'string' },
    'heartbeat-ms': { type: 'string' },
    ticks: { type: 'string', default: '2' },
    handshakes: { type: 'string', default: '100' },
  },
});
const url = values.url;
const sockets = Number(values.sockets);
const heartbeatMs = Number(values['heartbeat-ms']);
const tickCount = Number(values.ticks);
const handshakes = Number(values.handshakes);
if (url === undefined || !(sockets > 0) || !(heartbeatMs > 0) || !(tickCount > 0) || !(handshakes > 0)) {
  throw new Error('usage: raw-heartbeat-client.js --url WS_URL --sockets N --heartbeat-ms MS [--ticks 2] [--handshakes 100]');
}

const open: WebSocket[] = [];
let tick = Number.POSITIVE_INFINITY;
let frames = 0;
let reading: TickReading | undefined;
const p50 = Math.ceil(sockets * 0.5);
const p99 = Math.ceil(sockets * 0.99);

/** The only per-frame work: one increment and three comparisons. */
function onFrame(): void {
  frames += 1;
  if (reading === undefined) return;
  if (frames === p50) reading.p50_ms = Date.now() - tick;
  if (frames === p99) reading.p99_ms = Date.now() - tick;
  if (frames === sockets) reading.last_ms = Date.now() - tick;
}

async function connect(index: number): Promise<void> {
  const localAddress = `127.2.${Math.floor(index / 250) % 250}.${(index % 250) + 1}`;
  const ws = new WebSocket(url!, { localAddress, perMessageDeflate: false, skipUTF8Validation: true });
  ws.on('message', onFrame);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  open.push(ws);
}

async function connectAll(): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < sockets) {
      const index = next;
      next += 1;
      await connect(index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(handshakes, sockets) }, lane));
}

async function main(): Promise<void> {
  await connectAll();
  const readings: TickReading[] = [];
  const cpuBefore = process.cpuUsage();
  // The first tick at least 200 ms away, as the load test's window starts after its connects.
  let nextTick = Math.ceil((Date.now() + 200) / heartbeatMs) * heartbeatMs;
  for (let index = 0; index < tickCount; index += 1, nextTick += heartbeatMs) {
    // Halfway between ticks, the last tick's frames are all in: start counting the next one.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextTick - heartbeatMs / 2 - Date.now())));
    if (reading !== undefined) readings.push({ ...reading, frames });
    tick = nextTick;
    frames = 0;
    reading = { tick: new Date(nextTick).toISOString(), frames: 0, p50_ms: null, p99_ms: null, last_ms: null };
  }
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, nextTick - heartbeatMs / 2 - Date.now())));
  if (reading !== undefined) readings.push({ ...reading, frames });
  const cpu = process.cpuUsage(cpuBefore);
  const received = readings.reduce((sum, r) => sum + r.frames, 0);
  const cpuMicros = cpu.user + cpu.system;
  const result = { sockets: open.length, ticks: readings, cpu_seconds: cpuMicros / 1e6, cpu_us_per_frame: received > 0 ? cpuMicros / received : null };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  for (const ws of open) ws.terminate();
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`raw-heartbeat-client: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
