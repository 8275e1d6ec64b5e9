/**
 * The release smoke test's seat on the fleet channel: a socket.io server with no
 * HTTP side and the same Redis adapter, on the same Redis and key, as every replica.
 * It publishes heartbeat probes (shared/protocol/messages.ts, HeartbeatProbe) exactly as a
 * replica that won a tick publishes the tick: one serverSideEmit('heartbeat'), one
 * PUBLISH on the adapter's request channel. A replica that receives the fleet's
 * heartbeats receives the probe within milliseconds and writes it to the probed
 * session's sockets; one that does not never does.
 */
import { createAdapter } from '@socket.io/redis-adapter';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { loadConfig } from '../../services/gateway/config.js';
import { adapterKey, type ServerSideEvents } from '../../services/gateway/socketio-gateway.js';

export class FleetProbe {
  private lastTs = 0;

  private constructor(
    private readonly io: Server<Record<string, never>, Record<string, never>, ServerSideEvents>,
    private readonly clients: Redis[],
    private readonly heartbeatIntervalMs: number,
  ) {}

  /**
   * Joins the fleet channel of the Redis at `redisUrl`, with the key prefix the
   * replicas resolve from the same environment (REDIS_KEY_PREFIX, else the default).
   */
  static async open(redisUrl: string, heartbeatIntervalMs: number): Promise<FleetProbe> {
    const config = loadConfig({ ...process.env, REDIS_URL: redisUrl });
    const publisher = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    const subscriber = publisher.duplicate();
    await Promise.all([publisher.connect(), subscriber.connect()]);
    const io = new Server<Record<string, never>, Record<string, never>, ServerSideEvents>({
      adapter: createAdapter(publisher, subscriber, { key: adapterKey(config.redisKeyPrefix) }),
    });
    return new FleetProbe(io, [publisher, subscriber], heartbeatIntervalMs);
  }

  /**
   * Publishes one probe for `session` and returns its ts: an instant no tick falls
   * on (ticks are multiples of the interval), distinct from every earlier probe, so
   * only the probe itself can satisfy a client waiting for that ts.
   */
  send(session: string): string {
    let ms = Math.max(Date.now(), this.lastTs + 1);
    if (ms % this.heartbeatIntervalMs === 0) ms += 1;
    this.lastTs = ms;
    const ts = new Date(ms).toISOString();
    this.io.serverSideEmit('heartbeat', { ts, probe: session });
    return ts;
  }

  /** Leaves the channel (a server without an HTTP side has no engine to close: only its adapter and clients). */
  async close(): Promise<void> {
    await this.io.of('/').adapter.close();
    this.clients.forEach((client) => client.disconnect());
  }
}
