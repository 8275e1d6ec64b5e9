/**
 * Is the load test the limit when it reads a heartbeat? The same server's ticks read
 * by the load test (tools/loadtest.ts, every frame checked) and by the least a
 * client can do (tools/bench/raw-heartbeat-client.ts), alternately, in one run:
 *
 *   npm run bench:reader -- [--sockets 15000] [--heartbeat-ms 2000] [--repeat 3] [--url http://...]
 *     [--workers N (the load test's; default: its own choice)]
 *
 * Without --url it forks the ceiling (tools/loadtest/reference-server.ts --heartbeat-ms,
 * no Redis: a tick framed once and written to every socket), so what is measured is
 * the reading. Each load-test run holds its sockets for three ticks; the raw client
 * reads three ticks too. The figure is the time to read one heartbeat: per tick, from
 * its instant to the last socket that read it. Prints a Markdown table (each
 * reader's per-tick figures, the ratio of their medians and of their worst ticks,
 * each one's CPU per frame) and one JSON line.
 */
import { execFile, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import type { ReferenceMessage } from '../loadtest/protocol.js';
import type { Report } from '../loadtest/report.js';

const run = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const TICKS = 3;

interface RawResult {
  sockets: number;
  ticks: Array<{ frames: number; p50_ms: number | null; p99_ms: number | null; last_ms: number | null }>;
  cpu_us_per_frame: number | null;
}

interface Reading {
  reader: 'load test' | 'raw client';
  /** Per tick: ms from the tick to the last socket reading it. */
  tick_to_last_ms: number[];
  cpu_us_per_frame: number | null;
  ok: boolean;
  /** What failed, for a reading whose checks failed. */
  failure?: string;
}

async function startCeiling(heartbeatMs: number): Promise<{ url: string; stop: () => void }> {
  const child = fork(path.join(here, '../loadtest/reference-server.js'), ['0', '--heartbeat-ms', String(heartbeatMs)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.on('message', (message: ReferenceMessage) => {
      if (message.type === 'listening') resolve(message.port);
    });
    child.once('exit', (code) => reject(new Error(`the reference server exited (${code})`)));
  });
  return { url: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}

async function readWithLoadTest(url: string, sockets: number, heartbeatMs: number, workers: string | undefined): Promise<Reading> {
  const reportDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-reader-'));
  try {
    const durationS = Math.ceil((TICKS * heartbeatMs + 1200) / 1000) + 1;
    const args = ['--url', url, '--sockets', String(sockets), '--socketio', '0', '--rate', '0', '--messages', '1'];
    args.push('--heartbeat-ms', String(heartbeatMs), '--duration', String(durationS), '--metrics', '', '--report-dir', reportDir);
    if (workers !== undefined) args.push('--workers', workers);
    // A failed check exits 1 with its report written: the reading is kept and marked.
    await run(process.execPath, [path.join(here, '../loadtest.js'), ...args], { maxBuffer: 64 * 1024 * 1024 }).catch(() => undefined);
    const file = readdirSync(reportDir).find((name) => name.endsWith('.json'));
    if (file === undefined) throw new Error('the load test wrote no report');
    const report = JSON.parse(readFileSync(path.join(reportDir, file), 'utf8')) as Report;
    const reading: Reading = { reader: 'load test', tick_to_last_ms: report.heartbeat.tick_to_last_socket_ms, cpu_us_per_frame: report.load_generator.cpu_us_per_frame, ok: report.ok };
    if (!report.ok) {
      const { missed, duplicated, ticks_checked } = report.heartbeat;
      reading.failure = JSON.stringify({ held: report.sockets.held, errors: report.errors, closes: report.closes, ticks_checked, missed, duplicated });
    }
    return reading;
  } finally {
    rmSync(reportDir, { recursive: true, force: true });
  }
}

async function readWithRawClient(url: string, sockets: number, heartbeatMs: number): Promise<Reading> {
  const wsUrl = `${url.replace(/^http/, 'ws')}/ws/chat/`;
  const args = ['--url', wsUrl, '--sockets', String(sockets), '--heartbeat-ms', String(heartbeatMs), '--ticks', String(TICKS)];
  const { stdout } = await run(process.execPath, [path.join(here, 'raw-heartbeat-client.js'), ...args]);
  const result = JSON.parse(stdout) as RawResult;
  const complete = result.sockets === sockets && result.ticks.every((tick) => tick.frames === sockets);
  const failure = complete ? {} : { failure: JSON.stringify({ sockets: result.sockets, frames: result.ticks.map((tick) => tick.frames) }) };
  const perTick = result.ticks.map((tick) => tick.last_ms ?? Number.POSITIVE_INFINITY);
  return { reader: 'raw client', tick_to_last_ms: perTick, cpu_us_per_frame: result.cpu_us_per_frame === null ? null : Math.round(result.cpu_us_per_frame * 100) / 100, ok: complete, ...failure };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      sockets: { type: 'string', default: '15000' },
      'heartbeat-ms': { type: 'string', default: '2000' },
      repeat: { type: 'string', default: '3' },
      url: { type: 'string' },
      workers: { type: 'string' },
    },
  });
  const sockets = Number(values.sockets);
  const heartbeatMs = Number(values['heartbeat-ms']);
  const repeat = Number(values.repeat);
  const ceiling = values.url === undefined ? await startCeiling(heartbeatMs) : undefined;
  const url = values.url ?? ceiling!.url;
  const readings: Reading[] = [];
  try {
    for (let pair = 0; pair < repeat; pair += 1) {
      readings.push(await readWithLoadTest(url, sockets, heartbeatMs, values.workers));
      readings.push(await readWithRawClient(url, sockets, heartbeatMs));
      process.stderr.write(`pair ${pair + 1}/${repeat}: ${JSON.stringify(readings.slice(-2))}\n`);
    }
  } finally {
    ceiling?.stop();
  }
  const ratio = (a: number, b: number): number => Math.round((a / b) * 100) / 100;
  const median = (values: number[]): number => {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  };
  const pairs = Array.from({ length: repeat }, (_, index) => ({ loadTest: readings[2 * index]!, raw: readings[2 * index + 1]! }));
  const lines = [
    `# Reading a ${sockets}-socket heartbeat: the load test against a raw client (${url}, ${repeat} pairs)`,
    '',
    '| pair | load test: tick to last socket, ms per tick | raw client, ms per tick | ratio of medians | ratio of worst | load test µs CPU / frame | raw µs CPU / frame | checks |',
    '|---|---|---|---|---|---|---|---|',
    ...pairs.map(({ loadTest: l, raw: r }, index) => {
      const [lt, rt] = [l.tick_to_last_ms, r.tick_to_last_ms];
      const checks = l.ok && r.ok ? 'ok' : `FAIL ${[l.failure, r.failure].filter(Boolean).join(' ')}`;
      return `| ${index + 1} | ${lt.join(', ')} | ${rt.join(', ')} | ${ratio(median(lt), median(rt))} | ${ratio(Math.max(...lt), Math.max(...rt))} | ${l.cpu_us_per_frame ?? 'n/a'} | ${r.cpu_us_per_frame ?? 'n/a'} | ${checks} |`;
    }),
    '',
  ];
  process.stdout.write(`${lines.join('\n')}${JSON.stringify({ sockets, heartbeatMs, pairs })}\n`);
  process.exit(readings.every((reading) => reading.ok && reading.tick_to_last_ms.length > 0) ? 0 : 1);
}

main().catch((error: unknown) => {
  process.stderr.write(`heartbeat-reader-bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(2);
});
