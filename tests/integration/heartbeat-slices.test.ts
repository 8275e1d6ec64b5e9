/**
 * A tick's fan-out over thousands of sockets yields to I/O between its slices: one
 * replica, a closed-loop client registered first (its socket is in the tick's first
 * slice) and thousands of idle sockets after it, held by a child process
 * (tools/bench/raw-heartbeat-client.ts) so that reading them costs this process
 * nothing. Were the fan-out one synchronous loop, no count could be written between
 * the client's heartbeat and the fan-out's last write; sliced, the closed loop goes
 * on meanwhile. The idle sockets get each tick exactly once; the client's counts stay
 * in order around its heartbeats.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { textOf } from '../../tools/harness/clients.js';
import { RedisServer, ReplicaProcess, sleep } from '../../tools/harness/processes.js';
import { scrape, sumOf } from '../../tools/harness/prometheus-text.js';

// Long enough that an idle client starved of CPU on a busy box still reads each tick
// within its own half-interval window (raw-heartbeat-client.ts counts frames by window).
const INTERVAL_MS = 3000;
const IDLE_SOCKETS = 4000;
const TICKS = 2;
const FAN_OUT = 'wschat_heartbeat_fanout_seconds';
const here = path.dirname(fileURLToPath(import.meta.url));
const RAW_CLIENT = path.join(here, '../../tools/bench/raw-heartbeat-client.js');

interface Received {
  at: number;
  frame: { count?: number; ts?: string };
}

interface IdleReading {
  sockets: number;
  ticks: Array<{ tick: string; frames: number }>;
}

/** Each tick's own fan-out time (s), from the replica's histogram read between ticks. */
type FanOuts = Map<string, number>;

describe('heartbeat fan-out in slices', function () {
  this.timeout(60_000);
  let redis: RedisServer;
  let replica: ReplicaProcess;

  before(async () => {
    redis = await RedisServer.start();
    // No rate limit: the closed loop sends its next message on each count, well past the default.
    replica = await ReplicaProcess.start(redis, { HEARTBEAT_INTERVAL_MS: String(INTERVAL_MS), MAX_MESSAGES_PER_SECOND: '0' });
  });

  after(async () => {
    await replica?.stop();
    await redis?.destroy();
  });

  /** Reads the fan-out histogram half-way between ticks until `stop`; a tick whose count grew by one gets the sum's growth. */
  async function readFanOuts(stop: () => boolean): Promise<FanOuts> {
    const fanOuts: FanOuts = new Map();
    let last: { count: number; sum: number } | undefined;
    while (!stop()) {
      const now = Date.now();
      const midpoint = Math.ceil((now - INTERVAL_MS / 2) / INTERVAL_MS) * INTERVAL_MS + INTERVAL_MS / 2;
      await sleep(midpoint - now);
      const { samples } = await scrape(`${replica.httpUrl}/metrics`);
      const reading = { count: sumOf(samples, `${FAN_OUT}_count`), sum: sumOf(samples, `${FAN_OUT}_sum`) };
      const tick = new Date(midpoint - INTERVAL_MS / 2).toISOString();
      if (last !== undefined && reading.count === last.count + 1) fanOuts.set(tick, reading.sum - last.sum);
      last = reading;
    }
    return fanOuts;
  }

  it('writes counts between two slices of a tick, each idle socket one frame per tick, counts in order around the heartbeats', async () => {
    const received: Received[] = [];
    const client = new WebSocket(replica.wsUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      client.once('open', () => resolve());
      client.once('error', reject);
    });
    let closedBy: number | undefined;
    client.once('close', (code) => (closedBy = code));
    let looping = true;
    let sent = 0;
    const next = (): void => {
      if (!looping) return;
      sent += 1;
      client.send(`message ${sent}`);
    };
    client.on('message', (data) => {
      const frame = JSON.parse(textOf(data)) as Received['frame'];
      received.push({ at: Date.now(), frame });
      if (frame.count !== undefined) next();
    });
    next();

    const idle = spawn(process.execPath, [RAW_CLIENT, '--url', replica.wsUrl, '--sockets', String(IDLE_SOCKETS), '--heartbeat-ms', String(INTERVAL_MS), '--ticks', String(TICKS)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    idle.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    idle.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    let idleDone = false;
    const exited = new Promise<number | null>((resolve) => idle.once('exit', (code) => {
      idleDone = true;
      resolve(code);
    }));
    const fanOuts = readFanOuts(() => idleDone);
    try {
      assert.equal(await exited, 0, stderr);
    } finally {
      if (idle.exitCode === null) idle.kill('SIGKILL');
    }
    const measured = await fanOuts;
    assert.equal(closedBy, undefined, 'the closed-loop client stayed connected');
    looping = false;
    client.close();

    const reading = JSON.parse(stdout) as IdleReading;
    assert.equal(reading.sockets, IDLE_SOCKETS);
    assert.equal(reading.ticks.length, TICKS);
    for (const { tick, frames } of reading.ticks) assert.equal(frames, IDLE_SOCKETS, `tick ${tick}: one frame per idle socket`);

    const counts = received.flatMap(({ frame }) => (frame.count === undefined ? [] : [frame.count]));
    assert.deepEqual(counts, counts.map((_, index) => index + 1), 'the counts in order, none missing, around the heartbeats');

    for (const { tick } of reading.ticks) {
      const fanOutS = measured.get(tick);
      assert.ok(fanOutS !== undefined, `tick ${tick}: its fan-out read between ticks (${[...measured.keys()].join(' ')})`);
      const beat = received.findIndex(({ frame }) => frame.ts === tick);
      assert.ok(beat >= 0, `tick ${tick}: the client got its heartbeat`);
      assert.equal(received.filter(({ frame }) => frame.ts === tick).length, 1, `tick ${tick}: once`);
      const fanOutEnd = Date.parse(tick) + fanOutS * 1000;
      const during = received.slice(beat + 1).filter(({ at, frame }) => frame.count !== undefined && at <= fanOutEnd).length;
      assert.ok(
        during >= 1,
        `tick ${tick}: counts written after the client's heartbeat and before the fan-out's last write (${fanOutS * 1000} ms after the tick): ${during}`,
      );
    }
  });
});
