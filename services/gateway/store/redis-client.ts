/**
 * ioredis clients as this service needs them: bounded waits, endless reconnects
 * with a capped back-off, an error listener on every client, and one log line per
 * state change instead of one per failed reconnect attempt.
 *
 * REDIS_MODE picks the topology: one server (REDIS_URL), a Sentinel-managed primary
 * (ioredis asks the sentinels for the current primary and follows failovers), or a
 * Redis Cluster (ioredis routes each command by its key's slot; every key this
 * service uses is a single key, so no two keys need to share a slot).
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { errorFields, type Logger } from '../logger.js';

/** Reconnect back-off: 100 ms, 200 ms, ... capped at 1 s so recovery after a restart is quick. */
const RECONNECT_CAP_MS = 1000;

/**
 * Commands queued while disconnected fail after this many reconnect attempts,
 * which bounds the offline queue (memory) during an outage. REDIS_COMMAND_TIMEOUT_MS
 * bounds the wait of each message whatever the connection state.
 */
const MAX_RETRIES_PER_REQUEST = 3;

export type RedisRole = 'commands' | 'subscriber';

/** A standalone/Sentinel client or a Cluster: the same commands, routed differently. */
export type RedisClient = Redis | Cluster;

export interface RedisClientOptions {
  config: Config;
  role: RedisRole;
  logger: Logger;
  /** Called on every client error (for the errors metric). */
  onError: () => void;
  /** Called whenever the client becomes ready or stops being ready. */
  onStateChange: () => void;
}

/** A client and the way to close it on purpose (so the close is not reported as an outage). */
export interface RedisHandle {
  readonly client: RedisClient;
  quit(): Promise<void>;
}

export function createRedisClient(options: RedisClientOptions): RedisHandle {
  const { config, role, logger } = options;
  const client = connect(config, {
    connectionName: `wschat:${config.replicaId}:${role}`,
    commandTimeout: role === 'commands' ? config.redisCommandTimeoutMs : undefined,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    enableAutoPipelining: role === 'commands',
    retryStrategy: reconnectDelay,
  });

  let wasReady = false;
  let errorLoggedSinceReady = false;
  let quitting = false;
  client.on('ready', () => {
    wasReady = true;
    errorLoggedSinceReady = false;
    logger.info('redis ready', { event: 'redis_ready', role });
    options.onStateChange();
  });
  client.on('close', () => {
    if (wasReady && !quitting) logger.warn('redis connection lost', { event: 'redis_lost', role });
    wasReady = false;
    options.onStateChange();
  });
  client.on('error', (error: unknown) => {
    options.onError();
    // ioredis reports every failed reconnect attempt; one line per outage is enough.
    if (!errorLoggedSinceReady) {
      errorLoggedSinceReady = true;
      logger.warn('redis error', { event: 'redis_error', role, ...errorFields(error) });
    }
  });
  return {
    client,
    async quit() {
      quitting = true;
      try {
        await client.quit();
      } catch {
        // Already disconnected (Redis down at shutdown): nothing left to close gracefully.
        client.disconnect();
      }
    },
  };
}

function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 100, RECONNECT_CAP_MS);
}

function connect(config: Config, options: RedisOptions): RedisClient {
  const topology = config.redisTopology;
  if (topology.mode === 'standalone') return new Redis(config.redisUrl, options);
  // The URL still carries the credentials, TLS and (Sentinel) the database.
  const url = new URL(config.redisUrl);
  const auth: RedisOptions = {
    username: url.username === '' ? undefined : decodeURIComponent(url.username),
    password: url.password === '' ? undefined : decodeURIComponent(url.password),
    tls: url.protocol === 'rediss:' ? {} : undefined,
  };
  if (topology.mode === 'sentinel') {
    return new Redis({
      ...options,
      ...auth,
      db: Number(url.pathname.slice(1) || 0),
      sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
      name: topology.masterName,
      // rediss:// means TLS everywhere: to the sentinels, and to the primary they name,
      // which ioredis reaches in plaintext unless told otherwise (its `tls` alone does not).
      sentinelTLS: auth.tls,
      enableTLSForSentinelMode: auth.tls !== undefined,
      sentinelRetryStrategy: reconnectDelay,
      // After a failover the old primary answers writes with READONLY until Sentinel
      // demotes it and drops its clients: reconnect at once (ioredis asks the sentinels
      // for the new primary) and re-send the command.
      reconnectOnError: (error) => error.message.startsWith('READONLY'),
    });
  }
  const { enableAutoPipelining, ...perNode } = options;
  return new Cluster(
    topology.nodes.map(({ host, port }) => ({ host, port })),
    { enableAutoPipelining, clusterRetryStrategy: reconnectDelay, redisOptions: { ...perNode, ...auth } },
  );
}
