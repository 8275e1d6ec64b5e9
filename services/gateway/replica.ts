/**
 * One replica: wires config, Redis, the HTTP server, both socket endpoints and
 * the heartbeat, and owns the lifecycle (lifecycle.ts: starting -> running ->
 * draining -> stopped), which drives /readyz, upgrade refusal and the drain sequence.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from './config.js';
import { DRAIN_RESERVE_MS, type Deadline } from './drain-deadline.js';
import { createLogger, errorFields, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { CLOSE, type KnownClose } from '../../shared/protocol/closes.js';
import { createRedisClient, type RedisClient, type RedisHandle } from './store/redis-client.js';
import { RedisSessionStore } from './store/session-store.js';
import { ShutdownLedger } from './store/shutdown-ledger.js';
import { registerRedisMemory } from './store/redis-memory.js';
import { ConnectionRegistry } from './connection-registry.js';
import { Heartbeat } from './heartbeat.js';
import { answerClientError } from './http-client-error.js';
import { createHttpApp, type Readiness } from './http-app.js';
import { originAllowed } from './origin-policy.js';
import { refusalNow, type AdmissionRefusal } from './admission.js';
import { Lifecycle } from './lifecycle.js';
import { detachEngineUpgrades } from './library-internals.js';
import { PlainEndpoint } from './plain-endpoint.js';
import { SocketIoGateway } from './socketio-gateway.js';
import { UpgradeRouter } from './upgrade-router.js';
import { FAN_OUT_SLICE, SlicedWalk } from './sliced-walk.js';
import type { SessionConnection } from './session-connection.js';

export class Replica {
  readonly logger: Logger;
  readonly metrics = new Metrics();
  private readonly registry = new ConnectionRegistry();
  private readonly redisHandle: RedisHandle;
  private readonly subscriberHandle: RedisHandle;
  private readonly redis: RedisClient;
  private readonly subscriber: RedisClient;
  private readonly httpServer: http.Server;
  private readonly gateway: SocketIoGateway;
  private readonly plain: PlainEndpoint;
  private readonly heartbeat: Heartbeat;
  private readonly ledger: ShutdownLedger;
  /** Collects the shutdown reports while the replica runs (collectShutdownReports). */
  private reportsTimer: NodeJS.Timeout | undefined;
  private readonly lifecycle = new Lifecycle();
  private readyLogged = false;
  private drain: Promise<void> | undefined;

  constructor(private readonly config: Config) {
    this.logger = createLogger({ level: config.logLevel, replica: config.replicaId, version: config.colour });
    const redisEvents = {
      config,
      logger: this.logger,
      onError: () => this.metrics.error('redis'),
      onStateChange: () => this.readinessChanged(),
    };
    this.redisHandle = createRedisClient({
      ...redisEvents,
      role: 'commands',
      // Redis stopped answering (a partition): no count can be confirmed here until the
      // reconnect, so every client moves now (bye + 1013) instead of at its next message.
      onStall: () => void this.closeAll(CLOSE.storeUnavailable),
    });
    this.subscriberHandle = createRedisClient({ ...redisEvents, role: 'subscriber' });
    this.redis = this.redisHandle.client;
    this.subscriber = this.subscriberHandle.client;
    this.ledger = new ShutdownLedger(this.redis, config.redisKeyPrefix);
    registerRedisMemory(this.redis, this.metrics.registry);

    const connectionDeps = {
      store: new RedisSessionStore(this.redis, {
        keyPrefix: config.redisKeyPrefix,
        keySecret: config.sessionKeySecret,
        adoptLegacyKeys: config.redisTopology.mode !== 'cluster',
        ttlSeconds: config.sessionTtlSeconds,
        maxResumeAhead: config.maxResumeAhead,
      }),
      metrics: this.metrics,
      logger: this.logger,
      registry: this.registry,
      maxMessageBytes: config.maxMessageBytes,
      maxInflight: config.maxInflightPerConnection,
      maxMessagesPerSecond: config.maxMessagesPerSecond,
      maxBufferedBytes: config.maxBufferedBytes,
    };
    const app = createHttpApp({
      version: config.colour,
      metrics: this.metrics,
      logger: this.logger,
      readiness: () => this.readiness(),
      isDraining: () => this.isDraining(),
    });
    // A request must bring its whole headers within HTTP_HEADERS_TIMEOUT_MS (slowloris);
    // Node checks its connections for that every connectionsCheckingInterval.
    const headersTimeout = config.httpHeadersTimeoutMs;
    this.httpServer = http.createServer(
      { headersTimeout, requestTimeout: headersTimeout, connectionsCheckingInterval: Math.min(1000, headersTimeout) },
      app,
    );
    this.gateway = new SocketIoGateway(this.httpServer, {
      ...connectionDeps,
      config,
      redis: this.redis,
      subscriber: this.subscriber,
      isDraining: () => this.isDraining(),
      storeReady: () => this.storeReady(),
      refusalNow: () => this.refusalNow(),
    });
    // engine.io installed its own upgrade listener; one router owns every upgrade instead,
    // so that draining and unknown paths are answered the same way on both endpoints.
    detachEngineUpgrades(this.httpServer);
    const plain = new PlainEndpoint({
      ...connectionDeps,
      pingIntervalMs: config.heartbeatIntervalMs,
      maxMessageFragments: config.maxMessageFragments,
    });
    this.plain = plain;
    const upgrades = new UpgradeRouter({
      refusalNow: () => this.refusalNow(),
      originAllowed: (request) => originAllowed(config.allowedOrigins, request.headers),
      plain: (request, socket, head, requestId) => plain.handleUpgrade(request, socket, head, requestId),
      socketIo: (request, socket, head) => this.gateway.handleUpgrade(request, socket, head),
      metrics: this.metrics,
      registry: this.registry,
    });
    this.httpServer.on('upgrade', upgrades.handle);
    this.httpServer.on('clientError', (error: Error & { code?: string }, socket) => answerClientError(this.metrics, error, socket));
    this.heartbeat = new Heartbeat({
      config,
      redis: this.redis,
      fleet: this.gateway,
      registry: this.registry,
      metrics: this.metrics,
      logger: this.logger,
    });
  }

  /** Listens and starts the heartbeat; /readyz turns 200 once both Redis connections are ready too. */
  async start(): Promise<AddressInfo> {
    const { port, host } = this.config;
    await new Promise<void>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(port, host, () => {
        this.httpServer.off('error', reject);
        resolve();
      });
    });
    // A signal during listen() has started the drain already: the replica never runs.
    if (this.lifecycle.phase !== 'starting') return this.httpServer.address() as AddressInfo;
    this.lifecycle.enter('running');
    this.heartbeat.start();
    this.plain.startLiveness();
    // Once a heartbeat interval: a drain's report reaches /metrics within one interval,
    // on a timer of its own so that it does not depend on the heartbeat's ticks.
    this.reportsTimer = setInterval(() => void this.collectShutdownReports(), this.config.heartbeatIntervalMs);
    this.readinessChanged();
    return this.httpServer.address() as AddressInfo;
  }

  isDraining(): boolean {
    return this.lifecycle.draining;
  }

  /** The command connection counts go through is up and answering (a stalled one has been replaced and is reconnecting). */
  /** Whether a new connection is taken now (admission.ts). */
  private refusalNow(): AdmissionRefusal | undefined {
    return refusalNow({
      isDraining: () => this.isDraining(),
      storeReady: () => this.storeReady(),
      openSockets: () => this.registry.openSockets,
      maxConnections: this.config.maxConnections,
    });
  }

  storeReady(): boolean {
    return this.redis.status === 'ready';
  }

  readiness(): Readiness {
    const reasons: string[] = [];
    if (this.lifecycle.phase === 'starting') reasons.push('starting');
    if (this.isDraining()) reasons.push('draining');
    if (!this.storeReady()) reasons.push('redis');
    if (this.subscriber.status !== 'ready') reasons.push('adapter');
    return { ready: reasons.length === 0, reasons };
  }

  private readinessChanged(): void {
    const { ready } = this.readiness();
    this.metrics.ready.set(ready ? 1 : 0);
    const redisUp = this.redis.status === 'ready' && this.subscriber.status === 'ready';
    this.metrics.redisConnected.set(redisUp ? 1 : 0);
    if (ready && !this.readyLogged) {
      this.readyLogged = true;
      void this.collectShutdownReports();
      this.logger.info('replica ready', {
        event: 'ready',
        startup_ms: Math.round(performance.now()),
        port: (this.httpServer.address() as AddressInfo | null)?.port,
      });
    }
  }

  /** Observes the drain times that exited replicas left in Redis (see store/shutdown-ledger.ts). */
  private async collectShutdownReports(): Promise<void> {
    if (this.redis.status !== 'ready') return;
    try {
      for (const report of await this.ledger.collect()) this.metrics.shutdownDuration.observe(report.seconds);
    } catch (error) {
      this.logger.debug('shutdown reports not collected', errorFields(error));
    }
  }

  /**
   * The drain. In order: readiness 503 and upgrades refused; heartbeat stopped;
   * every connection answers the messages it already received, then gets a bye
   * and close 1001; closing handshakes are awaited until DRAIN_RESERVE_MS before
   * `deadline`, stragglers dropped; the duration reported to Redis; Redis closed.
   * Idempotent: a second call gets the first drain, whatever its deadline.
   */
  shutdown(signal: string, deadline: Deadline): Promise<void> {
    this.drain ??= this.runDrain(signal, deadline);
    return this.drain;
  }

  private async runDrain(signal: string, deadline: Deadline): Promise<void> {
    const started = performance.now();
    const elapsed = (): number => Math.round(performance.now() - started);
    this.lifecycle.enter('draining');
    this.readinessChanged();
    this.logger.info('shutdown started: not ready, refusing upgrades', {
      event: 'shutdown_begin',
      signal,
      connections: this.registry.size,
    });
    this.heartbeat.stop();
    this.plain.stopLiveness();
    clearInterval(this.reportsTimer);

    await this.closeAll(CLOSE.shuttingDown);
    // Every upgraded socket, not only the sessions: a refused one or a transport
    // still in its closing handshake holds the HTTP server open just the same.
    const allClosed = await this.registry.whenAllClosed(deadline.before(DRAIN_RESERVE_MS).remainingMs());
    const terminated = allClosed ? 0 : this.registry.destroyAll();
    this.logger.info('sockets closed', { event: 'shutdown_sockets_closed', elapsed_ms: elapsed(), terminated });

    // socket.io's close also closes the HTTP server; keep-alive probe connections are cut.
    const closing = this.gateway.close();
    this.httpServer.closeAllConnections();
    await closing;

    const durationMs = elapsed();
    this.metrics.shutdownDuration.observe(durationMs / 1000);
    await this.reportShutdown(durationMs);
    await Promise.all([this.redisHandle.quit(), this.subscriberHandle.quit()]);
    this.lifecycle.enter('stopped');
    // `terminated`: sockets that did not finish their closing handshake in time and were cut.
    this.logger.info('shutdown complete', { event: 'shutdown_complete', duration_ms: elapsed(), terminated });
  }

  /**
   * Closes every session, in slices (sliced-walk.ts), so /readyz, /metrics and the
   * replies of the sessions not closed yet are answered meanwhile. A live walk: a
   * session that opens during it is closed too (there should be none: upgrades and
   * socket.io connects are refused while draining or while the store is down).
   * Resolves once every session was asked to close, not once their sockets closed.
   */
  private closeAll(reason: KnownClose): Promise<void> {
    const close = (connection: SessionConnection): void => connection.close(reason);
    return new SlicedWalk(this.registry.walk(), close, FAN_OUT_SLICE).start().completed;
  }

  private async reportShutdown(durationMs: number): Promise<void> {
    try {
      await this.ledger.record({
        replica: this.config.replicaId,
        version: this.config.colour,
        seconds: durationMs / 1000,
        at: new Date().toISOString(),
      });
    } catch (error) {
      this.logger.warn('shutdown duration not reported to redis', { event: 'shutdown_report_failed', ...errorFields(error) });
    }
  }
}
