/**
 * Helpers for the fault tests (tests/redis-faults.test.ts, tests/stack-faults.test.ts):
 * a prober that keeps opening new connections, open-loop flooders, a sampler,
 * the checks every closed-loop session must pass, and access to a native stack's
 * pidfiles, logs and shell helpers.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { textOf } from '../../tools/harness/clients.js';
import { eventually, sleep, type LogLine } from '../../tools/harness/processes.js';
import type { NativeStack, ScriptRun } from './stack.js';
import { repoRoot } from '../../tools/harness/repo-root.js';


/**
 * What every closed-loop session must show after a fault, whatever the fault:
 * - counts start at 1 and only go up (never backwards, never repeated);
 * - Redis holds at least the last count the client saw (nothing it saw is lost);
 * - Redis counted a message the client never saw a count for only when a
 *   connection was lost while that message awaited its count (`lostInFlight`):
 *   the client re-sends that message, and only that one, and the lost one may
 *   have been counted before its reply was lost (a skip, DESIGN.md "Failure modes").
 * Returns how many counts the client never saw (skips).
 */
export function assertSessionIntact(
  label: string,
  counts: number[],
  stored: number,
  lostInFlight: number,
  trace?: string[],
): number {
  assert.ok(counts.length > 0, `${label}: no count at all`);
  assert.equal(counts[0], 1, `${label}: first count ${counts[0]}`);
  for (let i = 1; i < counts.length; i += 1) {
    assert.ok(counts[i]! > counts[i - 1]!, `${label}: count ${counts[i - 1]} then ${counts[i]} (position ${i})`);
  }
  const last = counts.at(-1)!;
  assert.ok(stored >= last, `${label}: the client saw ${last}, Redis has ${stored}`);
  const unseen = stored - counts.length;
  assert.ok(
    unseen <= lostInFlight,
    `${label}: Redis counted ${unseen} message(s) the client never saw a count for, ` +
      `with ${lostInFlight} connection(s) lost while a message awaited its count` +
      (trace === undefined ? '' : `; its last events:\n${trace.join('\n')}`),
  );
  return unseen;
}

/**
 * assertSessionIntact for a loop client, which also checks the client's side of the
 * rule: it got exactly one count per message it sent, so it re-sent only messages
 * that got no count (counts alone cannot tell a re-send from a new message).
 */
export function assertLoopSession(label: string, client: LoopClient, stored: number): number {
  assert.equal(client.counts.length, client.answered, `${label}: ${client.counts.length} counts for ${client.answered} messages`);
  return assertSessionIntact(label, client.counts, stored, client.closesInFlight, client.trace);
}

/**
 * A loop client's byes: a bye on a connection that delivered counts carries exactly
 * the last of them (the last count handed to the transport, and every one handed
 * before the bye arrived); a bye on a connection that delivered none carries the count
 * loaded at its open, at least the last seen (a count lost with the previous
 * connection is a skip). The next count follows it.
 */
export function assertByesConsistent(label: string, client: LoopClient): void {
  for (const bye of client.byes) {
    assert.ok(bye.lastCount !== undefined, `${label}: a bye before any count`);
    if (bye.countedOnItsConnection) assert.equal(bye.total, bye.lastCount, `${label}: bye total ${bye.total}, last count ${bye.lastCount}`);
    else assert.ok(bye.total >= bye.lastCount, `${label}: bye total ${bye.total} below the last count ${bye.lastCount}`);
    const next = client.counts[client.counts.indexOf(bye.lastCount) + 1];
    if (next !== undefined) assert.ok(next > bye.total, `${label}: count ${next} after a bye with total ${bye.total}`);
  }
}

/**
 * Closed-loop clients that follow the protocol's client rules (one message in
 * flight; after any close, reconnect with the same session and re-send the
 * message that got no count, and only that one) and also record, for every
 * close they did not ask for, whether a message was awaiting its count: that is
 * the only case in which Redis may have counted something the client never saw.
 * (tests/support/closed-loop.ts has the same rules without that record.)
 */
export abstract class LoopClient {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  /** Byes received, with the last count the client had seen when each arrived, and whether its connection delivered any. */
  readonly byes: Array<{ total: number; lastCount: number | undefined; countedOnItsConnection: boolean }> = [];
  /** Counts received on the current connection. */
  private connectionCounts = 0;
  /** Closes the client did not ask for: the close code (plain) or the disconnect reason (socket.io). */
  readonly closes: Array<number | string> = [];
  /** How many of those closes came while a message awaited its count. */
  closesInFlight = 0;
  /** When each of those closes came (Date.now()). */
  readonly closeTimes: number[] = [];
  /** Milliseconds from each unrequested close to the next successful connect. */
  readonly reconnectMs: number[] = [];
  handshakeFailures = 0;
  protected stopped = false;
  protected awaiting = false;
  private lastClose: number | undefined;
  /** The number of the last message sent (a re-send keeps its number). */
  private target = 0;
  /**
   * The number of the last message that got its count. Every message is re-sent
   * until it gets one, and only then is the next one sent, so this always equals
   * the number of counts received; a client that re-sent an answered message would
   * have more counts than answered messages.
   */
  answered = 0;
  private thinkTimer: NodeJS.Timeout | undefined;

  constructor(protected readonly thinkMs: number) {}

  abstract start(): void;
  protected abstract connected(): boolean;
  protected abstract transmit(text: string): void;
  protected abstract disconnect(): void;

  /**
   * Stops sending, waits for the answer in flight (if the connection still stands),
   * disconnects. It disconnects even when that answer never comes: a failed test's
   * after hook stops its clients this way, and a client left connected would go on
   * reconnecting forever and keep mocha's process alive.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.thinkTimer);
    try {
      await eventually(() => !this.awaiting || !this.connected(), 'the last answer', timeoutMs);
    } finally {
      this.disconnect();
    }
  }

  protected onConnected(): void {
    this.note('connected');
    this.connectionCounts = 0;
    if (this.lastClose !== undefined) {
      this.reconnectMs.push(Date.now() - this.lastClose);
      this.lastClose = undefined;
    }
    this.sendNext();
  }

  protected onCount(count: number): void {
    this.note(`count ${count}`);
    this.counts.push(count);
    this.connectionCounts += 1;
    this.answered = this.target;
    this.awaiting = false;
    this.thinkTimer = setTimeout(() => this.sendNext(), this.thinkMs);
  }

  protected onBye(total: number): void {
    this.byes.push({ total, lastCount: this.counts.at(-1), countedOnItsConnection: this.connectionCounts > 0 });
  }

  /** The last events (connect, send, count, close), for failure messages. */
  readonly trace: string[] = [];

  protected note(event: string): void {
    this.trace.push(`${new Date().toISOString().slice(11, 23)} ${event}`);
    if (this.trace.length > 40) this.trace.shift();
  }

  protected onClosed(code: number | string): void {
    this.note(`closed ${code}${this.awaiting ? ` with message ${this.target} awaiting its count` : ''}`);
    clearTimeout(this.thinkTimer);
    if (this.stopped) return;
    this.closes.push(code);
    this.closeTimes.push(Date.now());
    if (this.awaiting) this.closesInFlight += 1;
    this.lastClose ??= Date.now();
  }

  protected sendNext(): void {
    if (this.stopped || !this.connected()) return;
    // The message that got no count is re-sent as it was; otherwise the next one.
    if (!this.awaiting) this.target += 1;
    this.awaiting = true;
    this.note(`send message ${this.target}`);
    this.transmit(`message ${this.target}`);
  }
}

/** A plain /ws/chat/ loop client; `urls` are tried in turn on each reconnect. */
export class PlainLoop extends LoopClient {
  private ws: WebSocket | undefined;
  private attempt = 0;

  constructor(
    private readonly urls: string[],
    thinkMs: number,
  ) {
    super(thinkMs);
  }

  start(): void {
    const url = this.urls[this.attempt % this.urls.length]!;
    this.attempt += 1;
    const ws = new WebSocket(`${url}?session=${this.session}`);
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.onConnected();
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(textOf(data)) as { count?: number; bye?: boolean; total?: number };
      if (typeof frame.count === 'number') this.onCount(frame.count);
      else if (frame.bye === true) this.onBye(frame.total ?? -1);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      if (!opened) this.handshakeFailures += 1;
      else this.onClosed(code);
      if (!this.stopped) setTimeout(() => this.start(), 50);
    });
  }

  protected connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  protected transmit(text: string): void {
    this.ws?.send(text);
  }

  protected disconnect(): void {
    this.ws?.close();
  }
}

/** A socket.io loop client using socket.io's own reconnection, with the same session. */
export class SocketIoLoop extends LoopClient {
  private socket: Socket | undefined;

  constructor(
    private readonly url: string,
    thinkMs: number,
  ) {
    super(thinkMs);
  }

  start(): void {
    const socket = io(this.url, {
      transports: ['websocket'],
      auth: { session: this.session },
      reconnectionDelay: 50,
      reconnectionDelayMax: 200,
      forceNew: true,
    });
    this.socket = socket;
    socket.on('connect', () => this.onConnected());
    socket.on('count', (frame: { count: number }) => this.onCount(frame.count));
    socket.on('bye', (frame: { total: number }) => this.onBye(frame.total));
    socket.on('connect_error', () => (this.handshakeFailures += 1));
    socket.on('disconnect', (reason) => this.onClosed(reason));
  }

  protected connected(): boolean {
    return this.socket?.connected === true;
  }

  protected transmit(text: string): void {
    this.socket?.emit('message', text);
  }

  protected disconnect(): void {
    this.socket?.disconnect();
  }
}

/** Loops that run until stopped (samplers, probers); a failed test stops them in its after hook. */
const loops = new Set<{ stop(): Promise<void> }>();

/** Stops every sampler and prober still running (for after hooks: a failed assertion skips their stop()). */
export async function stopLoops(): Promise<void> {
  await Promise.all([...loops].map((loop) => loop.stop()));
}

/** Runs `sample` every `intervalMs` until stopped and keeps each result with its time. */
export class Sampler<T> {
  readonly samples: Array<{ at: number; value: T }> = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(sample: () => Promise<T>, intervalMs: number) {
    loops.add(this);
    this.done = (async () => {
      while (this.running) {
        const at = Date.now();
        this.samples.push({ at, value: await sample() });
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    loops.delete(this);
    await this.done;
  }

  between(from: number, to: number): T[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.value);
  }
}

export interface ProbeAttempt {
  started: number;
  ended: number;
  error: string | undefined;
}

/**
 * Opens a new plain connection every `intervalMs` (a new session each time), sends
 * one message and expects exactly {"count":1}, then closes: "new connections keep working".
 */
export class ConnectProber {
  readonly attempts: ProbeAttempt[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly wsUrl: string,
    intervalMs = 100,
    private readonly timeoutMs = 3000,
  ) {
    loops.add(this);
    this.done = (async () => {
      while (this.running) {
        const started = Date.now();
        let error: string | undefined;
        try {
          await this.once();
        } catch (caught) {
          error = (caught as Error).message;
        }
        this.attempts.push({ started, ended: Date.now(), error });
        await sleep(intervalMs);
      }
    })();
  }

  failures(): ProbeAttempt[] {
    return this.attempts.filter((attempt) => attempt.error !== undefined);
  }

  private once(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.wsUrl}?session=${randomSessionId()}`, { handshakeTimeout: this.timeoutMs });
      const timer = setTimeout(() => finish(new Error('no count in time')), this.timeoutMs);
      let settled = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined) ws.close(1000);
        else ws.terminate();
        if (error === undefined) resolve();
        else reject(error);
      };
      ws.on('open', () => ws.send('probe'));
      ws.on('message', (data) => {
        const text = textOf(data);
        if (text === '{"count":1}') finish();
        else if (!text.startsWith('{"ts":')) finish(new Error(`unexpected reply ${text}`));
      });
      ws.on('unexpected-response', (_request, response) => finish(new Error(`HTTP ${response.statusCode}`)));
      ws.on('error', (error) => finish(error));
      ws.on('close', (code) => finish(new Error(`closed with ${code} before its count`)));
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    loops.delete(this);
    await this.done;
  }
}

export interface FloodOptions {
  /** Messages per second, sent in bursts every 50 ms. */
  perSecond: number;
  /** Bytes per message. */
  size: number;
}

/**
 * A plain client that keeps sending without waiting for counts (open loop), as
 * long as its own write buffer is small; after any close it reconnects with the
 * same session and keeps going.
 */
export class PlainFlooder {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  readonly closes: number[] = [];
  /** Connections that opened. */
  connections = 0;
  maxBufferedAmount = 0;
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly options: FloodOptions,
  ) {}

  start(): void {
    const ws = new WebSocket(`${this.url}?session=${this.session}`);
    this.ws = ws;
    const payload = 'x'.repeat(this.options.size);
    const burst = Math.max(1, Math.round(this.options.perSecond / 20));
    ws.on('open', () => {
      this.connections += 1;
      this.timer = setInterval(() => {
        this.maxBufferedAmount = Math.max(this.maxBufferedAmount, ws.bufferedAmount);
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > 256 * 1024) return;
        for (let i = 0; i < burst; i += 1) ws.send(payload);
      }, 50);
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(textOf(data)) as { count?: number };
      if (typeof frame.count === 'number') this.counts.push(frame.count);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      clearInterval(this.timer);
      if (this.stopped) return;
      this.closes.push(code);
      setTimeout(() => this.start(), 100);
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.ws?.terminate();
  }
}

/** The socket.io counterpart: emits without waiting for counts; does not reconnect after a server disconnect. */
export class SocketIoFlooder {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  readonly byes: number[] = [];
  disconnectReason: string | undefined;
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly options: FloodOptions,
  ) {}

  start(): void {
    const socket = io(this.url, { transports: ['websocket'], auth: { session: this.session }, reconnection: false, forceNew: true });
    this.socket = socket;
    const payload = 'x'.repeat(this.options.size);
    const burst = Math.max(1, Math.round(this.options.perSecond / 20));
    socket.on('connect', () => {
      this.timer = setInterval(() => {
        if (socket.connected) for (let i = 0; i < burst; i += 1) socket.emit('message', payload);
      }, 50);
    });
    socket.on('count', (frame: { count: number }) => this.counts.push(frame.count));
    socket.on('bye', (frame: { total: number }) => this.byes.push(frame.total));
    socket.on('disconnect', (reason) => {
      clearInterval(this.timer);
      this.disconnectReason ??= reason;
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket?.disconnect();
  }
}

/** p-th percentile (0-100) of `values`, nearest rank. */
export function quantile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

/** Milliseconds of each of `n` sequential round trips on one new plain connection. */
export async function roundTrips(wsUrl: string, n: number): Promise<number[]> {
  const ws = new WebSocket(`${wsUrl}?session=${randomSessionId()}`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let answered: (() => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  ws.on('message', (data) => {
    if (textOf(data).startsWith('{"count":')) answered?.();
  });
  ws.on('close', (code) => failed?.(new Error(`closed with ${code} during a round trip`)));
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i += 1) {
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        answered = resolve;
        failed = reject;
        ws.send('ping');
      });
      times.push(performance.now() - started);
    }
  } finally {
    ws.close();
  }
  return times;
}

// --- the native stack ----------------------------------------------------------

/** The pid in `<run dir>/pids/<name>.pid`, or undefined when there is no pidfile. */
export function stackPid(stack: NativeStack, name: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(stack.runDir, 'pids', `${name}.pid`), 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (a zombie does not count). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** The JSON lines of one of the stack's process logs (`<run dir>/logs/<name>.log`). */
export function stackLog(stack: NativeStack, name: string): LogLine[] {
  const lines: LogLine[] = [];
  let text: string;
  try {
    text = readFileSync(path.join(stack.runDir, 'logs', `${name}.log`), 'utf8');
  } catch {
    return lines;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // A line being written right now.
    }
  }
  return lines;
}

/** Runs `snippet` in bash with tools/stack/stack-lib.sh sourced and the stack's settings loaded (its helpers). */
export function stackShell(stack: NativeStack, snippet: string): Promise<ScriptRun> {
  const started = Date.now();
  const child = spawn('bash', ['-c', `set -euo pipefail; source tools/stack/stack-lib.sh; load_stack_settings; ${snippet}`], {
    cwd: repoRoot,
    env: { ...process.env, ...stack.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output, durationMs: Date.now() - started })));
}

/**
 * Starts a tools/ script as the leader of a process group of its own (as a shell
 * would run a job), so the whole group (the script, its builds, its smoke tests)
 * can be killed at once. Processes the script starts with setsid are not in it.
 */
export function spawnScriptGroup(stack: NativeStack, script: string, args: string[] = []): { child: ChildProcess; output: () => string } {
  const child = spawn('bash', [path.join(repoRoot, 'tools', script), ...args], {
    env: { ...process.env, ...stack.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return { child, output: () => output };
}

/** Pids of running processes whose command line matches `needle` (pgrep -f), this process excluded. */
export function pgrep(needle: string): Promise<number[]> {
  return pgrepWith(['-f', '--', needle]);
}

/** Pids of the running processes of process group `pgid`. */
export function processGroup(pgid: number): Promise<number[]> {
  return pgrepWith(['-g', String(pgid)]);
}

async function pgrepWith(args: string[]): Promise<number[]> {
  const child = spawn('pgrep', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await new Promise((resolve) => child.on('exit', resolve));
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number)
    .filter((pid) => pid !== process.pid && processRuns(pid));
}

/** Children of `parent` with their command lines (from /proc). */
export async function childrenOf(parent: number): Promise<Array<{ pid: number; command: string }>> {
  const child = spawn('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await new Promise((resolve) => child.on('exit', resolve));
  return output
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ pid: Number(match[1]), command: match[2]! }));
}

/** One scrape of `<httpUrl>/metrics`: the sum of every series of a metric, read from the same instant. */
export async function scrape(httpUrl: string): Promise<(name: string) => number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  return (name) => {
    let total = 0;
    for (const match of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))) total += Number(match[1]);
    return total;
  };
}

/** The sum of every series of metric `name` at `<httpUrl>/metrics`. */
export async function metricSum(httpUrl: string, name: string): Promise<number> {
  return (await scrape(httpUrl))(name);
}

/**
 * After a stack's dev-down: SIGKILLs whatever still runs from its run folder (only a
 * failed test leaves anything: a process whose pidfile was lost) and says so.
 */
export async function killStackLeftovers(runDir: string): Promise<void> {
  const leftovers = await pgrep(`${runDir}/`);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  if (leftovers.length > 0) process.stdout.write(`      killed ${leftovers.length} process(es) left running from ${runDir}\n`);
}
