/**
 * What a CPU-bound handler does to everyone else on a replica, on the event loop and in
 * a worker_threads pool (`npm run bench:cpu-handler`):
 *
 *   node dist/tools/bench/cpu-handler-bench.js [--work-ms 3] [--heavy 4] [--light 20]
 *     [--think-ms 5] [--duration 10] [--repeat 2] [--threads <cores>]
 *
 * For each mode, alternately (loop, pool, loop, pool... --repeat pairs), it forks
 * tools/bench/cpu-handler-server.ts and drives it from here: --heavy clients send "cpu"
 * in a closed loop (each message costs --work-ms of CPU on the server), and --light
 * clients send an ordinary message in a closed loop pausing --think-ms after each
 * count, as the product's clients do. It reports the light clients' round trips (p50,
 * p99, max), both kinds' throughput, and the server's CPU, per run and as min-max over
 * the runs of each mode. Everything runs on loopback and stops by itself.
 */
import { fork, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import WebSocket from 'ws';

type Mode = 'loop' | 'pool';

interface Options {
  workMs: number;
  heavy: number;
  light: number;
  thinkMs: number;
  durationS: number;
  repeat: number;
  threads: number;
}

interface RunResult {
  mode: Mode;
  light: { round_trips_per_second: number; p50_ms: number; p99_ms: number; max_ms: number };
  heavy: { per_second: number };
  server_cpu_seconds: number;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      'work-ms': { type: 'string', default: '3' },
      heavy: { type: 'string', default: '4' },
      light: { type: 'string', default: '20' },
      'think-ms': { type: 'string', default: '5' },
      duration: { type: 'string', default: '10' },
      repeat: { type: 'string', default: '2' },
      threads: { type: 'string', default: String(os.availableParallelism()) },
    },
  });
  const number = (name: string, raw: string, min: number, max: number): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max} (got ${raw})`);
    return value;
  };
  return {
    workMs: number('work-ms', values['work-ms'], 0.1, 100),
    heavy: number('heavy', values.heavy, 0, 100),
    light: number('light', values.light, 1, 1000),
    thinkMs: number('think-ms', values['think-ms'], 0, 1000),
    durationS: number('duration', values.duration, 1, 120),
    repeat: number('repeat', values.repeat, 1, 20),
    threads: number('threads', values.threads, 1, 64),
  };
}

interface Server {
  child: ChildProcess;
  port: number;
  cpuSeconds(): Promise<number>;
}

async function startServer(mode: Mode, options: Options): Promise<Server> {
  const child = fork(new URL('./cpu-handler-server.js', import.meta.url), ['--mode', mode, '--work-ms', String(options.workMs), '--threads', String(options.threads)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)));
    child.on('message', (message: { type: string; port?: number }) => {
      if (message.type === 'listening' && message.port !== undefined) resolve(message.port);
    });
  });
  const cpuSeconds = (): Promise<number> =>
    new Promise((resolve) => {
      const answer = (message: { type: string; seconds?: number }): void => {
        if (message.type !== 'cpu' || message.seconds === undefined) return;
        child.off('message', answer);
        resolve(message.seconds);
      };
      child.on('message', answer);
      child.send({ type: 'cpu' });
    });
  return { child, port, cpuSeconds };
}

/** One closed-loop client: sends `text`, and the next one `thinkMs` after each count, until stopped. */
class LoopClient {
  roundTrips = 0;
  private sentAt = 0;
  private running = true;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly ws: WebSocket,
    private readonly text: string,
    private readonly thinkMs: number,
    private readonly latency: ReturnType<typeof hdr.build> | undefined,
  ) {
    ws.on('message', () => {
      this.roundTrips += 1;
      this.latency?.recordValue(Math.max(1, Math.round((performance.now() - this.sentAt) * 1000)));
      if (this.thinkMs > 0) this.timer = setTimeout(() => this.send(), this.thinkMs);
      else this.send();
    });
  }

  static async open(port: number, text: string, thinkMs: number, latency?: ReturnType<typeof hdr.build>): Promise<LoopClient> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return new LoopClient(ws, text, thinkMs, latency);
  }

  send(): void {
    if (!this.running) return;
    this.sentAt = performance.now();
    this.ws.send(this.text);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.timer);
    this.ws.terminate();
  }
}

async function runOnce(mode: Mode, options: Options): Promise<RunResult> {
  const server = await startServer(mode, options);
  try {
    const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    const heavy = await Promise.all(Array.from({ length: options.heavy }, () => LoopClient.open(server.port, 'cpu', 0)));
    const light = await Promise.all(Array.from({ length: options.light }, () => LoopClient.open(server.port, 'hello', options.thinkMs, latency)));
    const cpuBefore = await server.cpuSeconds();
    for (const client of [...heavy, ...light]) client.send();
    await new Promise((resolve) => setTimeout(resolve, options.durationS * 1000));
    const cpuAfter = await server.cpuSeconds();
    for (const client of [...heavy, ...light]) client.stop();
    const sum = (clients: LoopClient[]): number => clients.reduce((total, client) => total + client.roundTrips, 0);
    const at = (percentile: number): number => Math.min(latency.getValueAtPercentile(percentile), latency.maxValue) / 1000;
    return {
      mode,
      light: {
        round_trips_per_second: Math.round(sum(light) / options.durationS),
        p50_ms: at(50),
        p99_ms: at(99),
        max_ms: latency.maxValue / 1000,
      },
      heavy: { per_second: Math.round(sum(heavy) / options.durationS) },
      server_cpu_seconds: Math.round((cpuAfter - cpuBefore) * 100) / 100,
    };
  } finally {
    server.child.kill('SIGTERM');
  }
}

function spread(values: number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted.length === 1 ? String(sorted[0]) : `${sorted[0]}-${sorted[sorted.length - 1]}`;
}

function markdown(options: Options, runs: RunResult[]): string {
  const lines = [
    `CPU-bound handler of ${options.workMs} ms: ${options.heavy} heavy clients (closed loop), ${options.light} light clients (closed loop, ${options.thinkMs} ms think), ${options.durationS} s a run, ${options.repeat} runs a mode, pool of ${options.threads} threads`,
    '',
    '| mode | light round trip p50 | p99 | max | light round trips/s | heavy messages/s | server CPU (s) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const mode of ['loop', 'pool'] as const) {
    const of = runs.filter((run) => run.mode === mode);
    lines.push(
      `| ${mode === 'loop' ? 'on the event loop' : 'worker_threads pool (piscina)'} | ${spread(of.map((r) => r.light.p50_ms))} ms | ${spread(of.map((r) => r.light.p99_ms))} ms | ${spread(of.map((r) => r.light.max_ms))} ms | ${spread(of.map((r) => r.light.round_trips_per_second))} | ${spread(of.map((r) => r.heavy.per_second))} | ${spread(of.map((r) => r.server_cpu_seconds))} |`,
    );
  }
  return `${lines.join('\n')}\n`;
}

async function main(): Promise<void> {
  const options = readOptions();
  const runs: RunResult[] = [];
  for (let pair = 0; pair < options.repeat; pair += 1) {
    for (const mode of ['loop', 'pool'] as const) {
      const run = await runOnce(mode, options);
      process.stderr.write(`${JSON.stringify(run)}\n`);
      runs.push(run);
    }
  }
  process.stdout.write(markdown(options, runs));
}

main().catch((error: unknown) => {
  process.stderr.write(`cpu-handler-bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
