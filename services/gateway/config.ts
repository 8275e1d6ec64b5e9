/**
 * Replica configuration: read from the environment once at start-up, validated,
 * frozen and passed down. Nothing else in the code base reads process.env.
 *
 * Each variable's default and bounds are in config-variables.ts, the one place
 * they are written; loadConfig says which variable sets each field.
 */
import os from 'node:os';
import { VARIABLES, type ChoiceVariable, type IntegerVariable, type VariableName } from './config-variables.js';
import { CLOSE_HANDSHAKE_ALLOWANCE_MS, DRAIN_RESERVE_MS } from './drain-deadline.js';

export type Colour = 'blue' | 'green';
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';
export type SocketIoTransport = 'websocket' | 'polling';

export interface Config {
  /** TCP port of the HTTP server (probes, metrics, both socket endpoints). */
  readonly port: number;
  /** Interface to bind. */
  readonly host: string;
  /**
   * Redis connection URL (redis:// or rediss://). With Sentinel or Cluster it still
   * gives the credentials, TLS (rediss) and, for Sentinel, the database; its host is
   * not used.
   */
  readonly redisUrl: string;
  /** Standalone (REDIS_URL), Sentinel (REDIS_SENTINELS) or Cluster (REDIS_CLUSTER_NODES). */
  readonly redisTopology: RedisTopology;
  /** Prefix of every Redis key and of the socket.io adapter channels. */
  readonly redisKeyPrefix: string;
  /**
   * Key of the hash that names each session's Redis key (never the id itself: a bearer
   * secret). Every replica of both colours must share it; changing it loses every
   * session. Empty: the hash is unkeyed, still one-way.
   */
  readonly sessionKeySecret: string;
  /** How long a Redis command may take before the message fails. */
  readonly redisCommandTimeoutMs: number;
  /** The colour this replica belongs to; served at /version. */
  readonly colour: Colour;
  /** Identifies the replica in logs and elections. */
  readonly replicaId: string;
  /** Heartbeat period; ticks are aligned to wall-clock multiples of it. */
  readonly heartbeatIntervalMs: number;
  /** Hard deadline for the whole drain on SIGTERM, below the orchestrator's grace (SHUTDOWN_TIMEOUT_CEILING_MS). */
  readonly shutdownTimeoutMs: number;
  /** Idle lifetime of a session counter in Redis, refreshed on every message. */
  readonly sessionTtlSeconds: number;
  /** Largest text message accepted, in bytes (UTF-8). */
  readonly maxMessageBytes: number;
  /**
   * Frames one plain message may arrive in (ws's limit on a message's parts, which keeps
   * a message of empty fragments from costing unbounded work). Over it: bye + 4504.
   * The default lets a MAX_MESSAGE_BYTES message arrive one byte per frame.
   */
  readonly maxMessageFragments: number;
  /**
   * Messages of one connection awaiting Redis before the server stops reading from it;
   * also the most a resuming client may say it has unanswered (`pending`).
   */
  readonly maxInflightPerConnection: number;
  /**
   * How far a resuming client's `last` may be above the count the store holds: the
   * counts a Redis failover may lose for one session. Further ahead: 4506.
   */
  readonly maxResumeAhead: number;
  /** socket.io transports; 'polling' needs sticky sessions at the proxy. */
  readonly socketIoTransports: readonly SocketIoTransport[];
  /** Minimum level written to the JSON log. */
  readonly logLevel: LogLevel;
  /**
   * Messages a second one connection may send, sustained; bursts of twice that are
   * allowed. A flood is closed with 4502. 0 turns the limit off.
   */
  readonly maxMessagesPerSecond: number;
  /** Replies waiting to be written to one client before it counts as not reading and is closed. */
  readonly maxBufferedBytes: number;
  /**
   * Browser origins allowed to open either socket endpoint. 'same-host' (an Origin whose
   * host is the request's Host), '*' (any), or a comma list of exact origins. Requests
   * without an Origin header (non-browser clients) are always allowed.
   */
  readonly allowedOrigins: OriginPolicy;
  /**
   * Sockets one replica holds, both endpoints together; a handshake over it gets 503
   * {"error":"replica_full"}, which Nginx retries on a sibling.
   */
  readonly maxConnections: number;
  /** Time a client has to send a request's complete headers (slowloris). */
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
type Read = (name: VariableName) => string | undefined;
type Table = typeof VARIABLES;
/** The variables of one kind; `Shape` narrows further (a text variable with a default). */
type NamesOf<Shape> = { [K in VariableName]: Table[K] extends Shape ? K : never }[VariableName];
type ChoiceName = NamesOf<ChoiceVariable>;

export function loadConfig(env: Env = process.env): Config {
  const read: Read = (name) => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };

  const config: Config = {
    port: integer(read, 'PORT'),
    host: text(read, 'HOST'),
    redisUrl: redisUrl(text(read, 'REDIS_URL')),
    redisTopology: redisTopology(read),
    redisKeyPrefix: keyPrefix(text(read, 'REDIS_KEY_PREFIX')),
    sessionKeySecret: secret(read, 'SESSION_KEY_SECRET'),
    redisCommandTimeoutMs: integer(read, 'REDIS_COMMAND_TIMEOUT_MS'),
    colour: oneOf(read, 'APP_VERSION'),
    // Its default depends on the process: config-variables.ts only names it.
    replicaId: replicaId(read('REPLICA_ID') ?? `${os.hostname()}-${process.pid}`),
    heartbeatIntervalMs: integer(read, 'HEARTBEAT_INTERVAL_MS'),
    shutdownTimeoutMs: integer(read, 'SHUTDOWN_TIMEOUT_MS'),
    sessionTtlSeconds: integer(read, 'SESSION_TTL_SECONDS'),
    maxMessageBytes: integer(read, 'MAX_MESSAGE_BYTES'),
    maxMessageFragments: integer(read, 'MAX_MESSAGE_FRAGMENTS'),
    maxInflightPerConnection: integer(read, 'MAX_INFLIGHT_PER_CONNECTION'),
    maxResumeAhead: integer(read, 'MAX_RESUME_AHEAD'),
    socketIoTransports: transports(text(read, 'SOCKETIO_TRANSPORTS')),
    logLevel: oneOf(read, 'LOG_LEVEL'),
    maxMessagesPerSecond: integer(read, 'MAX_MESSAGES_PER_SECOND'),
    maxBufferedBytes: integer(read, 'MAX_BUFFERED_BYTES'),
    allowedOrigins: originPolicy(text(read, 'ALLOWED_ORIGINS')),
    maxConnections: integer(read, 'MAX_CONNECTIONS'),
    httpHeadersTimeoutMs: integer(read, 'HTTP_HEADERS_TIMEOUT_MS'),
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

function integer(read: Read, name: NamesOf<IntegerVariable>): number {
  const { fallback, min, max }: IntegerVariable = VARIABLES[name];
  const raw = read(name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `must be a whole number between ${min} and ${max} (got "${raw}")`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max} (got ${value})`);
  return value;
}

/** The variable, or its default. */
function text(read: Read, name: NamesOf<{ kind: 'text'; fallback: string }>): string {
  return read(name) ?? VARIABLES[name].fallback;
}

/** A secret: absent (its default, empty), or at least 32 characters, so it cannot be guessed. */
function secret(read: Read, name: 'SESSION_KEY_SECRET'): string {
  const raw = read(name);
  if (raw === undefined) return VARIABLES[name].fallback;
  if (raw.length < 32) throw new ConfigError(name, `must be at least 32 characters (got ${raw.length})`);
  return raw;
}

function oneOf<N extends ChoiceName>(read: Read, name: N): Table[N]['allowed'][number] {
  const { fallback, allowed } = VARIABLES[name];
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

function redisTopology(read: Read): RedisTopology {
  const mode = oneOf(read, 'REDIS_MODE');
  if (mode === 'sentinel') {
    const masterName = text(read, 'REDIS_SENTINEL_MASTER');
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
