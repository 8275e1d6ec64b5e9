/**
 * JSON logs, one line per event. Every line carries the replica and its version;
 * lines about a connection or an HTTP request also carry its request_id (and the
 * session tag), passed as fields by the code that owns the connection.
 *
 * Why not an AsyncLocalStorage: on Node 22 (the oldest supported) it turns on
 * promise hooks for the whole process, a cost paid on every promise of every
 * message (about 5% of a replica's CPU under load, docs/benchmarks.md) to save
 * passing one object.
 */
import winston from 'winston';
import type { LogLevel } from './config.js';

/** What a connection (or an HTTP request) adds to every log line it causes. */
export interface LogContext {
  request_id: string;
  session?: string;
  transport?: string;
}

export type Logger = winston.Logger;

export interface LoggerOptions {
  level: LogLevel;
  replica: string;
  version: string;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const transport =
    options.stream === undefined
      ? new winston.transports.Console({ stderrLevels: [] })
      : new winston.transports.Stream({ stream: options.stream });
  const logger = winston.createLogger({
    level: options.level,
    defaultMeta: { replica: options.replica, version: options.version },
    format: winston.format.combine(
      winston.format.timestamp(),
      winston.format.errors({ stack: false }),
      winston.format.json(),
    ),
    transports: [transport],
  });
  // A failing log write (a closed pipe, a line after shutdown's final flush) must
  // never become an uncaught 'error' that kills the replica.
  logger.on('error', (error: Error) => process.stderr.write(`log write failed: ${error.message}\n`));
  return logger;
}

/**
 * Resolves once every line logged so far has been handed to the OS. winston
 * writes through streams, so a process.exit() right after a log call can lose
 * the last lines (the ones that say how a shutdown went).
 */
export async function flushLogger(logger: Logger): Promise<void> {
  const finished = logger.transports.map(
    (transport) => new Promise<void>((resolve) => transport.once('finish', () => resolve())),
  );
  logger.end();
  await Promise.all(finished);
  // The Console transport ends without waiting for stdout (a pipe writes asynchronously):
  // an empty write's callback runs only once everything queued before it is out.
  await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
}

/** An error as log fields: message and code, never a stack trace at info level. */
export function errorFields(error: unknown): { error: string; error_code?: string } {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? { error: error.message } : { error: error.message, error_code: code };
  }
  return { error: String(error) };
}

/** What logs show of a session id: enough to correlate, not enough to hijack. */
export function sessionTag(sessionId: string): string {
  return `${sessionId.slice(0, 8)}…`;
}
