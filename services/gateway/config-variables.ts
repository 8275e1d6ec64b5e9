/**
 * Every environment variable the replica reads, with its default and the values it
 * accepts: the one place a default is written. config.ts reads its defaults and
 * bounds from here, and the documented configuration table is checked against it
 * (tests/unit/config-table.test.ts), so neither can change a default alone.
 */

/** A whole number in [min, max]. */
export interface IntegerVariable {
  readonly kind: 'integer';
  readonly fallback: number;
  readonly min: number;
  readonly max: number;
}

/** One of a closed list of words. */
export interface ChoiceVariable {
  readonly kind: 'choice';
  readonly fallback: string;
  readonly allowed: readonly string[];
}

/**
 * Free text, parsed and checked by config.ts. No fallback: the variable has no default
 * (required where it is read, or computed at start: `shown` says what the default is).
 */
export interface TextVariable {
  readonly kind: 'text';
  readonly fallback?: string;
  readonly shown?: string;
}

export type Variable = IntegerVariable | ChoiceVariable | TextVariable;

/** The drain must finish before the 10 s an orchestrator grants after SIGTERM. */
export const SHUTDOWN_TIMEOUT_CEILING_MS = 10_000;

const integer = (fallback: number, min: number, max: number): IntegerVariable => ({ kind: 'integer', fallback, min, max });

export const VARIABLES = {
  PORT: integer(8000, 0, 65_535),
  HOST: { kind: 'text', fallback: '0.0.0.0' },
  REDIS_URL: { kind: 'text', fallback: 'redis://127.0.0.1:6379' },
  REDIS_MODE: { kind: 'choice', fallback: 'standalone', allowed: ['standalone', 'sentinel', 'cluster'] },
  REDIS_SENTINELS: { kind: 'text' },
  REDIS_SENTINEL_MASTER: { kind: 'text', fallback: 'mymaster' },
  REDIS_CLUSTER_NODES: { kind: 'text' },
  REDIS_KEY_PREFIX: { kind: 'text', fallback: 'wschat:' },
  REDIS_COMMAND_TIMEOUT_MS: integer(2000, 50, 60_000),
  APP_VERSION: { kind: 'choice', fallback: 'blue', allowed: ['blue', 'green'] },
  REPLICA_ID: { kind: 'text', shown: '<hostname>-<pid>' },
  HEARTBEAT_INTERVAL_MS: integer(30_000, 100, 3_600_000),
  SHUTDOWN_TIMEOUT_MS: integer(8000, 1000, SHUTDOWN_TIMEOUT_CEILING_MS - 1),
  SESSION_TTL_SECONDS: integer(86_400, 1, 31_536_000),
  MAX_MESSAGE_BYTES: integer(16_384, 1, 16 * 1024 * 1024),
  MAX_MESSAGE_FRAGMENTS: integer(16_384, 1, 1_048_576),
  MAX_INFLIGHT_PER_CONNECTION: integer(64, 1, 10_000),
  MAX_RESUME_AHEAD: integer(10_000, 0, 1_000_000),
  SOCKETIO_TRANSPORTS: { kind: 'text', fallback: 'websocket' },
  LOG_LEVEL: { kind: 'choice', fallback: 'info', allowed: ['error', 'warn', 'info', 'debug'] },
  MAX_MESSAGES_PER_SECOND: integer(500, 0, 1_000_000),
  MAX_BUFFERED_BYTES: integer(1_048_576, 1024, 1024 * 1024 * 1024),
  ALLOWED_ORIGINS: { kind: 'text', fallback: 'same-host' },
  SESSION_KEY_SECRET: { kind: 'text', fallback: '' },
  MAX_CONNECTIONS: integer(50_000, 1, 1_000_000),
  HTTP_HEADERS_TIMEOUT_MS: integer(10_000, 100, 600_000),
} as const satisfies Record<string, Variable>;

export type VariableName = keyof typeof VARIABLES;

/** The default as the configuration table writes it: the value, `empty`, or `none` for a variable without one. */
export function documentedDefault(variable: Variable): string {
  if (variable.kind !== 'text') return String(variable.fallback);
  if (variable.shown !== undefined) return variable.shown;
  if (variable.fallback === undefined) return 'none';
  return variable.fallback === '' ? 'empty' : variable.fallback;
}
