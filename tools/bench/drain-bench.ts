/**
 * How long a colour takes to drain N sockets on SIGTERM, and its replicas' memory
 * while holding them. Starts its own redis-server and R replicas on free loopback
 * ports; client processes (forked from this file, at most 9,000 sockets each: the
 * 20,000 open-file limit) open N plain sockets spread over the replicas, each with
 * one answered message; then every replica gets SIGTERM at once, and every socket
 * must get its bye and close 1001.
 *
 *   npm run build && node dist/tools/bench/drain-bench.js SOCKETS [REPLICAS]
 *   (npm run bench:drain -- 20000 2)
 *
 * Prints one JSON line. Keep SOCKETS / REPLICAS under ~18,000 (one replica's files).
 */
import { fork, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { textOf } from '../harness/clients.js';
import { RedisServer, ReplicaProcess } from '../harness/processes.js';

const BATCH = 200;
const SOCKETS_PER_CLIENT = 9000;
const SOCKETS_PER_REPLICA = 18_000;

type ToClient = { type: 'open'; urls: string[]; sockets: number } | { type: 'report' };
type FromClient =
  | { type: 'opened' }
  | { type: 'report'; byes: number; closes1001: number; closed: number; lastCloseAt: number; failed: number };

/** Client role: opens its sockets, then counts byes and closes until asked to report. */
function runClient(): void {
  const tally = { byes: 0, closes1001: 0, closed: 0, lastCloseAt: 0, failed: 0 };
  const send = (message: FromClient): void => void process.send?.(message);
  const openOne = (url: string): Promise<void> =>
    new Promise((resolve) => {
      const ws = new WebSocket(url);
      ws.on('open', () => ws.send('x'));
      ws.on('error', () => {
        tally.failed += 1;
        resolve();
      });
      ws.on('message', (data) => {
        const frame = JSON.parse(textOf(data)) as { count?: number; bye?: boolean };
        if (frame.count === 1) resolve();
        if (frame.bye === true) tally.byes += 1;
      });
      ws.on('close', (code) => {
        tally.closed += 1;
        tally.lastCloseAt = Date.now();
        if (code === 1001) tally.closes1001 += 1;
      });
    });
  process.on('message', (message: ToClient) => {
    if (message.type === 'report') {
      send({ type: 'report', ...tally });
      return;
    }
    void (async () => {
      for (let opened = 0; opened < message.sockets; opened += BATCH) {
        const batch = Math.min(BATCH, message.sockets - opened);
        await Promise.all(Array.from({ length: batch }, (_, k) => openOne(message.urls[(opened + k) % message.urls.length]!)));
      }
      send({ type: 'opened' });
    })();
  });
}

function ask(child: ChildProcess, message: ToClient, answer: FromClient['type']): Promise<FromClient> {
  return new Promise((resolve) => {
    const listener = (reply: FromClient): void => {
      if (reply.type !== answer) return;
      child.off('message', listener);
      resolve(reply);
    };
    child.on('message', listener);
    child.send(message);
  });
}

async function runCoordinator(sockets: number, replicaCount: number): Promise<void> {
  const redis = await RedisServer.start();
  const replicas = await Promise.all(Array.from({ length: replicaCount }, () => ReplicaProcess.start(redis, { LOG_LEVEL: process.env.LOG_LEVEL ?? 'info' })));
  const clients = Array.from({ length: Math.ceil(sockets / SOCKETS_PER_CLIENT) }, () =>
    fork(new URL(import.meta.url), ['client'], { stdio: 'inherit' }),
  );
  try {
    const urls = replicas.map((replica) => replica.wsUrl);
    const shares = clients.map((_, index) => Math.floor(sockets / clients.length) + (index < sockets % clients.length ? 1 : 0));
    await Promise.all(clients.map((client, index) => ask(client, { type: 'open', urls, sockets: shares[index]! }, 'opened')));
    const rssBytes = (await Promise.all(replicas.map((replica) => replica.metric('process_resident_memory_bytes')))).reduce((a, b) => a + b, 0);

    const signalledAt = Date.now();
    for (const replica of replicas) replica.signal('SIGTERM');
    const exits = await Promise.all(replicas.map((replica) => replica.exited));
    const allExitedMs = Date.now() - signalledAt;
    // The replicas are gone; give the clients a moment to read the last close frames.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const reports = (await Promise.all(clients.map((client) => ask(client, { type: 'report' }, 'report')))) as Array<
      Extract<FromClient, { type: 'report' }>
    >;
    const sum = (pick: (report: (typeof reports)[number]) => number): number => reports.reduce((total, r) => total + pick(r), 0);
    const drainMs = replicas.map((replica) => replica.events('shutdown_complete')[0]?.duration_ms);
    process.stdout.write(
      `${JSON.stringify({
        date: new Date().toISOString(),
        sockets,
        replicas: replicaCount,
        rss_mb: Math.round(rssBytes / 1048576),
        sockets_closed_ms: replicas.map((replica) => replica.events('shutdown_sockets_closed')[0]?.elapsed_ms),
        drain_ms: drainMs,
        sigterm_to_all_exited_ms: allExitedMs,
        sigterm_to_last_close_ms: Math.max(...reports.map((r) => r.lastCloseAt)) - signalledAt,
        exit_codes: exits.map((exit) => exit.code),
        failed_to_open: sum((r) => r.failed),
        byes: sum((r) => r.byes),
        closes_1001: sum((r) => r.closes1001),
      })}\n`,
    );
  } finally {
    for (const client of clients) client.kill();
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis.destroy();
  }
}

if (process.argv[2] === 'client') {
  runClient();
} else {
  const sockets = Number(process.argv[2] ?? 5000);
  const replicaCount = Number(process.argv[3] ?? 1);
  const valid =
    Number.isInteger(sockets) && sockets >= 1 && Number.isInteger(replicaCount) && replicaCount >= 1 && sockets / replicaCount <= SOCKETS_PER_REPLICA;
  if (!valid) {
    process.stderr.write(`usage: drain-bench.js SOCKETS [REPLICAS] (at most ${SOCKETS_PER_REPLICA} sockets per replica)\n`);
    process.exit(1);
  }
  runCoordinator(sockets, replicaCount).catch((error: unknown) => {
    process.stderr.write(`drain-bench: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
