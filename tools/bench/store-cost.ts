/**
 * What exactly once costs in Redis: the leased increment (a lease check, a slot check,
 * the raise) against the unleased one (INCR + EXPIRE), on the product's own scripts:
 *
 *   npm run bench:store -- [SESSIONS, default 1000] [INCREMENTS per session, default 100]
 *
 * Starts its own redis-server on a free loopback port (AOF with `appendfsync everysec`,
 * as redis/redis.conf ships); one autopipelined ioredis client
 * (as a replica's) runs every session's increments one after the other, all sessions at
 * once. Redis's own CPU per call comes from INFO commandstats (usec_per_call of
 * EVALSHA), which does not depend on how busy the client machine is; calls/s end to end
 * does. Prints a Markdown table and one JSON line.
 */
import { RedisSessionStore, type LeasedSession, type ResumeTooFar } from '../../services/gateway/store/session-store.js';
import { RedisServer } from '../harness/processes.js';
import type { Redis } from 'ioredis';

/** Every open here starts at 0, so none is refused. */
function leaseOf(opened: LeasedSession | ResumeTooFar): number {
  if ('refused' in opened) throw new Error('leased open refused');
  return opened.lease;
}

interface Figures {
  calls: number;
  redisMicrosPerCall: number;
  callsPerSecond: number;
}

async function evalshaStats(redis: Redis): Promise<{ calls: number; usecPerCall: number }> {
  const info = await redis.info('commandstats');
  const line = info.split('\n').find((entry) => entry.startsWith('cmdstat_evalsha:')) ?? '';
  const fields = new Map(line.slice(line.indexOf(':') + 1).split(',').map((pair): [string, string] => {
    const [name = '', value = ''] = pair.trim().split('=');
    return [name, value];
  }));
  return { calls: Number(fields.get('calls') ?? 0), usecPerCall: Number(fields.get('usec_per_call') ?? Number.NaN) };
}

async function measure(redis: Redis, run: () => Promise<unknown>): Promise<Figures> {
  await redis.config('RESETSTAT');
  const started = performance.now();
  await run();
  const elapsedMs = performance.now() - started;
  const { calls, usecPerCall } = await evalshaStats(redis);
  return { calls, redisMicrosPerCall: usecPerCall, callsPerSecond: Math.round((calls / elapsedMs) * 1000) };
}

async function main(): Promise<void> {
  const sessions = Number(process.argv[2] ?? 1000);
  const perSession = Number(process.argv[3] ?? 100);
  const server = await RedisServer.start({ appendfsync: 'everysec' });
  const redis = server.client();
  try {
    const store = new RedisSessionStore(redis, { keyPrefix: 'bench:', keySecret: '', adoptLegacyKeys: true, ttlSeconds: 600, maxResumeAhead: 10_000 });
    // Loads both scripts, so neither measured run pays a NOSCRIPT round trip.
    await store.increment('warm-up');
    const warm = await store.openLeased('warm-up-leased', 0);
    await store.incrementLeased('warm-up-leased', leaseOf(warm), 0);

    const ids = Array.from({ length: sessions }, (_, index) => `s${index}`);
    const unleased = await measure(redis, () =>
      Promise.all(ids.map(async (id) => {
        for (let k = 0; k < perSession; k += 1) await store.increment(id);
      })),
    );
    const leases = await Promise.all(ids.map(async (id) => leaseOf(await store.openLeased(`leased-${id}`, 0))));
    const leased = await measure(redis, () =>
      Promise.all(ids.map(async (id, index) => {
        for (let k = 0; k < perSession; k += 1) await store.incrementLeased(`leased-${id}`, leases[index]!, k);
      })),
    );
    const row = (name: string, f: Figures): string => `| ${name} | ${f.calls} | ${f.redisMicrosPerCall.toFixed(2)} | ${f.callsPerSecond} |`;
    process.stdout.write(
      ['| increment | calls | Redis µs per call | calls/s end to end |', '|---|---|---|---|', row('unleased', unleased), row('leased', leased), ''].join('\n'),
    );
    process.stdout.write(`${JSON.stringify({ sessions, perSession, unleased, leased })}\n`);
  } finally {
    redis.disconnect();
    await server.destroy();
  }
}

await main();
