/**
 * Entry point: config, then the replica, then signals. Nothing else lives here.
 *
 *   node dist/services/gateway/main.js                 run a replica
 *   node dist/services/gateway/main.js --check-config  validate the environment and exit
 *
 * Exit codes: 0 clean shutdown, 1 failure or drain deadline overrun, 2 bad configuration.
 */
import { ConfigError, describeConfig, loadConfig, type Config } from './config.js';
import { Deadline, LOG_FLUSH_BUDGET_MS } from './drain-deadline.js';
import { errorFields, flushLogger, type Logger } from './logger.js';
import { Replica } from './replica.js';

const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;

async function drainAndExit(replica: Replica, signal: NodeJS.Signals, deadline: Deadline): Promise<void> {
  let code = 0;
  try {
    await replica.shutdown(signal, deadline);
  } catch (error) {
    replica.logger.error('shutdown failed', { event: 'shutdown_failed', ...errorFields(error) });
    code = EXIT_FAILURE;
  }
  await exitAfterFlush(replica.logger, code);
}

/** Exits once the logs are written, or after LOG_FLUSH_BUDGET_MS whatever happens. */
async function exitAfterFlush(logger: Logger, code: number): Promise<never> {
  setTimeout(() => process.exit(code), LOG_FLUSH_BUDGET_MS).unref();
  await flushLogger(logger);
  process.exit(code);
}

function readConfig(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`config error: ${error.message}\n`);
    process.exit(EXIT_BAD_CONFIG);
  }
}

async function main(): Promise<void> {
  const config = readConfig();
  if (process.argv.includes('--check-config')) {
    process.stdout.write(`${JSON.stringify(describeConfig(config))}\n`);
    return;
  }

  const replica = new Replica(config);
  const { logger } = replica;

  // A backstop: Node exits on an unhandled rejection. The one known source, the
  // socket.io adapter's unhandled PUBLISH, is handled where it starts
  // (socketio-gateway.ts, publishFailuresHandled); anything else a library drops is
  // logged and counted here, and the replica keeps serving.
  process.on('unhandledRejection', (reason) => {
    replica.metrics.error('unhandled_rejection');
    logger.error('unhandled rejection', { event: 'unhandled_rejection', ...errorFields(reason) });
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal must not fall through to Node's default handler mid-drain.
    if (stopping) return void logger.info('already draining', { event: 'shutdown_signal_repeated', signal });
    stopping = true;
    // The drain's one deadline, from this instant; the drain takes what is left of it.
    const deadline = Deadline.in(config.shutdownTimeoutMs);
    // The watchdog: whatever happens in the drain, the process is gone by the deadline,
    // with its last line written.
    setTimeout(() => {
      logger.error('shutdown deadline exceeded, forcing exit', {
        event: 'shutdown_forced',
        timeout_ms: config.shutdownTimeoutMs,
      });
      void exitAfterFlush(logger, EXIT_FAILURE);
    }, deadline.before(LOG_FLUSH_BUDGET_MS).remainingMs()).unref();
    void drainAndExit(replica, signal, deadline);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const address = await replica.start();
  logger.info('replica listening', {
    event: 'start',
    pid: process.pid,
    port: address.port,
    config: describeConfig(config),
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`fatal: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(EXIT_FAILURE);
});
