/**
 * Replica configuration: read from the environment once at start-up, validated,
 * frozen and passed down. Nothing else in the code base reads process.env.
 *
 * Every variable is listed in README.md ("Configuration"); keep the two in step.
 */
import os from 'node:os';
import { CLOSE_HANDSHAKE_ALLOWANCE_MS, DRAIN_RESERVE_MS } from './drain-deadline.js';

export type Colour = 'blue' | 'green';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type SocketIoTransport = 'websocket' | 'polling';

export interface Config {
  /** TCP port of the HTTP server (probes, metrics, both socket endpoints). @default 8000 */
  readonly port: number;
  /** Interface to bind. @default '0.0.0.0' */
  readonly host: string;
  /**
   * Redis connection URL (redis:// or rediss://). With Sentinel or Cluster it still
   * gives the credentials, TLS (rediss) and, for Sentinel, the database; its host is
   * not used. @default 'redis://127.0.0.1:6379'
   */
  readonly redisUrl: string;
  /** Standalone (REDIS_URL), Sentinel (REDIS_SENTINELS) or Cluster (REDIS_CLUSTER_NODES). @default standalone */
  readonly redisTopology: RedisTopology;
  /** Prefix of every Redis key and of the socket.io adapter channels. @default 'wschat:' */
  readonly redisKeyPrefix: string;
  /**
   * Key of the hash that names each session's Redis key (never the id itself: a bearer
   * secret). Every replica of both colours must share it; changing it loses every
   * session. Empty: the hash is unkeyed, still one-way. @default ''
   */
  readonly sessionKeySecret: string;
  /** How long a Redis command may take before the message fails. @default 2000 */
  readonly redisCommandTimeoutMs: number;
  /** The colour this replica belongs to; served at /version. @default 'blue' */
  readonly colour: Colour;
  /** Identifies the replica in logs and elections. @default '<hostname>-<pid>' */
  readonly replicaId: string;
  /** Heartbeat period; ticks are aligned to wall-clock multiples of it. @default 30000 */
  readonly heartbeatIntervalMs: number;
  /** Hard deadline for the whole drain on SIGTERM. Must stay below 10000. @default 8000 */
  readonly shutdownTimeoutMs: number;
  /** Idle lifetime of a session counter in Redis, refreshed on every message. @default 86400 */
  readonly sessionTtlSeconds: number;
  /** Largest text message accepted, in bytes (UTF-8). @default 16384 */
  readonly maxMessageBytes: number;
  /**
   * Frames one plain message may arrive in (ws's limit on a message's parts, which keeps
   * a message of empty fragments from costing unbounded work). Over it: bye + 4504.
   * The default lets a MAX_MESSAGE_BYTES message arrive one byte per frame. @default 16384
   */
  readonly maxMessageFragments: number;
  /**
   * Messages of one connection awaiting Redis before the server stops reading from it;
   * also the most a resuming client may say it has unanswered (`pending`). @default 64
   */
  readonly maxInflightPerConnection: number;
  /**
   * How far a resuming client's `last` may be above the count the store holds: the
   * counts a Redis failover may lose for one session. Further ahead: 4506. @default 10000
   */
  readonly maxResumeAhead: number;
  /** socket.io transports; 'polling' needs sticky sessions at the proxy. @default ['websocket'] */
  readonly socketIoTransports: readonly SocketIoTransport[];
  /** Minimum level written to the JSON log. @default 'info' */
  readonly logLevel: LogLevel;
  /**
   * Messages a second one connection may send, sustained; bursts of twice that are
   * allowed. A flood is closed with 4502. 0 turns the limit off. @default 500
   */
  readonly maxMessagesPerSecond: number;
  /** Replies waiting to be written to one client before it counts as not reading and is closed. @default 1048576 */
  readonly maxBufferedBytes: number;
  /**
   * Browser origins allowed to open either socket endpoint. 'same-host' (an Origin whose
   * host is the request's Host), '*' (any), or a comma list of exact origins. Requests
   * without an Origin header (non-browser clients) are always allowed. @default 'same-host'
   */
  readonly allowedOrigins: OriginPolicy;
  /**
   * Sockets one replica holds, both endpoints together; a handshake over it gets 503
   * {"error":"replica_full"}, which Nginx retries on a sibling. @default 50000
   */
  readonly maxConnections: number;
  /** Time a client has to send a request's complete headers (slowloris). @default 10000 */
  readonly httpHeadersTimeoutMs: number;
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export type RedisTopology =
  | { readonly mode: 'standalone' }
  | { readonly mode: 'sentinel'; readonly sentinels: readonly HostPort[]; readonly masterName: string }
  | { readonly mode: 'cluster'; readonly nodes: readonly HostPort[] };

export type OriginPolicy = { kind: 'same-host' } | { kind: 'any' } | { kind: 'list'; origins: readonly string[] };

/** Raised for any invalid variable; the message names the variable and the problem. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    problem: string,
  ) {
    super(`${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

/** The drain must finish before the 10 s an orchestrator grants after SIGTERM. */
const SHUTDOWN_TIMEOUT_CEILING_MS = 10_000;

export function loadConfig(env: Env = process.env): Config {
  const read = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };

  const config: Config = {
    port: integer(read, 'PORT', 8000, 0, 65_535),
    host: read('HOST') ?? '0.0.0.0',
    redisUrl: redisUrl(read('REDIS_URL') ?? 'redis://127.0.0.1:6379'),
    redisTopology: redisTopology(read),
    redisKeyPrefix: keyPrefix(read('REDIS_KEY_PREFIX') ?? 'wschat:'),
    sessionKeySecret: secret(read, 'SESSION_KEY_SECRET'),
    redisCommandTimeoutMs: integer(read, 'REDIS_COMMAND_TIMEOUT_MS', 2000, 50, 60_000),
    colour: oneOf(read, 'APP_VERSION', ['blue', 'green'] as const, 'blue'),
    replicaId: replicaId(read('REPLICA_ID') ?? `${os.hostname()}-${process.pid}`),
    heartbeatIntervalMs: integer(read, 'HEARTBEAT_INTERVAL_MS', 30_000, 100, 3_600_000),
    shutdownTimeoutMs: integer(read, 'SHUTDOWN_TIMEOUT_MS', 8000, 1000, SHUTDOWN_TIMEOUT_CEILING_MS - 1),
    sessionTtlSeconds: integer(read, 'SESSION_TTL_SECONDS', 86_400, 1, 31_536_000),
    maxMessageBytes: integer(read, 'MAX_MESSAGE_BYTES', 16_384, 1, 16 * 1024 * 1024),
    maxMessageFragments: integer(read, 'MAX_MESSAGE_FRAGMENTS', 16_384, 1, 1_048_576),
    maxInflightPerConnection: integer(read, 'MAX_INFLIGHT_PER_CONNECTION', 64, 1, 10_000),
    maxResumeAhead: integer(read, 'MAX_RESUME_AHEAD', 10_000, 0, 1_000_000),
    socketIoTransports: transports(read('SOCKETIO_TRANSPORTS') ?? 'websocket'),
    logLevel: oneOf(read, 'LOG_LEVEL', ['error', 'warn', 'info', 'debug'] as const, 'info'),
    maxMessagesPerSecond: integer(read, 'MAX_MESSAGES_PER_SECOND', 500, 0, 1_000_000),
    maxBufferedBytes: integer(read, 'MAX_BUFFERED_BYTES', 1_048_576, 1024, 1024 * 1024 * 1024),
    allowedOrigins: originPolicy(read('ALLOWED_ORIGINS') ?? 'same-host'),
    maxConnections: integer(read, 'MAX_CONNECTIONS', 50_000, 1, 1_000_000),
    httpHeadersTimeoutMs: integer(read, 'HTTP_HEADERS_TIMEOUT_MS', 10_000, 100, 600_000),
  };
  checkConsistency(config);
  return Object.freeze(config);
}

/** Rules that involve more than one variable. */
function checkConsistency(config: Config): void {
  // During a drain a message may wait on Redis for the whole command timeout, and
  // its client still needs its bye and a closing handshake before the sockets are cut
  // (the drain's budget: drain-deadline.ts).
  const kept = DRAIN_RESERVE_MS + CLOSE_HANDSHAKE_ALLOWANCE_MS;
  if (config.redisCommandTimeoutMs > config.shutdownTimeoutMs - kept) {
    throw new ConfigError(
      'REDIS_COMMAND_TIMEOUT_MS',
      `must be at most SHUTDOWN_TIMEOUT_MS - ${kept} (got ${config.redisCommandTimeoutMs} with SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs})`,
    );
  }
}

function integer(
  read: (name: string) => string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number between ${min} and ${max} (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max} (got ${value})`);
  return value;
}

/** A secret: absent (empty), or at least 32 characters, so it cannot be guessed. */
function secret(read: (name: string) => string | undefined, name: string): string {
  const raw = read(name);
  if (raw === undefined) return '';
  if (raw.length < 32) throw new ConfigError(name, `must be at least 32 characters (got ${raw.length})`);
  return raw;
}

function oneOf<T extends string>(
  read: (name: string) => string | undefined,
  name: string,
  allowed: readonly T[],
  fallback: T,
): T {
  const raw = read(name);
  if (raw === undefined) return fallback;
  const match = allowed.find((candidate) => candidate === raw);
  if (match === undefined) throw new ConfigError(name, `must be one of ${allowed.join(', ')} (got "${raw}")`);
  return match;
}

function redisUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('REDIS_URL', `must be a URL like redis://host:6379 (got "${raw}")`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError('REDIS_URL', `must use redis:// or rediss:// (got "${url.protocol}")`);
  }
  return raw;
}

function redisTopology(read: (name: string) => string | undefined): RedisTopology {
  const mode = oneOf(read, 'REDIS_MODE', ['standalone', 'sentinel', 'cluster'] as const, 'standalone');
  if (mode === 'sentinel') {
    const masterName = read('REDIS_SENTINEL_MASTER') ?? 'mymaster';
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(masterName)) {
      throw new ConfigError('REDIS_SENTINEL_MASTER', `must be 1-64 characters of A-Z a-z 0-9 . _ - (got "${masterName}")`);
    }
    return { mode, sentinels: hostPorts('REDIS_SENTINELS', read('REDIS_SENTINELS'), mode), masterName };
  }
  if (mode === 'cluster') return { mode, nodes: hostPorts('REDIS_CLUSTER_NODES', read('REDIS_CLUSTER_NODES'), mode) };
  return { mode };
}

/** A comma list of host:port, required by the mode that reads it. */
function hostPorts(name: string, raw: string | undefined, mode: string): HostPort[] {
  if (raw === undefined) throw new ConfigError(name, `is required when REDIS_MODE is ${mode} (a comma list of host:port)`);
  return raw.split(',').map((entry) => {
    const match = /^([A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/.exec(entry.trim());
    const port = Number(match?.[2]);
    if (match === null || port < 1 || port > 65_535) {
      throw new ConfigError(name, `must be a comma list of host:port (got "${entry.trim()}")`);
    }
    return { host: match[1]!.replace(/^\[|\]$/g, ''), port };
  });
}

function keyPrefix(raw: string): string {
  if (!/^[A-Za-z0-9:_.-]{1,64}$/.test(raw)) {
    throw new ConfigError('REDIS_KEY_PREFIX', `must be 1-64 characters of A-Z a-z 0-9 : _ . - (got "${raw}")`);
  }
  return raw;
}

function replicaId(raw: string): string {
  if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(raw)) {
    throw new ConfigError('REPLICA_ID', `must be 1-128 characters of A-Z a-z 0-9 _ . : - (got "${raw}")`);
  }
  return raw;
}

function transports(raw: string): SocketIoTransport[] {
  const names = raw.split(',').map((name) => name.trim());
  const valid = names.filter((name): name is SocketIoTransport => name === 'websocket' || name === 'polling');
  if (valid.length !== names.length || valid.length === 0) {
    throw new ConfigError('SOCKETIO_TRANSPORTS', `must be a comma list of websocket, polling (got "${raw}")`);
  }
  return [...new Set(valid)];
}

function originPolicy(raw: string): OriginPolicy {
  if (raw === 'same-host') return { kind: 'same-host' };
  if (raw === '*') return { kind: 'any' };
  const origins = raw.split(',').map((origin) => origin.trim());
  for (const origin of origins) {
    // An origin is scheme://host[:port], exactly as browsers send it: no path, no trailing slash.
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || parsed.origin !== origin || !/^https?:$/.test(parsed.protocol)) {
      throw new ConfigError('ALLOWED_ORIGINS', `must be same-host, * or a comma list of origins like https://chat.example.com (got "${origin}")`);
    }
  }
  return { kind: 'list', origins: [...new Set(origins)] };
}

/** Secrets never reach the logs: the Redis URL is shown without its password, the session-key secret as set or not. */
export function describeConfig(config: Config): Record<string, unknown> {
  const url = new URL(config.redisUrl);
  if (url.password !== '') url.password = '***';
  return { ...config, redisUrl: url.toString(), sessionKeySecret: config.sessionKeySecret === '' ? '' : '***' };
}
