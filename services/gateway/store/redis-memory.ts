/**
 * Redis's memory against its limit, as this replica last read it: what the
 * WschatRedisMemoryHigh alert watches. Redis is run with `maxmemory` and the
 * `noeviction` policy (redis/redis.conf): a full Redis refuses writes, and every
 * client of the fleet gets bye + 1013, so the alert must fire well before.
 *
 * A scrape never waits for Redis: it reports the last reading and starts the next
 * (INFO memory, one command a scrape), so a stalled Redis cannot stall /metrics.
 */
import client from 'prom-client';
import { METRIC_PREFIX } from '../metrics.js';
import type { RedisClient } from './redis-client.js';

export function registerRedisMemory(redis: RedisClient, registry: client.Registry): void {
  let reading: Promise<void> | undefined;
  const refresh = (): void => {
    reading ??= redis
      .info('memory')
      .then((info) => {
        used.set(field(info, 'used_memory'));
        limit.set(field(info, 'maxmemory'));
      })
      .catch(() => undefined)
      .finally(() => (reading = undefined));
  };
  const used = new client.Gauge({
    name: `${METRIC_PREFIX}redis_memory_used_bytes`,
    help: "Redis's used_memory, as this replica last read it (INFO memory, read at each scrape).",
    registers: [registry],
    collect: refresh,
  });
  const limit = new client.Gauge({
    name: `${METRIC_PREFIX}redis_maxmemory_bytes`,
    help: "Redis's maxmemory (0: no limit), as this replica last read it.",
    registers: [registry],
  });
}

/** A numeric field of an INFO answer (`name:value` lines); 0 when absent. */
export function field(info: string, name: string): number {
  const match = new RegExp(`^${name}:(\\d+)\\r?$`, 'm').exec(info);
  return match === null ? 0 : Number(match[1]);
}
