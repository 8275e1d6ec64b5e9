import assert from 'node:assert/strict';
import net from 'node:net';
import { ConfigError, describeConfig, loadConfig } from '../../services/gateway/config.js';
import { freePort, ReplicaProcess } from '../../tools/harness/processes.js';

describe('config', () => {
  describe('loadConfig', () => {
    it('gives the documented defaults for an empty environment', () => {
      const config = loadConfig({});
      assert.equal(config.port, 8000);
      assert.equal(config.host, '0.0.0.0');
      assert.equal(config.redisUrl, 'redis://127.0.0.1:6379');
      assert.equal(config.colour, 'blue');
      assert.equal(config.heartbeatIntervalMs, 30_000);
      assert.equal(config.shutdownTimeoutMs, 8000);
      assert.deepEqual(config.socketIoTransports, ['websocket']);
      assert.equal(config.maxMessagesPerSecond, 500);
      assert.equal(config.maxBufferedBytes, 1_048_576);
      assert.deepEqual(config.allowedOrigins, { kind: 'same-host' });
      assert.deepEqual(config.redisTopology, { mode: 'standalone' });
      assert.equal(config.httpHeadersTimeoutMs, 10_000);
      assert.match(config.replicaId, /-\d+$/);
      assert.ok(Object.isFrozen(config));
    });

    it('reads every variable it documents', () => {
      const config = loadConfig({
        PORT: '9000',
        HOST: '127.0.0.1',
        REDIS_URL: 'redis://redis:6380/1',
        APP_VERSION: 'green',
        REPLICA_ID: 'green-1',
        HEARTBEAT_INTERVAL_MS: '500',
        SHUTDOWN_TIMEOUT_MS: '9999',
        SESSION_TTL_SECONDS: '60',
        MAX_MESSAGE_BYTES: '1024',
        MAX_MESSAGE_FRAGMENTS: '64',
        MAX_INFLIGHT_PER_CONNECTION: '8',
        MAX_RESUME_AHEAD: '500',
        SESSION_KEY_SECRET: 'k'.repeat(32),
        MAX_CONNECTIONS: '2000',
        SOCKETIO_TRANSPORTS: 'websocket,polling',
        LOG_LEVEL: 'debug',
        REDIS_KEY_PREFIX: 'test:',
        REDIS_COMMAND_TIMEOUT_MS: '500',
        MAX_MESSAGES_PER_SECOND: '0',
        MAX_BUFFERED_BYTES: '65536',
        ALLOWED_ORIGINS: 'https://chat.example.com, http://localhost:8000',
        HTTP_HEADERS_TIMEOUT_MS: '2000',
      });
      assert.deepEqual(
        { ...config },
        {
          port: 9000,
          host: '127.0.0.1',
          redisUrl: 'redis://redis:6380/1',
          redisTopology: { mode: 'standalone' },
          colour: 'green',
          replicaId: 'green-1',
          heartbeatIntervalMs: 500,
          shutdownTimeoutMs: 9999,
          sessionTtlSeconds: 60,
          maxMessageBytes: 1024,
          maxMessageFragments: 64,
          maxInflightPerConnection: 8,
          maxResumeAhead: 500,
          sessionKeySecret: 'k'.repeat(32),
          maxConnections: 2000,
          socketIoTransports: ['websocket', 'polling'],
          logLevel: 'debug',
          redisKeyPrefix: 'test:',
          redisCommandTimeoutMs: 500,
          maxMessagesPerSecond: 0,
          maxBufferedBytes: 65536,
          allowedOrigins: { kind: 'list', origins: ['https://chat.example.com', 'http://localhost:8000'] },
          httpHeadersTimeoutMs: 2000,
        },
      );
    });

    it('reads a Sentinel and a Cluster topology', () => {
      assert.deepEqual(loadConfig({ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's1:26379, s2:26380', REDIS_SENTINEL_MASTER: 'primary' }).redisTopology, {
        mode: 'sentinel',
        sentinels: [
          { host: 's1', port: 26379 },
          { host: 's2', port: 26380 },
        ],
        masterName: 'primary',
      });
      assert.deepEqual(loadConfig({ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: '10.0.0.1:7000,[::1]:7001' }).redisTopology, {
        mode: 'cluster',
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: '::1', port: 7001 },
        ],
      });
    });

    const invalid: Array<[Record<string, string>, string, RegExp]> = [
      [{ PORT: 'abc' }, 'PORT', /whole number/],
      [{ PORT: '70000' }, 'PORT', /between 0 and 65535/],
      [{ APP_VERSION: 'red' }, 'APP_VERSION', /one of blue, green/],
      [{ SHUTDOWN_TIMEOUT_MS: '10000' }, 'SHUTDOWN_TIMEOUT_MS', /between 1000 and 9999/],
      [{ HEARTBEAT_INTERVAL_MS: '-5' }, 'HEARTBEAT_INTERVAL_MS', /whole number/],
      [{ REDIS_URL: 'http://x' }, 'REDIS_URL', /redis:\/\//],
      [{ REDIS_URL: 'not a url' }, 'REDIS_URL', /must be a URL/],
      [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /one of error, warn, info, debug/],
      [{ SOCKETIO_TRANSPORTS: 'websocket,carrier-pigeon' }, 'SOCKETIO_TRANSPORTS', /comma list/],
      [{ REPLICA_ID: 'has spaces' }, 'REPLICA_ID', /characters/],
      [{ ALLOWED_ORIGINS: 'https://chat.example.com/' }, 'ALLOWED_ORIGINS', /comma list of origins/],
      [{ ALLOWED_ORIGINS: 'chat.example.com' }, 'ALLOWED_ORIGINS', /comma list of origins/],
      [{ MAX_BUFFERED_BYTES: '10' }, 'MAX_BUFFERED_BYTES', /between 1024/],
      [{ MAX_MESSAGE_FRAGMENTS: '0' }, 'MAX_MESSAGE_FRAGMENTS', /between 1 and 1048576/],
      [{ SESSION_KEY_SECRET: 'short' }, 'SESSION_KEY_SECRET', /at least 32 characters \(got 5\)/],
      [{ MAX_RESUME_AHEAD: '-1' }, 'MAX_RESUME_AHEAD', /whole number/],
      [{ MAX_CONNECTIONS: '0' }, 'MAX_CONNECTIONS', /between 1 and 1000000/],
      [{ REDIS_MODE: 'replicated' }, 'REDIS_MODE', /one of standalone, sentinel, cluster/],
      [{ REDIS_MODE: 'cluster' }, 'REDIS_CLUSTER_NODES', /required when REDIS_MODE is cluster/],
      [{ REDIS_MODE: 'sentinel' }, 'REDIS_SENTINELS', /required when REDIS_MODE is sentinel/],
      [{ REDIS_MODE: 'cluster', REDIS_CLUSTER_NODES: 'a:1,b' }, 'REDIS_CLUSTER_NODES', /host:port \(got "b"\)/],
      [{ REDIS_MODE: 'sentinel', REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_MASTER: 'has space' }, 'REDIS_SENTINEL_MASTER', /characters/],
      [{ REDIS_COMMAND_TIMEOUT_MS: '5000', SHUTDOWN_TIMEOUT_MS: '4000' }, 'REDIS_COMMAND_TIMEOUT_MS', /at most SHUTDOWN_TIMEOUT_MS - 2000/],
      [{ REDIS_COMMAND_TIMEOUT_MS: '2500', SHUTDOWN_TIMEOUT_MS: '3000' }, 'REDIS_COMMAND_TIMEOUT_MS', /at most SHUTDOWN_TIMEOUT_MS - 2000/],
    ];
    for (const [env, variable, problem] of invalid) {
      it(`rejects ${JSON.stringify(env)} naming ${variable}`, () => {
        assert.throws(
          () => loadConfig(env),
          (error: unknown) => error instanceof ConfigError && error.variable === variable && problem.test(error.message),
        );
      });
    }

    it('never shows the Redis password when describing the config', () => {
      const described = describeConfig(loadConfig({ REDIS_URL: 'redis://:s3cret@redis:6379' }));
      assert.doesNotMatch(JSON.stringify(described), /s3cret/);
    });

    it('never shows the session-key secret when describing the config', () => {
      const secret = 'k'.repeat(16) + 'q'.repeat(16);
      const described = describeConfig(loadConfig({ SESSION_KEY_SECRET: secret }));
      assert.doesNotMatch(JSON.stringify(described), /kkkkqqqq/);
      assert.equal(described.sessionKeySecret, '***');
    });
  });

  describe('start-up errors', () => {
    it('exits 2 with one line naming the variable when a value is bad', async () => {
      const replica = ReplicaProcess.spawn({ SHUTDOWN_TIMEOUT_MS: '15000' });
      const exit = await replica.exited;
      assert.equal(exit.code, 2);
      assert.equal(replica.stderr, 'config error: SHUTDOWN_TIMEOUT_MS must be between 1000 and 9999 (got 15000)\n');
    });

    it('validates, prints the config without secrets and exits 0 with --check-config', async () => {
      const replica = ReplicaProcess.spawn(
        { APP_VERSION: 'green', REDIS_URL: 'redis://:hunter2@127.0.0.1:1' },
        0,
        ['--check-config'],
      );
      const exit = await replica.exited;
      assert.equal(exit.code, 0, replica.stderr);
      assert.equal(replica.logs.length, 1);
      assert.equal(replica.logs[0]?.colour, 'green');
      assert.equal(replica.logs[0]?.redisUrl, 'redis://:***@127.0.0.1:1');
    });

    it('exits 1 with one line saying why when the port is taken', async () => {
      const port = await freePort();
      const squatter = net.createServer().listen(port, '127.0.0.1');
      await new Promise((resolve) => squatter.once('listening', resolve));
      try {
        const replica = ReplicaProcess.spawn({ REDIS_URL: 'redis://127.0.0.1:1' }, port);
        const exit = await replica.exited;
        assert.equal(exit.code, 1);
        assert.match(replica.stderr, /^fatal: listen EADDRINUSE: address already in use 127\.0\.0\.1:\d+\n$/);
      } finally {
        squatter.close();
      }
    });
  });
});
