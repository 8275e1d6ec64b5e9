/**
 * A product to measure, on free loopback ports and away from the dev stack's fixed
 * ones: a redis-server of its own (appendfsync everysec, as the shipped
 * redis/redis.conf) and R replicas straight at it, no Nginx. Prints the load test's
 * arguments for it and runs until SIGINT or SIGTERM, then stops everything it started.
 *
 *   node dist/tools/bench/private-stack.js [--replicas 1] [--heartbeat-ms 2000]
 *   node dist/tools/loadtest.js $(the printed arguments) --reference ...
 *
 * With one replica --url is that replica; with more it is the first one only (a
 * direct load test reaches one replica; put Nginx in front for more).
 *
 * Each replica runs in a session of its own, as the dev stack's replicas and
 * `--reference`'s ceiling do, so the kernel's autogroup scheduling treats product and
 * ceiling alike wherever this is started from (tools/loadtest/reference-process.ts says why
 * that matters).
 */
import { parseArgs } from 'node:util';
import { RedisServer, ReplicaProcess } from '../harness/processes.js';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { replicas: { type: 'string', default: '1' }, 'heartbeat-ms': { type: 'string', default: '2000' } } });
  const replicaCount = Number(values.replicas);
  const heartbeatMs = values['heartbeat-ms'];
  if (!Number.isInteger(replicaCount) || replicaCount < 1) throw new Error('--replicas must be a whole number from 1');
  const redis = await RedisServer.start({ appendfsync: 'everysec' });
  const replicas: ReplicaProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(replicas.map((replica) => replica.stop()));
    await redis.destroy();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop());
  process.once('SIGTERM', () => void stop());
  for (let index = 0; index < replicaCount; index += 1) {
    replicas.push(await ReplicaProcess.start(redis, { HEARTBEAT_INTERVAL_MS: heartbeatMs, LOG_LEVEL: 'warn', REPLICA_ID: `bench-${index + 1}` }, { ownSession: true }));
  }
  const metrics = replicas.map((replica) => `${replica.httpUrl}/metrics`).join(',');
  process.stdout.write(`--url ${replicas[0]!.httpUrl} --metrics ${metrics} --redis ${redis.url} --heartbeat-ms ${heartbeatMs}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`private-stack: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
