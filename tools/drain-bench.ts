/**
 * How long one replica takes to drain N sockets on SIGTERM, and its memory while
 * holding them. Starts its own redis-server and replica on free loopback ports,
 * opens N plain sockets (one answered message each), sends SIGTERM, and checks
 * that every socket got its bye and close 1001.
 *
 *   npm run build && node dist/tools/drain-bench.js 5000
 *
 * Prints one JSON line. Keep N under ~9,000 per run: the client sockets of this
 * process and the replica's each count against the 20,000 open-file limit.
 */
import WebSocket from 'ws';
import { textOf } from '../tests/support/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../tests/support/processes.js';

const BATCH = 200;

async function openSockets(url: string, count: number, tally: { byes: number; closes1001: number }): Promise<void> {
  let answered = 0;
  for (let opened = 0; opened < count; opened += BATCH) {
    const batch = Math.min(BATCH, count - opened);
    await Promise.all(
      Array.from(
        { length: batch },
        () =>
          new Promise<void>((resolve, reject) => {
            const ws = new WebSocket(url);
            ws.on('open', () => ws.send('x'));
            ws.on('error', reject);
            ws.on('message', (data) => {
              const frame = JSON.parse(textOf(data)) as { count?: number; bye?: boolean };
              if (frame.count === 1) {
                answered += 1;
                resolve();
              }
              if (frame.bye === true) tally.byes += 1;
            });
            ws.on('close', (code) => {
              if (code === 1001) tally.closes1001 += 1;
            });
          }),
      ),
    );
  }
  if (answered !== count) throw new Error(`only ${answered} of ${count} sockets answered`);
}

async function main(): Promise<void> {
  const sockets = Number(process.argv[2] ?? 5000);
  if (!Number.isInteger(sockets) || sockets < 1 || sockets > 9000) throw new Error('usage: drain-bench.js SOCKETS (1-9000)');
  const redis = await RedisServer.start();
  const replica = await ReplicaProcess.start(redis);
  try {
    const tally = { byes: 0, closes1001: 0 };
    await openSockets(replica.wsUrl, sockets, tally);
    const rssBytes = await replica.metric('process_resident_memory_bytes');
    const signalled = performance.now();
    replica.signal('SIGTERM');
    const exit = await replica.exited;
    const exitMs = Math.round(performance.now() - signalled);
    // The replica has gone; give this process a moment to read the last close frames.
    await eventually(() => tally.closes1001 === sockets, 'every close', 5000).catch(() => undefined);
    const [complete] = replica.events('shutdown_complete');
    process.stdout.write(
      `${JSON.stringify({
        date: new Date().toISOString(),
        sockets,
        rss_mb: Math.round(rssBytes / 1048576),
        drain_ms: complete?.duration_ms,
        sigterm_to_exit_ms: exitMs,
        exit_code: exit.code,
        byes: tally.byes,
        closes_1001: tally.closes1001,
      })}\n`,
    );
  } finally {
    await replica.stop();
    await redis.destroy();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`drain-bench: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
