/**
 * Load test with real sockets, every reply checked (`make loadtest`).
 *
 *   node dist/tools/loadtest.js [--url http://127.0.0.1:8000] [--sockets 5000]
 *     [--socketio 0.2 (0 with --reference)] [--ramp 2000] [--rate 1] [--messages 0]
 *     [--duration S (default: long enough for two heartbeat ticks, at least 35 s)]
 *     [--heartbeat-ms <the stack's HEARTBEAT_INTERVAL_MS>; 0: no heartbeat to check]
 *     [--workers N (default: from the socket count and the cores)]
 *     [--metrics URL,URL (default: the stack's replicas)] [--redis URL (default: the stack's)]
 *     [--report-dir reports] [--resume: every socket names its own session and resumes from last=0,
 *      so the product counts on the leased (exactly-once) path the client library takes]
 *     [--reference [--ceiling fair|bare] [--repeat N]: the same scenario against the ceiling too]
 *     [--reference --behind-nginx: the ceiling as a fleet on the idle colour's ports behind the stack's own Nginx]
 *     [--probe MS: one more plain socket, in a process of its own, a closed loop pausing MS after each count;
 *      its round trips are reported apart, those in flight during a tick and those between ticks]
 *
 * Defaults: 5,000 sockets through Nginx, each sending
 * a message a second, held through two heartbeat ticks (63 s with the 30 s default). Worker processes (each well under
 * the 20,000 open-file limit) open the sockets from many 127.x.y.z addresses with a
 * bounded number of handshakes in flight. Counts must be 1, 2, 3... on every socket,
 * every socket must get every heartbeat of the window once, byes must carry the last
 * count. Exits 1 on any failed check. Writes reports/loadtest-<time>.{json,md}.
 * Besides the servers' figures (from /metrics: CPU and memory, the replicas' own
 * heartbeat fan-out from wschat_heartbeat_fanout_seconds, and their event-loop delay over
 * the hold window from nodejs_eventloop_lag_*) it reports the generator's
 * own CPU per frame and per round trip, so a run shows whether the generator was the limit.
 *
 * --reference runs the scenario against tools/loadtest/reference-server.ts as well,
 * forked here: product, ceiling, product, ceiling... (--repeat pairs), and reports
 * product/ceiling ratios with their spread. The fair ceiling (default) pays the
 * product's two unavoidable costs, one INCR per message in the same Redis and the
 * heartbeat on the same ticks (framed once); --ceiling bare pays neither. For a like
 * for like comparison point --url and --metrics at one replica.
 *
 * --reference --behind-nginx compares through the running stack's Nginx instead: one
 * fair ceiling per replica on the idle colour's ports, the live colour flipped between
 * runs (tools/loadtest/nginx-comparison.ts says why), plain sockets on both sides.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as hdr from 'hdr-histogram-js';
import { Redis } from 'ioredis';
import type { CoordinatorMessage, EventLoopLag, FanOutHistogram, RoundTripSample, ServerSample, WorkerConfig, WorkerMessage, WorkerResult } from './loadtest/protocol.js';
import { compare, comparisonMarkdown, type ComparisonReport } from './loadtest/compare.js';
import { microsPer, nginxFigures, runMarkdown, serverFigures, type LoadTestOptions, type Latency, type ProbeFigures, type Report, type Tail } from './loadtest/report.js';
import { behindNginx, type RunTarget } from './loadtest/nginx-comparison.js';
import { childrenCpu, type ProcessesCpu } from './loadtest/proc-cpu.js';
import { startReference } from './loadtest/reference-process.js';
import { stackRunDir, stackSettings } from './loadtest/stack-view.js';
import { Teardown, teardownOnSignals } from './loadtest/teardown.js';
import { scrape, sumOf, type Sample } from './harness/prometheus-text.js';

/**
 * Sockets per worker: under the 20,000 open files a process may hold, with room for the
 * worker's own, and no fewer: one worker reads a tick about as fast as a minimal raw
 * client and two do not (docs/benchmarks.md, "The load generator reading a 15,000-socket tick"): the
 * server under test needs a core of its own on 2 cores, and a second reader only
 * contends with it.
 */
const SOCKETS_PER_WORKER = 16_000;
const SOURCE_ADDRESSES_PER_WORKER = 50;

type Options = LoadTestOptions;

/** As few workers as the open-file limit allows. */
function defaultWorkers(sockets: number): number {
  return Math.ceil(sockets / SOCKETS_PER_WORKER);
}

function readOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:8000' },
      sockets: { type: 'string', default: '5000' },
      socketio: { type: 'string' },
      ramp: { type: 'string', default: '2000' },
      handshakes: { type: 'string', default: '100' },
      rate: { type: 'string', default: '1' },
      messages: { type: 'string', default: '0' },
      duration: { type: 'string' },
      'heartbeat-ms': { type: 'string', default: stackSetting('HEARTBEAT_INTERVAL_MS') ?? '30000' },
      workers: { type: 'string' },
      metrics: { type: 'string' },
      redis: { type: 'string' },
      'report-dir': { type: 'string', default: 'reports' },
      reference: { type: 'boolean', default: false },
      ceiling: { type: 'string', default: 'fair' },
      repeat: { type: 'string', default: '1' },
      resume: { type: 'boolean', default: false },
      'behind-nginx': { type: 'boolean', default: false },
      probe: { type: 'string' },
    },
  });
  const number = (name: string, raw: string | undefined, min: number, max: number): number => {
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${name} must be a number from ${min} to ${max} (got ${raw})`);
    return value;
  };
  const sockets = number('sockets', values.sockets, 1, 200_000);
  const heartbeatMs = number('heartbeat-ms', values['heartbeat-ms'], 0, 3_600_000);
  if (values.ceiling !== 'fair' && values.ceiling !== 'bare') throw new Error(`--ceiling must be fair or bare (got ${values.ceiling})`);
  const stackRedisPort = stackSetting('REDIS_PORT');
  const redisUrl = values.redis ?? (stackRedisPort === undefined ? undefined : `redis://127.0.0.1:${stackRedisPort}`);
  if (values['behind-nginx'] && !values.reference) throw new Error('--behind-nginx goes with --reference');
  if (values.reference && values.ceiling === 'fair' && redisUrl === undefined) {
    throw new Error("--reference's fair ceiling increments in the product's Redis: pass --redis URL (or --ceiling bare)");
  }
  return {
    url: values.url.replace(/\/$/, ''),
    sockets,
    // The ceiling is plain only: a comparison defaults to plain sockets on the product too.
    socketIoShare: number('socketio', values.socketio ?? (values.reference ? '0' : '0.2'), 0, 1),
    ramp: number('ramp', values.ramp, 1, 100_000),
    handshakes: number('handshakes', values.handshakes, 1, 10_000),
    rate: number('rate', values.rate, 0, 1000),
    messages: number('messages', values.messages, 0, 1e9),
    durationS: number('duration', values.duration ?? String(defaultDurationS(heartbeatMs)), 1, 3600),
    heartbeatMs,
    workers: number('workers', values.workers ?? String(defaultWorkers(sockets)), 1, 64),
    metricsUrls: values.metrics?.split(',').filter(Boolean) ?? replicaMetricsFromStack(),
    reportDir: values['report-dir'],
    reference: values.reference,
    ceiling: values.ceiling,
    redisUrl,
    repeat: number('repeat', values.repeat, 1, 100),
    resume: values.resume,
    behindNginx: values['behind-nginx'],
    probeMs: values.probe === undefined ? undefined : number('probe', values.probe, 0, 60_000),
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
  return stackSettings()?.get(name);
}

/** The running replicas' /metrics, from the native stack's Prometheus targets (if any). */
function replicaMetricsFromStack(): string[] {
  const file = path.join(stackRunDir(), 'prometheus/targets/replicas.json');
  if (!existsSync(file)) return [];
  const groups = JSON.parse(readFileSync(file, 'utf8')) as Array<{ targets: string[] }>;
  return groups.flatMap((group) => group.targets.map((target) => `http://${target}/metrics`));
}

/** Reads the servers under test: their summed memory, CPU, open connections and own fan-out. */
type Sampler = () => Promise<ServerSample | undefined>;

const FAN_OUT_METRIC = 'wschat_heartbeat_fanout_seconds';

/** The replicas' wschat_heartbeat_fanout_seconds, summed over the scrapes (each replica's tick is one observation). */
function addFanOut(total: FanOutHistogram, samples: Sample[]): void {
  total.count += sumOf(samples, `${FAN_OUT_METRIC}_count`);
  total.sum += sumOf(samples, `${FAN_OUT_METRIC}_sum`);
  for (const sample of samples) {
    if (sample.name !== `${FAN_OUT_METRIC}_bucket` || sample.labels.le === undefined) continue;
    const le = sample.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(sample.labels.le);
    const bucket = total.buckets.find((b) => b.le === le);
    if (bucket === undefined) total.buckets.push({ le, count: sample.value });
    else bucket.count += sample.value;
  }
}

/**
 * The worst replica's event-loop delay: prom-client's nodejs_eventloop_lag_* restart on
 * every scrape, so a read at stop covers the hold window from the read at hold (unless
 * something else scraped the replicas meanwhile: the dev stack's Prometheus does).
 */
function worstLag(total: EventLoopLag | undefined, samples: Sample[]): EventLoopLag | undefined {
  const read = (name: string): number | undefined => samples.find((sample) => sample.name === `nodejs_eventloop_lag_${name}_seconds`)?.value;
  const [p50, p99, max] = [read('p50'), read('p99'), read('max')];
  if (p50 === undefined || p99 === undefined || max === undefined) return total;
  if (total === undefined) return { p50, p99, max };
  return { p50: Math.max(total.p50, p50), p99: Math.max(total.p99, p99), max: Math.max(total.max, max) };
}

async function sampleServers(urls: string[]): Promise<ServerSample | undefined> {
  if (urls.length === 0) return undefined;
  const fanOut: FanOutHistogram = { count: 0, sum: 0, buckets: [] };
  const sample: ServerSample = { processes: urls.length, rssBytes: 0, cpuSeconds: 0, connections: 0, fanOut };
  let lag: EventLoopLag | undefined;
  for (const url of urls) {
    const { samples } = await scrape(url);
    sample.rssBytes += sumOf(samples, 'process_resident_memory_bytes');
    sample.cpuSeconds += sumOf(samples, 'process_cpu_seconds_total');
    sample.connections += sumOf(samples, 'wschat_connections_active');
    addFanOut(fanOut, samples);
    lag = worstLag(lag, samples);
  }
  return lag === undefined ? sample : { ...sample, eventLoopLag: lag };
}

/** The probe's source address: apart from the workers' 127.1.<worker>.<k>. */
const PROBE_SOURCE_ADDRESS = '127.1.255.1';

type Histogram = ReturnType<typeof hdr.build>;

function histogram(): Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

/** A percentile is its bucket's highest value, which can pass the largest value recorded: clamped to it. */
function tailOf(h: Histogram): Tail {
  const at = (percentile: number): number => Math.min(h.getValueAtPercentile(percentile), h.maxValue) / 1000;
  return { count: h.totalCount, p50_ms: at(50), p99_ms: at(99), p999_ms: at(99.9), max_ms: h.maxValue / 1000 };
}

/**
 * Splits the probe's round trips: one was in flight during a tick when it was sent
 * before the tick's last socket read it and answered after the tick's instant.
 * `tickEnds` maps each tick seen (its ts) to the time its last socket read it (ms after it).
 */
function probeFigures(probe: WorkerResult, thinkMs: number, tickEnds: Map<string, number>, holdSeconds: number): ProbeFigures {
  const windows = [...tickEnds].map(([ts, lastMs]) => ({ from: Date.parse(ts), to: Date.parse(ts) + lastMs }));
  const during = histogram();
  const between = histogram();
  const samples: RoundTripSample[] = probe.roundTrips ?? [];
  for (const [sentAt, micros] of samples) {
    const answeredAt = sentAt + micros / 1000;
    const inTick = windows.some(({ from, to }) => sentAt <= to && answeredAt >= from);
    (inTick ? during : between).recordValue(micros);
  }
  return {
    think_ms: thinkMs,
    held: probe.held === 1,
    ticks: windows.length,
    round_trips_per_second: Math.round(samples.length / holdSeconds),
    during_ticks: tailOf(during),
    between_ticks: tailOf(between),
  };
}

/** Redis's own CPU seconds (user + system, INFO cpu), or undefined without a Redis to ask. */
async function redisCpuSeconds(redis: Redis | undefined): Promise<number | undefined> {
  if (redis === undefined) return undefined;
  const info = await redis.info('cpu');
  const field = (name: string): number => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? Number.NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Splits `total` into `parts` near-equal integers. */
function split(total: number, parts: number): number[] {
  return Array.from({ length: parts }, (_, index) => Math.floor(total / parts) + (index < total % parts ? 1 : 0));
}

interface Samples {
  before: ServerSample | undefined;
  held: ServerSample | undefined;
  stopped: ServerSample | undefined;
  redisHeld: number | undefined;
  redisStopped: number | undefined;
  nginxHeld: ProcessesCpu | undefined;
  nginxStopped: ProcessesCpu | undefined;
}


class Coordinator {
  private readonly workers: ChildProcess[] = [];
  private readonly progress = new Map<number, { connected: number; messages: number; errors: number }>();
  private readonly results: WorkerResult[] = [];
  /** The latency probe's result (--probe). */
  private probeResult: WorkerResult | undefined;

  constructor(
    private readonly options: Options,
    private readonly target: Report['target'] = 'product',
    private readonly sample: Sampler = () => sampleServers(options.metricsUrls),
    /** Nginx's master: its workers' CPU is read over the hold window. */
    private readonly nginxPid: number | undefined = undefined,
  ) {}

  async run(): Promise<Report> {
    const { options } = this;
    const redis = options.redisUrl === undefined ? undefined : new Redis(options.redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
    try {
      return await this.runWith(redis);
    } finally {
      redis?.disconnect();
      // Only a failed run leaves workers running (a finished one waited for their exit).
      for (const worker of this.workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGKILL');
    }
  }

  private nginxCpu(): ProcessesCpu | undefined {
    return this.nginxPid === undefined ? undefined : childrenCpu(this.nginxPid);
  }

  private async runWith(redis: Redis | undefined): Promise<Report> {
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
        resume: options.resume,
      }),
    );
    const ticker = setInterval(() => this.printProgress(started), 1000);
    try {
      // The probe connects after the held sockets: its socket is the last of the registry,
      // the last one a tick's fan-out writes to.
      if (options.probeMs !== undefined) connected.push(Promise.all(connected).then(() => this.startProbe(options.probeMs!)));
      return await this.hold({ started, before }, connected, redis);
    } finally {
      clearInterval(ticker);
    }
  }

  private async hold(start: { started: number; before: ServerSample | undefined }, connected: Array<Promise<void>>, redis: Redis | undefined): Promise<Report> {
    const { options } = this;
    const { started, before } = start;
    await Promise.all(connected);
    const allConnected = Date.now();
    // Fan-out is measured in the steady state: ticks during the ramp compete with handshakes.
    for (const worker of this.workers) worker.send({ type: 'hold', since: allConnected } satisfies CoordinatorMessage);
    const connectSeconds = (allConnected - started) / 1000;
    const held = await this.sample();
    const redisHeld = await redisCpuSeconds(redis);
    const nginxHeld = this.nginxCpu();
    await new Promise((resolve) => setTimeout(resolve, options.durationS * 1000));
    const stopped = await this.sample();
    const redisStopped = await redisCpuSeconds(redis);
    const nginxStopped = this.nginxCpu();
    const stopAt = Date.now();
    // Ticks every held socket must have: after all were connected, early enough to have been delivered.
    const ticks: string[] = [];
    // --heartbeat-ms 0: a server without heartbeats (the bare ceiling); nothing to check.
    for (let t = Math.ceil((allConnected + 200) / options.heartbeatMs) * options.heartbeatMs; options.heartbeatMs > 0 && t <= stopAt - 1000; t += options.heartbeatMs) {
      ticks.push(new Date(t).toISOString());
    }
    await Promise.all(this.workers.map((worker) => this.finish(worker, ticks)));
    process.stderr.write('\n');
    const holdSeconds = (stopAt - allConnected) / 1000;
    return this.report({ started, connectSeconds, holdSeconds, ticks, samples: { before, held, stopped, redisHeld, redisStopped, nginxHeld, nginxStopped } });
  }

  /** One more worker with one plain socket: a closed loop with a think time whose every round trip is kept. */
  private startProbe(thinkMs: number): Promise<void> {
    const { options } = this;
    return this.startWorker(-1, {
      wsUrl: `${options.url.replace(/^http/, 'ws')}/ws/chat/`,
      httpUrl: options.url,
      sockets: 1,
      socketIoSockets: 0,
      sourceAddresses: [PROBE_SOURCE_ADDRESS],
      rampPerSecond: 1000,
      maxHandshakes: 1,
      messageRate: 0,
      messagesPerSocket: 0,
      resume: false,
      thinkMs,
      recordRoundTrips: true,
    });
  }

  /** `index` -1 is the probe: its progress and result are kept apart from the held sockets'. */
  private startWorker(index: number, config: WorkerConfig): Promise<void> {
    const worker = fork(new URL('./loadtest/worker.js', import.meta.url), [], { stdio: 'inherit' });
    this.workers.push(worker);
    return new Promise((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'progress') {
          if (index >= 0) this.progress.set(index, message);
        } else if (message.type === 'connected') resolve();
        else if (index < 0) this.probeResult = message;
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
    const line = `${this.target} ${Math.round((Date.now() - started) / 1000)}s  sockets ${totals.connected}/${this.options.sockets}  messages ${totals.messages}  errors ${totals.errors}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}   ` : `${line}\n`);
  }

  private probe(holdSeconds: number): ProbeFigures | null {
    const { probeResult, options } = this;
    if (probeResult === undefined || options.probeMs === undefined) return null;
    return probeFigures(probeResult, options.probeMs, tickEnds([...this.results, probeResult]), holdSeconds);
  }

  private report(run: { started: number; connectSeconds: number; holdSeconds: number; ticks: string[]; samples: Samples }): Report {
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
    const window = { roundTrips: sum((r) => r.window.roundTrips), frames: sum((r) => r.window.frames) };
    const generatorCpu = sum((r) => r.window.cpuSeconds);
    const heldSockets = sum((r) => r.held);
    const errors = add((r) => r.errors);
    const heartbeats = { ticks_checked: run.ticks.length, missed: sum((r) => r.heartbeatsMissed), duplicated: sum((r) => r.heartbeatsDuplicated) };
    const { before, held, stopped, redisHeld, redisStopped, nginxHeld, nginxStopped } = run.samples;
    const report: Report = {
      date: new Date(run.started).toISOString(),
      ok: false,
      target: this.target,
      options: this.options,
      sockets: { requested: this.options.sockets, held: heldSockets },
      connect: { seconds: run.connectSeconds, per_second: Math.round(this.options.sockets / run.connectSeconds), handshake: summary(merged('handshake')) },
      messages: { total: sum((r) => r.messages), round_trips_per_second: Math.round(window.roundTrips / run.holdSeconds), round_trip: summary(merged('roundTrip')) },
      heartbeat: {
        ...heartbeats,
        fan_out: summary(merged('fanOut')),
        tick_to_last_socket_ms: run.ticks.map((ts) => Math.max(0, ...this.results.map((r) => r.tickToLast[ts] ?? 0))),
      },
      errors,
      closes: add((r) => r.closes),
      server: before && held && stopped ? serverFigures({ before, held, stopped }, window) : 'no server metrics (pass --metrics)',
      redis:
        redisHeld === undefined || redisStopped === undefined
          ? null
          : { cpu_us_per_message: window.roundTrips * 2 >= window.frames ? microsPer(redisStopped - redisHeld, window.roundTrips) : null },
      nginx: nginxFigures(nginxHeld, nginxStopped, window.frames),
      latency_probe: this.probe(run.holdSeconds),
      load_generator: {
        workers: this.options.workers,
        cpu_seconds: Math.round(generatorCpu * 100) / 100,
        round_trips: window.roundTrips,
        frames: window.frames,
        heartbeat_frames: sum((r) => r.window.heartbeatFrames),
        pings: sum((r) => r.window.pings),
        cpu_us_per_frame: microsPer(generatorCpu, window.frames),
        cpu_us_per_round_trip: window.roundTrips * 2 >= window.frames ? microsPer(generatorCpu, window.roundTrips) : null,
      },
    };
    const probeOk = this.options.probeMs === undefined || (this.probeResult?.held === 1 && Object.keys(this.probeResult.errors).length === 0);
    const ok =
      heldSockets === this.options.sockets &&
      probeOk &&
      Object.keys(errors).length === 0 &&
      heartbeats.missed === 0 &&
      heartbeats.duplicated === 0 &&
      (run.ticks.length > 0 || this.options.heartbeatMs === 0 || this.options.durationS * 1000 < this.options.heartbeatMs);
    return { ...report, ok };
  }
}

/** Every tick any socket read after hold: the latest reading of it, ms after its instant. */
function tickEnds(results: WorkerResult[]): Map<string, number> {
  const ends = new Map<string, number>();
  for (const result of results) for (const [ts, ms] of Object.entries(result.tickToLast)) ends.set(ts, Math.max(ends.get(ts) ?? 0, ms));
  return ends;
}

/** The ceiling's arguments: the fair one pays one INCR per message in the product's Redis and the same heartbeat. */
function ceilingArgs(options: Options): string[] {
  if (options.ceiling === 'bare') return [];
  return ['--redis', options.redisUrl!, '--heartbeat-ms', String(options.heartbeatMs)];
}

/** Product and ceiling alternately, `repeat` pairs, one ceiling process for all (warm, as the replicas are). */
async function withReference(options: Options, teardown: Teardown): Promise<ComparisonReport> {
  const args = ceilingArgs(options);
  const reference = await startReference(0, args);
  const stop = (): Promise<void> => reference.stop();
  const forget = teardown.add('stop the reference server', stop);
  try {
    const ceilingOptions: Options = {
      ...options,
      url: reference.url,
      socketIoShare: 0,
      heartbeatMs: options.ceiling === 'bare' ? 0 : options.heartbeatMs,
      metricsUrls: [],
      reference: false,
    };
    const runs: Array<{ product: Report; ceiling: Report }> = [];
    for (let pair = 0; pair < options.repeat; pair += 1) {
      const product = await new Coordinator(options).run();
      const ceiling = await new Coordinator(ceilingOptions, 'ceiling', () => reference.sample()).run();
      runs.push({ product, ceiling });
    }
    return compare(options, { mode: options.ceiling, args }, runs);
  } finally {
    forget();
    await stop();
  }
}

/** One run against `target` (nginx-comparison.ts's runs). */
function runOne(options: Options, target: RunTarget): Promise<Report> {
  // No sample of the target's own: the Coordinator's default reads the replicas' /metrics.
  return new Coordinator(options, target.target, target.sample, target.nginxPid).run();
}

function runAll(options: Options, teardown: Teardown): Promise<Report | ComparisonReport> {
  if (options.behindNginx) return behindNginx(options, runOne, teardown, sampleServers);
  if (options.reference) return withReference(options, teardown);
  return new Coordinator(options).run();
}

async function main(): Promise<void> {
  const options = readOptions(process.argv.slice(2));
  const teardown = new Teardown();
  teardownOnSignals(teardown, (line) => process.stderr.write(line));
  const report = await runAll(options, teardown);
  const text = 'pairs' in report ? comparisonMarkdown(report) : runMarkdown(report);
  mkdirSync(options.reportDir, { recursive: true });
  const stem = path.join(options.reportDir, `loadtest-${report.date.replace(/[:.]/g, '-')}`);
  writeFileSync(`${stem}.json`, `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(`${stem}.md`, text);
  process.stdout.write(`${text}\nreport: ${stem}.json\n`);
  process.exit(report.ok ? 0 : 1);
}

main().catch((error: unknown) => {
  // fetch's own message ("fetch failed") says nothing; what failed is in its cause.
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  process.stderr.write(`loadtest: ${error instanceof Error ? error.message : String(error)}${cause}\n`);
  process.exit(2);
});
