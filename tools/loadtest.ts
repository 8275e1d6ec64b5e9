/**
 * Load test with real sockets, every reply checked (`make loadtest`).
 *
 *   node dist/tools/loadtest.js [--url http://127.0.0.1:8000] [--sockets 5000]
 *     [--socketio 0.2] [--ramp 2000] [--rate 1] [--messages 0]
 *     [--duration S (default: long enough for two heartbeat ticks, at least 35 s)]
 *     [--heartbeat-ms <the stack's HEARTBEAT_INTERVAL_MS>; 0: no heartbeat to check] [--workers N]
 *     [--metrics URL,URL (default: the stack's replicas)] [--report-dir reports]
 *     [--reference: then the same scenario against tools/bench/reference-server.ts, and the ratios]
 *
 * Defaults reproduce the original demo: 5,000 sockets through Nginx, each sending
 * a message a second, held through two heartbeat ticks (63 s with the 30 s default). Worker processes (each well under
 * the 20,000 open-file limit) open the sockets from many 127.x.y.z addresses with a
 * bounded number of handshakes in flight. Counts must be 1, 2, 3... on every socket,
 * every socket must get every heartbeat of the window once, byes must carry the last
 * count. Exits 1 on any failed check. Writes reports/loadtest-<time>.{json,md}.
 *
 * --reference runs the scenario a second time, back to back, against the minimal
 * reference server (forked here, plain WebSocket only, no heartbeat) and reports
 * product/reference ratios for round trips/s and memory per connection. For a like
 * for like comparison point --url at one replica and use --socketio 0.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import type { CoordinatorMessage, ReferenceMessage, ServerSample, WorkerConfig, WorkerMessage, WorkerResult } from './bench/loadtest-protocol.js';
import { scrape, sumOf } from './harness/prometheus-text.js';

const SOCKETS_PER_WORKER = 8000;
const SOURCE_ADDRESSES_PER_WORKER = 50;

interface Options {
  url: string;
  sockets: number;
  socketIoShare: number;
  ramp: number;
  handshakes: number;
  rate: number;
  messages: number;
  durationS: number;
  heartbeatMs: number;
  workers: number;
  metricsUrls: string[];
  reportDir: string;
  reference: boolean;
}

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8000' },
      sockets: { type: 'string', default: '5000' },
      socketio: { type: 'string', default: '0.2' },
      ramp: { type: 'string', default: '2000' },
      handshakes: { type: 'string', default: '100' },
      rate: { type: 'string', default: '1' },
      messages: { type: 'string', default: '0' },
      duration: { type: 'string' },
      'heartbeat-ms': { type: 'string', default: stackSetting('HEARTBEAT_INTERVAL_MS') ?? '30000' },
      workers: { type: 'string' },
      metrics: { type: 'string' },
      'report-dir': { type: 'string', default: 'reports' },
      reference: { type: 'boolean', default: false },
    },
  });
  const number = (name: string, raw: string | undefined, min: number, max: number): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max} (got ${raw})`);
    return value;
  };
  const sockets = number('sockets', values.sockets, 1, 200_000);
  const heartbeatMs = number('heartbeat-ms', values['heartbeat-ms'], 0, 3_600_000);
  return {
    url: values.url.replace(/\/$/, ''),
    sockets,
    socketIoShare: number('socketio', values.socketio, 0, 1),
    ramp: number('ramp', values.ramp, 1, 100_000),
    handshakes: number('handshakes', values.handshakes, 1, 10_000),
    rate: number('rate', values.rate, 0, 1000),
    messages: number('messages', values.messages, 0, 1e9),
    durationS: number('duration', values.duration ?? String(defaultDurationS(heartbeatMs)), 1, 3600),
    heartbeatMs,
    workers: number('workers', values.workers ?? String(Math.ceil(sockets / SOCKETS_PER_WORKER)), 1, 64),
    metricsUrls: values.metrics?.split(',').filter(Boolean) ?? replicaMetricsFromStack(),
    reportDir: values['report-dir'],
    reference: values.reference,
  };
}

/**
 * The hold window checks the ticks that fall in it after every socket connected (200 ms
 * after) and at least a second before it ends: long enough for two ticks, so a missed
 * or duplicated tick is seen in the steady state, not just one; at least 35 s.
 */
function defaultDurationS(heartbeatMs: number): number {
  const TICKS = 2;
  return Math.max(35, Math.ceil((TICKS * heartbeatMs + 1200) / 1000) + 1);
}

/** A setting of the native stack that tools/dev-up.sh saved (RUN_DIR/stack.env), if any. */
function stackSetting(name: string): string | undefined {
  const file = path.join(process.env.RUN_DIR ?? '.run', 'stack.env');
  if (!existsSync(file)) return undefined;
  return new RegExp(`^${name}=(.*)$`, 'm').exec(readFileSync(file, 'utf8'))?.[1];
}

/** The running replicas' /metrics, from the native stack's Prometheus targets (if any). */
function replicaMetricsFromStack(): string[] {
  const file = path.join(process.env.RUN_DIR ?? '.run', 'prometheus/targets/replicas.json');
  if (!existsSync(file)) return [];
  const groups = JSON.parse(readFileSync(file, 'utf8')) as Array<{ targets: string[] }>;
  return groups.flatMap((group) => group.targets.map((target) => `http://${target}/metrics`));
}

/** Reads the servers under test: their summed memory, CPU and open connections. */
type Sampler = () => Promise<ServerSample | undefined>;

async function sampleServers(urls: string[]): Promise<ServerSample | undefined> {
  if (urls.length === 0) return undefined;
  const sample: ServerSample = { processes: urls.length, rssBytes: 0, cpuSeconds: 0, connections: 0 };
  for (const url of urls) {
    const { samples } = await scrape(url);
    sample.rssBytes += sumOf(samples, 'process_resident_memory_bytes');
    sample.cpuSeconds += sumOf(samples, 'process_cpu_seconds_total');
    sample.connections += sumOf(samples, 'wschat_connections_active');
  }
  return sample;
}

interface Latency {
  count: number;
  p50_ms: number;
  p95_ms: number;
  p99_ms: number;
  max_ms: number;
}

interface ServerFigures {
  /** Server processes measured: the stack's replicas, or 1 for the reference server. */
  replicas: number;
  rss_per_connection_kib: number;
  cpu_seconds: number;
  connections_at_hold: number;
}

interface Report {
  date: string;
  ok: boolean;
  options: Options;
  sockets: { requested: number; held: number };
  connect: { seconds: number; per_second: number; handshake: Latency };
  messages: { total: number; round_trips_per_second: number; round_trip: Latency };
  heartbeat: { ticks_checked: number; missed: number; duplicated: number; fan_out: Latency };
  errors: Record<string, number>;
  closes: Record<string, number>;
  server: ServerFigures | string;
  /** With --reference: the same scenario against tools/bench/reference-server.ts. */
  reference?: Report;
  ratios?: { round_trips_per_second: number; rss_per_connection: number | null };
}

/** Splits `total` into `parts` near-equal integers. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

class Coordinator {
  private readonly workers: ChildProcess[] = [];
  private readonly progress = new Map<number, { connected: number; messages: number; errors: number }>();
  private readonly results: WorkerResult[] = [];

  constructor(
    private readonly options: Options,
    private readonly sample: Sampler = () => sampleServers(options.metricsUrls),
  ) {}

  async run(): Promise<Report> {
    const { options } = this;
    const before = await this.sample();
    const started = Date.now();
    const socketCounts = split(options.sockets, options.workers);
    const socketIoCounts = split(Math.round(options.sockets * options.socketIoShare), options.workers);
    const connected = socketCounts.map((sockets, index) =>
      this.startWorker(index, {
        wsUrl: `${options.url.replace(/^http/, 'ws')}/ws/chat/`,
        httpUrl: options.url,
        sockets,
        socketIoSockets: socketIoCounts[index]!,
        sourceAddresses: Array.from({ length: SOURCE_ADDRESSES_PER_WORKER }, (_, k) => `127.1.${index}.${k + 1}`),
        rampPerSecond: options.ramp / options.workers,
        maxHandshakes: options.handshakes,
        messageRate: options.rate,
        messagesPerSocket: options.messages,
      }),
    );
    const ticker = setInterval(() => this.printProgress(started), 1000);
    await Promise.all(connected);
    const allConnected = Date.now();
    // Fan-out is measured in the steady state: ticks during the ramp compete with handshakes.
    for (const worker of this.workers) worker.send({ type: 'hold', since: allConnected } satisfies CoordinatorMessage);
    const messagesAtConnected = this.messagesSoFar();
    const connectSeconds = (allConnected - started) / 1000;
    const held = await this.sample();
    await new Promise((resolve) => setTimeout(resolve, options.durationS * 1000));
    const stopAt = Date.now();
    const messagesAtStop = this.messagesSoFar();
    clearInterval(ticker);
    // Ticks every held socket must have: after all were connected, early enough to have been delivered.
    const ticks: string[] = [];
    // --heartbeat-ms 0: a server without heartbeats (tools/bench/reference-server.ts); nothing to check.
    for (let t = Math.ceil((allConnected + 200) / options.heartbeatMs) * options.heartbeatMs; options.heartbeatMs > 0 && t <= stopAt - 1000; t += options.heartbeatMs) {
      ticks.push(new Date(t).toISOString());
    }
    await Promise.all(this.workers.map((worker) => this.finish(worker, ticks)));
    const after = await this.sample();
    process.stderr.write('\n');
    const holdSeconds = (stopAt - allConnected) / 1000;
    const holdRate = Math.round((messagesAtStop - messagesAtConnected) / holdSeconds);
    return this.report({ started, connectSeconds, holdSeconds, holdRate, ticks, before, held, after });
  }

  /** Messages answered so far, from the workers' last progress reports (at most 1 s old). */
  private messagesSoFar(): number {
    return [...this.progress.values()].reduce((sum, p) => sum + p.messages, 0);
  }

  private startWorker(index: number, config: WorkerConfig): Promise<void> {
    const worker = fork(new URL('./bench/loadtest-worker.js', import.meta.url), [], { stdio: 'inherit' });
    this.workers.push(worker);
    return new Promise((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'progress') this.progress.set(index, message);
        else if (message.type === 'connected') resolve();
        else this.results.push(message);
      });
      worker.on('exit', (code) => {
        if (code !== 0) reject(new Error(`worker ${index} exited with ${code}`));
      });
      worker.send({ type: 'start', config });
    });
  }

  private finish(worker: ChildProcess, ticks: string[]): Promise<void> {
    return new Promise((resolve) => {
      worker.once('exit', () => resolve());
      worker.send({ type: 'stop', window: { ticks } });
    });
  }

  private printProgress(started: number): void {
    const totals = [...this.progress.values()].reduce(
      (sum, p) => ({ connected: sum.connected + p.connected, messages: sum.messages + p.messages, errors: sum.errors + p.errors }),
      { connected: 0, messages: 0, errors: 0 },
    );
    const line = `${Math.round((Date.now() - started) / 1000)}s  sockets ${totals.connected}/${this.options.sockets}  messages ${totals.messages}  errors ${totals.errors}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}   ` : `${line}\n`);
  }

  private report(run: {
    started: number;
    connectSeconds: number;
    holdSeconds: number;
    /** Round trips per second while every socket was held (the steady state). */
    holdRate: number;
    ticks: string[];
    before: ServerSample | undefined;
    held: ServerSample | undefined;
    after: ServerSample | undefined;
  }): Report {
    const merged = (field: 'handshake' | 'roundTrip' | 'fanOut'): ReturnType<typeof hdr.build> => {
      const total = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
      for (const result of this.results) total.add(hdr.decodeFromCompressedBase64(result[field]));
      return total;
    };
    const summary = (histogram: ReturnType<typeof hdr.build>): Latency => ({
      count: histogram.totalCount,
      p50_ms: histogram.getValueAtPercentile(50) / 1000,
      p95_ms: histogram.getValueAtPercentile(95) / 1000,
      p99_ms: histogram.getValueAtPercentile(99) / 1000,
      max_ms: histogram.maxValue / 1000,
    });
    const sum = (pick: (result: WorkerResult) => number): number => this.results.reduce((total, result) => total + pick(result), 0);
    const add = (pick: (result: WorkerResult) => Record<string, number>): Record<string, number> => {
      const totals: Record<string, number> = {};
      for (const result of this.results) for (const [key, value] of Object.entries(pick(result))) totals[key] = (totals[key] ?? 0) + value;
      return totals;
    };
    const roundTrip = summary(merged('roundTrip'));
    const heldSockets = sum((r) => r.held);
    const errors = add((r) => r.errors);
    const heartbeats = { ticks_checked: run.ticks.length, missed: sum((r) => r.heartbeatsMissed), duplicated: sum((r) => r.heartbeatsDuplicated) };
    const server: ServerFigures | string =
      run.before && run.held && run.after
        ? {
            replicas: run.held.processes,
            rss_per_connection_kib: Math.round(((run.held.rssBytes - run.before.rssBytes) / Math.max(1, run.held.connections)) / 102.4) / 10,
            cpu_seconds: Math.round((run.after.cpuSeconds - run.before.cpuSeconds) * 10) / 10,
            connections_at_hold: run.held.connections,
          }
        : 'no server metrics (pass --metrics)';
    const report = {
      date: new Date(run.started).toISOString(),
      ok: false,
      options: this.options,
      sockets: { requested: this.options.sockets, held: heldSockets },
      connect: { seconds: run.connectSeconds, per_second: Math.round(this.options.sockets / run.connectSeconds), handshake: summary(merged('handshake')) },
      messages: { total: sum((r) => r.messages), round_trips_per_second: run.holdRate, round_trip: roundTrip },
      heartbeat: { ...heartbeats, fan_out: summary(merged('fanOut')) },
      errors,
      closes: add((r) => r.closes),
      server,
    };
    const ok =
      heldSockets === this.options.sockets &&
      Object.keys(errors).length === 0 &&
      heartbeats.missed === 0 &&
      heartbeats.duplicated === 0 &&
      (run.ticks.length > 0 || this.options.heartbeatMs === 0 || this.options.durationS * 1000 < this.options.heartbeatMs);
    return { ...report, ok };
  }
}

function markdown(r: Report, title = `Load test ${r.date}: ${r.ok ? 'PASS' : 'FAIL'}`): string {
  const ms = (h: Latency): string => `p50 ${h.p50_ms} / p95 ${h.p95_ms} / p99 ${h.p99_ms} / max ${h.max_ms} ms`;
  const lines = [
    `# ${title}`,
    '',
    `| | |`,
    `|---|---|`,
    `| sockets held / requested | ${r.sockets.held} / ${r.sockets.requested} |`,
    `| connect | ${r.connect.seconds} s, ${r.connect.per_second}/s; handshake ${ms(r.connect.handshake)} |`,
    `| messages | ${r.messages.total}, ${r.messages.round_trips_per_second} round trips/s while held; ${ms(r.messages.round_trip)} |`,
    `| heartbeat | ${r.heartbeat.ticks_checked} ticks checked, ${r.heartbeat.missed} missed, ${r.heartbeat.duplicated} duplicated; fan-out ${ms(r.heartbeat.fan_out)} |`,
    `| errors | ${JSON.stringify(r.errors)} |`,
    `| server | ${JSON.stringify(r.server)} |`,
    '',
  ];
  if (r.reference !== undefined && r.ratios !== undefined) {
    lines.push(
      markdown(r.reference, `Same scenario, reference server (plain only, no heartbeat): ${r.reference.ok ? 'PASS' : 'FAIL'}`),
      `Product/reference: round trips/s ${r.ratios.round_trips_per_second}, memory per connection ${r.ratios.rss_per_connection ?? 'n/a'}`,
      '',
    );
  }
  return lines.join('\n');
}

/** tools/bench/reference-server.ts, forked on a free port with IPC, so it can report its memory and CPU. */
async function startReference(): Promise<{ url: string; sample: Sampler; stop: () => void }> {
  const child = fork(new URL('./bench/reference-server.js', import.meta.url), ['0'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const next = <T extends ReferenceMessage['type']>(type: T): Promise<Extract<ReferenceMessage, { type: T }>> =>
    new Promise((resolve, reject) => {
      const onMessage = (message: ReferenceMessage): void => {
        if (message.type !== type) return;
        child.off('message', onMessage).off('exit', onExit);
        resolve(message as Extract<ReferenceMessage, { type: T }>);
      };
      const onExit = (code: number | null): void => reject(new Error(`the reference server exited (${code})`));
      child.on('message', onMessage).once('exit', onExit);
    });
  const { port } = await next('listening');
  const sample = async (): Promise<ServerSample> => {
    const answer = next('sample');
    child.send({ type: 'sample' });
    return answer;
  };
  return { url: `http://127.0.0.1:${port}`, sample, stop: () => child.kill('SIGTERM') };
}

/** The same scenario against the reference server, and the product/reference ratios. */
async function withReference(product: Report): Promise<Report> {
  const reference = await startReference();
  try {
    const options = { ...product.options, url: reference.url, socketIoShare: 0, heartbeatMs: 0, metricsUrls: [], reference: false };
    const baseline = await new Coordinator(options, reference.sample).run();
    const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
    const rss = (report: Report): number | undefined => (typeof report.server === 'string' ? undefined : report.server.rss_per_connection_kib);
    const [productRss, referenceRss] = [rss(product), rss(baseline)];
    return {
      ...product,
      ok: product.ok && baseline.ok,
      reference: baseline,
      ratios: {
        round_trips_per_second: ratio(product.messages.round_trips_per_second, baseline.messages.round_trips_per_second),
        rss_per_connection: productRss === undefined || referenceRss === undefined ? null : ratio(productRss, referenceRss),
      },
    };
  } finally {
    reference.stop();
  }
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const product = await new Coordinator(options).run();
  const report = options.reference ? await withReference(product) : product;
  mkdirSync(options.reportDir, { recursive: true });
  const stem = path.join(options.reportDir, `loadtest-${report.date.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${stem}.md`, markdown(report));
  process.stdout.write(`${markdown(report)}\nreport: ${stem}.json\n`);
  process.exit(report.ok ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`loadtest: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
