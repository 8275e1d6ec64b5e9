/**
 * Entry point: config, then the replica, then signals. Nothing else lives here.
 *
 *   node dist/services/gateway/main.js                 run a replica
 *   node dist/services/gateway/main.js --check-config  validate the environment and exit
 *
 * Exit codes: 0 clean shutdown, 1 failure or drain deadline overrun, 2 bad configuration.
 */
import { ConfigError, describeConfig, loadConfig, type Config } from '../../shared/config.js';
import { errorFields } from '../../shared/logger.js';
import { Replica } from './replica.js';

const EXIT_FAILURE = 1;
const EXIT_BAD_CONFIG = 2;

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

  // The socket.io Redis adapter publishes without handling the promise (see
  // socketio/socket.io-redis-emitter#139 for the same pattern): during a Redis
  // outage that would be an unhandled rejection, which kills Node by default.
  // Log and count it instead; the replica keeps serving.
  process.on('unhandledRejection', (reason) => {
    replica.metrics.errors.inc({ kind: 'unhandled_rejection' });
    logger.error('unhandled rejection', { event: 'unhandled_rejection', ...errorFields(reason) });
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal must not fall through to Node's default handler mid-drain.
    if (stopping) return void logger.info('already draining', { event: 'shutdown_signal_repeated', signal });
    stopping = true;
    // The watchdog: whatever happens in the drain, the process is gone by the deadline.
    setTimeout(() => {
      logger.error('shutdown deadline exceeded, forcing exit', {
        event: 'shutdown_forced',
        timeout_ms: config.shutdownTimeoutMs,
      });
      process.exit(EXIT_FAILURE);
    }, config.shutdownTimeoutMs).unref();
    replica.shutdown(signal).then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { event: 'shutdown_failed', ...errorFields(error) });
        process.exit(EXIT_FAILURE);
      },
    );
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
