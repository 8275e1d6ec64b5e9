/**
 * The server of tools/bench/cpu-handler-bench.ts (forked by it): plain `ws` on a free
 * loopback port, one count per connection as the product answers, and one message
 * that is CPU-bound on purpose. A text message "cpu" costs a fixed amount of CPU
 * (cpu-work.ts, calibrated to --work-ms on this thread) before its count is written:
 *
 *   --mode loop   on the event loop, as a handler that computes in place would;
 *   --mode pool   in a worker_threads pool (piscina, --threads), the loop awaiting it.
 *
 * Any other text is counted at once. Sends {port, steps} to its parent once listening;
 * answers {type: 'cpu'} with its own CPU seconds; exits when the parent goes.
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Piscina } from 'piscina';
import { WebSocketServer, type WebSocket } from 'ws';
import { textOf } from '../harness/clients.js';
import { burn, stepsFor } from './cpu-work.js';

const { values } = parseArgs({
  options: {
    mode: { type: 'string', default: 'loop' },
    'work-ms': { type: 'string', default: '3' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
  },
});
const mode = values.mode;
if (mode !== 'loop' && mode !== 'pool') throw new Error(`--mode must be loop or pool (got ${mode})`);
const steps = stepsFor(Number(values['work-ms']));
const threads = Number(values.threads);
const pool =
  mode === 'pool'
    ? new Piscina<{ steps: number }, number>({ filename: new URL('./cpu-work.js', import.meta.url).href, minThreads: threads, maxThreads: threads })
    : undefined;

/** The CPU-bound handler: in place on the loop, or handed to the pool and awaited. */
async function cpuBound(): Promise<number> {
  if (pool === undefined) return burn(steps);
  return pool.run({ steps });
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
wss.on('connection', (ws: WebSocket) => {
  let count = 0;
  // Replies go in arrival order: a message waits for the ones before it on its connection.
  let previous: Promise<unknown> = Promise.resolve();
  ws.on('message', (data, isBinary) => {
    if (isBinary) return;
    const heavy = textOf(data) === 'cpu';
    const work = heavy ? cpuBound() : Promise.resolve(0);
    previous = Promise.all([previous, work]).then(() => {
      count += 1;
      ws.send(`{"count":${count}}`);
    });
  });
});
wss.on('listening', () => {
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  process.send?.({ type: 'listening', port: address.port, steps });
});
process.on('message', (message: { type: string }) => {
  if (message.type !== 'cpu') return;
  const usage = process.cpuUsage();
  process.send?.({ type: 'cpu', seconds: (usage.user + usage.system) / 1e6 });
});
process.on('disconnect', () => {
  void pool?.destroy();
  process.exit(0);
});
