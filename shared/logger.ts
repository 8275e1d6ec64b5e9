/**
 * JSON logs, one line per event. Every line carries the replica and its colour;
 * lines written while handling a connection also carry that connection's
 * request_id and session tag, taken from an AsyncLocalStorage so that no call
 * site has to pass them along.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import winston from 'winston';
import type { LogLevel } from './config.js';

/** What a connection (or an HTTP request) adds to every log line it causes. */
export interface LogContext {
  request_id: string;
  session?: string;
  transport?: string;
}

export type Logger = winston.Logger;
export type LogContextStore = AsyncLocalStorage<LogContext>;

export interface LoggerOptions {
  level: LogLevel;
  replica: string;
  version: string;
  context: LogContextStore;
  /** Where lines go; stdout by default. Tests pass a stream to read them back. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const addContext = winston.format((info) => {
    const context = options.context.getStore();
    return context === undefined ? info : Object.assign(info, context);
  });
  const transport =
    options.stream === undefined
      ? new winston.transports.Console({ stderrLevels: [] })
      : new winston.transports.Stream({ stream: options.stream });
  const logger = winston.createLogger({
    level: options.level,
    defaultMeta: { replica: options.replica, version: options.version },
    format: winston.format.combine(
      addContext(),
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
export async function flushLogger(logger: Logger, stream: NodeJS.WritableStream = process.stdout): Promise<void> {
  const finished = logger.transports.map(
    (transport) => new Promise<void>((resolve) => transport.once('finish', () => resolve())),
  );
  logger.end();
  await Promise.all(finished);
  await new Promise<void>((resolve) => stream.write('', () => resolve()));
}

/** An error as log fields: message and code, never a stack trace at info level. */
export function errorFields(error: unknown): { error: string; error_code?: string } {
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === undefined ? { error: error.message } : { error: error.message, error_code: code };
  }
  return { error: String(error) };
}
