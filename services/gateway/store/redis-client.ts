/**
 * ioredis clients as this service needs them: bounded waits, endless reconnects
 * with a capped back-off, an error listener on every client, and one log line per
 * state change instead of one per failed reconnect attempt.
 *
 * A connection that stops answering without closing (a partition that drops packets,
 * no reset) stays "ready" to ioredis until TCP gives up, many minutes later: a PING
 * every half REDIS_COMMAND_TIMEOUT_MS that is not answered within it destroys the
 * socket, so ioredis reconnects and readiness says 503 meanwhile (watchForStalls).
 *
 * REDIS_MODE picks the topology: one server (REDIS_URL), a Sentinel-managed primary
 * (ioredis asks the sentinels for the current primary and follows failovers), or a
 * Redis Cluster (ioredis routes each command by its key's slot; every key this
 * service uses is a single key, so no two keys need to share a slot).
 */
import { Cluster, Redis, ReplyError, type RedisOptions } from 'ioredis';
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
  /** Called when a connection stopped answering and was dropped (before the reconnect). */
  onStall?: () => void;
}

/** A client and the way to close it on purpose (so the close is not reported as an outage). */
export interface RedisHandle {
  readonly client: RedisClient;
  quit(): Promise<void>;
}

/** How long a connection may leave a PING unanswered; probes go out every half of it. */
export interface StallWatch {
  timeoutMs: number;
}

export function createRedisClient(options: RedisClientOptions): RedisHandle {
  const { config, role, logger } = options;
  const client = connect(config, {
    connectionName: `wschat:${config.replicaId}:${role}`,
    commandTimeout: role === 'commands' ? config.redisCommandTimeoutMs : undefined,
    maxRetriesPerRequest: MAX_RETRIES_PER_REQUEST,
    enableAutoPipelining: role === 'commands',
    retryStrategy: reconnectDelay,
    // A connect into a partition gets no answer either: give up as soon as a command
    // would, and try again (ioredis waits 10 s by default), so the heal is seen quickly.
    connectTimeout: config.redisCommandTimeoutMs,
    // A command whose connection died has either been applied or not; by the time a
    // new connection could send it again, its client was told 1013 and re-sends the
    // message itself. Sending it too would count that message twice.
    autoResendUnfulfilledCommands: role !== 'commands',
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
  const stopWatch = watchForStalls(client, { timeoutMs: config.redisCommandTimeoutMs }, () => {
    logger.warn('redis not answering, reconnecting', { event: 'redis_stalled', role, timeout_ms: config.redisCommandTimeoutMs });
    options.onStall?.();
  });
  return {
    client,
    async quit() {
      stopWatch();
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

/**
 * Probes every connection of `client` (one, or each Cluster node) with a PING every
 * half `timeoutMs`, one probe at a time; a PING not answered within `timeoutMs`
 * destroys that connection's socket (ioredis's own disconnect ends it gracefully,
 * which a partition never completes). Returns the function that stops probing.
 */
export function watchForStalls(client: RedisClient, { timeoutMs }: StallWatch, onStall: () => void): () => void {
  const probing = new WeakSet<Redis>();
  const timer = setInterval(() => {
    for (const connection of client instanceof Cluster ? client.nodes() : [client]) {
      if (connection.status !== 'ready' || probing.has(connection)) continue;
      probing.add(connection);
      void answersWithin(connection, timeoutMs).then((answered) => {
        probing.delete(connection);
        if (answered || connection.status !== 'ready') return;
        onStall();
        connection.stream.destroy();
      });
    }
  }, timeoutMs / 2);
  // The probes must never be what keeps a replica's process alive.
  timer.unref();
  return () => clearInterval(timer);
}

/** Whether `connection` answers a PING within `timeoutMs` (an error reply is an answer: Redis is talking). */
function answersWithin(connection: Redis, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timeout = setTimeout(() => resolve(false), timeoutMs);
    const settle = (answered: boolean): void => {
      clearTimeout(timeout);
      resolve(answered);
    };
    connection.ping().then(
      () => settle(true),
      (error: unknown) => settle(error instanceof ReplyError),
    );
  });
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
      // Follow a failover the moment a sentinel announces it (+switch-master): the old
      // primary keeps accepting writes until Sentinel demotes it, seconds later, and its
      // resync from the new primary then drops every one of them.
      failoverDetector: true,
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
