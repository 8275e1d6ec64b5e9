/**
 * CPU per message of one server under a closed loop, measured from outside: the
 * server's own CPU time (/proc/<pid>/stat, user + system) over a window, divided by
 * the round trips completed in it. Wall-clock rates on a shared 2-core box swing by a
 * quarter from run to run; CPU per message moves by a few per cent.
 *
 *   npm run bench:cpu -- [--sockets 1000] [--seconds 8] [--runs 3] [--servers product,ceiling]
 *                        [--rate 0] [--resume] [--base OTHER/dist/services/gateway/main.js] [--node-args="--cpu-prof --cpu-prof-dir=reports/prof"]
 *
 * Starts its own redis-server (appendfsync everysec, as shipped), then for each run and
 * each server, alternated: the server, a client process of `--sockets` raw `ws`
 * sockets each sending its next message when its count arrives (counts checked: 1, 2,
 * 3... per socket), a warm-up second, the window, then both stopped. `--rate R` makes
 * it an open loop instead: R messages a second in all, round robin over the sockets,
 * so both servers get the same batches (the closed loop's rate, and so its batching,
 * follows whatever else the box is running).
 * - product: one replica (dist/services/gateway/main.js), heartbeat off;
 *   `--resume` makes every socket resume a session with `last` (the leased scripts);
 * - ceiling: raw `ws` plus one autopipelined ioredis INCR per message to the same
 *   Redis, the count sent once Redis answered (the product's unavoidable cost).
 * Prints one line per run and a summary of µs per message (min-median-max).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import WebSocket, { WebSocketServer } from 'ws';
import { textOf } from '../harness/clients.js';
import { freePort, REPLICA_MAIN, RedisServer, sleep, withTimeout } from '../harness/processes.js';
import { processCpuSeconds } from '../loadtest/proc-cpu.js';

const SELF = fileURLToPath(import.meta.url);

// ---- the ceiling server (a child process of this script) ----

function serveCeiling(redisUrl: string): void {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true });
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/ws/chat/', perMessageDeflate: false, clientTracking: false });
  server.on('connection', (ws) => {
    const key = `ceiling:${randomUUID()}`;
    ws.on('message', () => {
      void redis.incr(key).then((count) => ws.send(`{"count":${count}}`));
    });
    ws.on('error', () => ws.terminate());
  });
  server.on('listening', () => process.send?.({ port: (server.address() as { port: number }).port }));
  // Exiting (rather than dying of the signal) lets --cpu-prof write its profile.
  process.on('SIGTERM', () => process.exit(0));
}

// ---- the closed-loop client (a child process of this script) ----

interface ClientCommand {
  type: 'count';
}

/** Client ticks of an open loop: every 10 ms, the messages of that slice of a second. */
const TICK_MS = 10;

function runClient(url: string, sockets: number, resume: boolean, rate: number): void {
  let received = 0;
  let errors = 0;
  let open = 0;
  const all: WebSocket[] = [];
  const closedLoop = rate === 0;
  const connect = (): void => {
    const session = randomUUID();
    const query = resume ? `?session=${session}&last=0` : '';
    const ws = new WebSocket(`${url}${query}`, { perMessageDeflate: false });
    let expected = 1;
    all.push(ws);
    ws.on('open', () => {
      open += 1;
      if (open === sockets) process.send?.({ type: 'ready' });
      if (closedLoop) ws.send('x');
    });
    ws.on('message', (data) => {
      const text = textOf(data);
      if (!text.startsWith('{"count":')) return;
      if (Number(text.slice(9, -1)) !== expected) errors += 1;
      expected += 1;
      received += 1;
      if (closedLoop) ws.send('x');
    });
    ws.on('error', () => (errors += 1));
  };
  for (let index = 0; index < sockets; index += 1) connect();
  if (!closedLoop) {
    // Open loop: the same batches reach either server, so their CPU per message compares like for like.
    let next = 0;
    setInterval(() => {
      for (let sent = 0; sent < (rate * TICK_MS) / 1000; sent += 1) {
        const ws = all[next];
        next = (next + 1) % all.length;
        if (ws?.readyState === WebSocket.OPEN) ws.send('x');
      }
    }, TICK_MS);
  }
  process.on('message', (command: ClientCommand) => {
    if (command.type === 'count') process.send?.({ type: 'count', received, errors });
  });
}

// ---- the coordinator ----

interface Server {
  /** product, base (--base) or ceiling. */
  name: string;
  pid: number;
  url: string;
  child: ChildProcess;
}

async function startProduct(redisUrl: string, nodeArgs: string[], main: string): Promise<Server> {
  const port = await freePort();
  const child = spawn(process.execPath, [...nodeArgs, main], {
    env: { PATH: process.env.PATH ?? '', PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, HEARTBEAT_INTERVAL_MS: '3600000', LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await withTimeout(
    (async () => {
      for (;;) {
        try {
          if ((await fetch(`${url}/readyz`)).status === 200) return;
        } catch {
          // not listening yet
        }
        await sleep(50);
      }
    })(),
    10_000,
    'replica ready',
  );
  return { name: 'product', pid: child.pid ?? -1, url: `ws://127.0.0.1:${port}/ws/chat/`, child };
}

async function startCeiling(redisUrl: string, nodeArgs: string[]): Promise<Server> {
  const child = spawn(process.execPath, [...nodeArgs, SELF, '--serve-ceiling', redisUrl], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await withTimeout(
    new Promise<number>((resolve) => child.once('message', (message: { port: number }) => resolve(message.port))),
    10_000,
    'ceiling listening',
  );
  return { name: 'ceiling', pid: child.pid ?? -1, url: `ws://127.0.0.1:${port}/ws/chat/`, child };
}

interface ClientCount {
  received: number;
  errors: number;
}

function ask(client: ChildProcess): Promise<ClientCount> {
  return new Promise((resolve) => {
    client.once('message', (message: ClientCount) => resolve(message));
    client.send({ type: 'count' } satisfies ClientCommand);
  });
}

interface RunResult {
  name: string;
  messages: number;
  roundTripsPerSecond: number;
  microsPerMessage: number;
  errors: number;
}

async function measure(server: Server, sockets: number, seconds: number, resume: boolean, rate: number): Promise<RunResult> {
  const client = fork(SELF, ['--client', server.url, String(sockets), resume ? 'resume' : 'plain', String(rate)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    await withTimeout(new Promise((resolve) => client.once('message', resolve)), 30_000, 'client sockets open');
    await sleep(1000);
    const startCpu = processCpuSeconds(server.pid);
    const start = await ask(client);
    const startTime = performance.now();
    await sleep(seconds * 1000);
    const endCpu = processCpuSeconds(server.pid);
    const end = await ask(client);
    const elapsed = (performance.now() - startTime) / 1000;
    const messages = end.received - start.received;
    return {
      name: server.name,
      messages,
      roundTripsPerSecond: Math.round(messages / elapsed),
      microsPerMessage: Math.round(((endCpu - startCpu) / messages) * 1e7) / 10,
      errors: end.errors,
    };
  } finally {
    client.kill('SIGKILL');
  }
}

async function stop(server: Server): Promise<void> {
  const exited = new Promise((resolve) => server.child.once('exit', resolve));
  server.child.kill('SIGTERM');
  await withTimeout(exited, 15_000, `${server.name} exit`).catch(() => server.child.kill('SIGKILL'));
}

async function coordinate(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      sockets: { type: 'string', default: '1000' },
      seconds: { type: 'string', default: '8' },
      runs: { type: 'string', default: '3' },
      servers: { type: 'string', default: 'product,ceiling' },
      resume: { type: 'boolean', default: false },
      rate: { type: 'string', default: '0' },
      'node-args': { type: 'string', default: '' },
      /** Another build's replica (its dist/services/gateway/main.js), as server "base": before and after in one run. */
      base: { type: 'string' },
    },
  });
  const nodeArgs = values['node-args'].split(' ').filter((arg) => arg !== '');
  const names = values.servers.split(',');
  const redis = await RedisServer.start({ appendfsync: 'everysec' });
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < Number(values.runs); run += 1) {
      for (const name of names) {
        const server =
          name === 'ceiling'
            ? await startCeiling(redis.url, nodeArgs)
            : await startProduct(redis.url, nodeArgs, name === 'base' ? (values.base ?? REPLICA_MAIN) : REPLICA_MAIN);
        server.name = name;
        try {
          const result = await measure(server, Number(values.sockets), Number(values.seconds), values.resume, Number(values.rate));
          results.push(result);
          process.stdout.write(`${JSON.stringify({ run, ...result })}\n`);
        } finally {
          await stop(server);
        }
      }
    }
  } finally {
    await redis.destroy();
  }
  for (const name of names) {
    const own = results.filter((result) => result.name === name);
    const micros = own.map((result) => result.microsPerMessage).sort((a, b) => a - b);
    const rates = own.map((result) => result.roundTripsPerSecond).sort((a, b) => a - b);
    const median = (sorted: number[]): number => sorted[Math.floor(sorted.length / 2)] ?? 0;
    process.stdout.write(`${name}: ${micros[0]}-${median(micros)}-${micros.at(-1)} µs CPU/message; ${rates[0]}-${median(rates)}-${rates.at(-1)} round trips/s\n`);
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === '--serve-ceiling') serveCeiling(rest[0] ?? '');
else if (mode === '--client') runClient(rest[0] ?? '', Number(rest[1]), rest[2] === 'resume', Number(rest[3]));
else await coordinate(process.argv.slice(2));
