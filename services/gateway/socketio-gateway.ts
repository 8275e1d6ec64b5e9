/**
 * The socket.io gateway: the same counting semantics as /ws/chat/, over
 * socket.io events, with replicas joined by the Redis adapter.
 *
 *   client -> server  message (string[, ack])       ack gets {count}
 *   server -> client  session {session}             once, on connect
 *                     count {count}                 one per message
 *                     heartbeat {ts}                once per tick
 *                     bye {bye: true, total, code, reason}  before a server-side close
 */
import type { Server as HttpServer, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { createAdapter } from '@socket.io/redis-adapter';
import type { RedisClient } from './store/redis-client.js';
import { Server, type Socket } from 'socket.io';
import type { Config } from './config.js';
import { CLOSE, type ServerClose } from '../../shared/protocol/closes.js';
import { SOCKETIO_PATH, type CountMessage, type FleetHeartbeat, type HeartbeatMessage, type SocketIoByeMessage } from '../../shared/protocol/messages.js';
import type { ConnectionRegistry } from './connection-registry.js';
import type { FleetChannel } from './fleet-channel.js';
import type { HeartbeatPacket } from './heartbeat-packet.js';
import { engineQueuedBytes, preEncodedFrame, type EngineSendOptions } from './library-internals.js';
import { textFrame } from './text-frame.js';
import { originAllowed } from './origin-policy.js';
import type { AdmissionRefusal } from './admission.js';
import { requestIdFrom } from './request-id.js';
import { askInHandshake, recordRefusal, resolveRequest, type Resume } from './session-request.js';
import {
  ABNORMAL_CLOSURE,
  SessionConnection,
  type Ack,
  type ConnectionDeps,
  type TransportSink,
} from './session-connection.js';

interface ClientToServerEvents {
  message: (text: unknown, ack?: unknown) => void;
}

interface ServerToClientEvents {
  session: (message: { session: string }) => void;
  count: (message: CountMessage) => void;
  heartbeat: (message: HeartbeatMessage) => void;
  bye: (message: SocketIoByeMessage) => void;
}

/** Between replicas, through the Redis adapter: heartbeats and their probes. */
export interface ServerSideEvents {
  heartbeat: (message: FleetHeartbeat) => void;
}

/** The adapter's key: every channel it uses starts with it (one per Redis key prefix, shared by both colours). */
export function adapterKey(redisKeyPrefix: string): string {
  return `${redisKeyPrefix}socket.io`;
}

interface SocketData {
  sessionId: string;
  /** Where the client resumes (auth.last, auth.pending), when it said. */
  resume: Resume | undefined;
  requestId: string;
  /** The session on this socket, for the listeners, which every socket shares (no closures per socket). */
  connection?: SessionConnection;
}

type ChatServer = Server<ClientToServerEvents, ServerToClientEvents, ServerSideEvents, SocketData>;
type ChatSocket = Socket<ClientToServerEvents, ServerToClientEvents, ServerSideEvents, SocketData>;

/**
 * engine.io drops a connection whose packet exceeds its buffer, without a word to
 * the client. A message is JSON-encoded in its packet, where escaping can make it
 * up to six times longer (a control character becomes \u00XX), so the buffer
 * leaves room for the worst case and receive() enforces MAX_MESSAGE_BYTES on the
 * decoded text, with a bye and a close the client can see.
 */
const JSON_ESCAPE_FACTOR = 6;
const PACKET_OVERHEAD_BYTES = 1024;

/**
 * What a stock socket.io-client (polling first) reads when polling is off: its
 * connect_error is "xhr poll error" with `description` 403 and this message in the
 * response body (`context.responseText`).
 */
export const POLLING_DISABLED = "polling is disabled on this server: connect with transports: ['websocket']";

/** The engine.io transport a request asks for (?transport=). */
function transportOf(url: string | undefined): string | null {
  return new URL(url ?? '/', 'http://localhost').searchParams.get('transport');
}

class SocketIoSink implements TransportSink {
  readonly transport = 'socketio';

  constructor(private readonly socket: ChatSocket) {}

  sendCount(count: number, ack: Ack | undefined, replayed: boolean): void {
    const reply: CountMessage = replayed ? { count, replay: true } : { count };
    this.socket.emit('count', reply);
    ack?.(reply);
  }

  /**
   * What socket.emit('heartbeat', {ts}) writes, encoded and framed once per tick
   * (socketIoHeartbeat) instead of once per socket; engine.io writes the frame as it is
   * over WebSocket, and the packet over polling. The same readiness check as emit's.
   */
  sendHeartbeat(packet: HeartbeatPacket): void {
    const { conn } = this.socket;
    if (conn.readyState !== 'open') return;
    const { encoded, options } = packet.encoded(socketIoHeartbeat);
    conn.write(encoded, options);
  }

  sendBye(total: number, reason: ServerClose): void {
    this.socket.emit('bye', { bye: true, total, code: reason.code, reason: reason.reason });
  }

  /**
   * A close the client should recover from (drain, Redis outage) closes the
   * transport, which socket.io clients treat as a reason to reconnect; a policy
   * close is a server-side disconnect, after which they stay disconnected.
   * Both flush the bye first.
   */
  closeTransport(reason: ServerClose): void {
    if (reason.reconnect) this.socket.conn.close();
    else this.socket.disconnect(true);
  }


  /** What engine.io queued for a client that stops reading (library-internals.ts). */
  bufferedBytes(): number {
    return engineQueuedBytes(this.socket.conn);
  }

  /** socket.io offers no way to stop reading one client. */
  pauseReading(): boolean {
    return false;
  }

  resumeReading(): void {}
}

/** socket.io protocol v5: an EVENT packet (type 2) to the main namespace is the type then the JSON array. */
const EVENT_PACKET_TYPE = '2';
/** engine.io protocol v4: a "message" packet (type 4) carries a socket.io packet. */
const MESSAGE_PACKET_TYPE = '4';

/**
 * The heartbeat event as socket.io's encoder writes it (`2["heartbeat",{"ts":"..."}]`),
 * and its WebSocket frame, which engine.io sends as it is (`wsPreEncodedFrame`, the
 * option socket.io's own broadcasts use: socket.io-adapter's _encode).
 */
export function socketIoHeartbeat(packet: HeartbeatPacket): { encoded: string; options: EngineSendOptions } {
  const encoded = `${EVENT_PACKET_TYPE}["heartbeat",${packet.json}]`;
  return { encoded, options: preEncodedFrame(textFrame(MESSAGE_PACKET_TYPE + encoded)) };
}

export interface SocketIoGatewayDeps extends ConnectionDeps {
  config: Config;
  registry: ConnectionRegistry;
  /** Adapter publisher: the replica's command client. */
  redis: RedisClient;
  /** Adapter subscriber: a connection of its own (subscriber mode blocks other commands). */
  subscriber: RedisClient;
  isDraining: () => boolean;
  /** False while the session store's connection is down or stalled (see upgrade-router.ts). */
  storeReady: () => boolean;
  /** Whether the replica takes a new connection now (admission.ts). */
  refusalNow: () => AdmissionRefusal | undefined;
}

export class SocketIoGateway implements FleetChannel {
  private readonly io: ChatServer;

  constructor(
    httpServer: HttpServer,
    private readonly deps: SocketIoGatewayDeps,
  ) {
    const { config, registry } = deps;
    const withSession = this.withSession;
    this.onDisconnect = function onDisconnect(this: ChatSocket, reason: string): void {
      const { connection } = this.data;
      if (connection === undefined) return;
      withSession.delete(this.conn);
      registry.delete(connection);
      connection.transportClosed(closeCodeOf(reason));
    };
    const servesPolling = config.socketIoTransports.includes('polling');
    this.io = new Server(httpServer, {
      path: SOCKETIO_PATH,
      serveClient: false,
      // engine.io always knows both, so that a polling handshake SOCKETIO_TRANSPORTS does not
      // serve is refused below with a reason the client can read, not engine.io's bare
      // 400 {"code":0,"message":"Transport unknown"}; no polling session can start either way.
      transports: ['polling', 'websocket'],
      maxHttpBufferSize: config.maxMessageBytes * JSON_ESCAPE_FACTOR + PACKET_OVERHEAD_BYTES,
      // New engine.io sessions (polling handshakes included) are refused as admission.ts
      // says, over polling when it is off, and from pages ALLOWED_ORIGINS does not allow
      // (WebSocket upgrades were checked by the router). engine.io answers every refusal 403.
      allowRequest: (request, callback) => {
        const refused = deps.refusalNow();
        if (refused !== undefined) return callback(refused.error, false);
        if (!servesPolling && transportOf(request.url) === 'polling') {
          deps.metrics.error('socketio_polling_refused');
          return callback(POLLING_DISABLED, false);
        }
        if (originAllowed(config.allowedOrigins, request.headers)) return callback(null, true);
        deps.metrics.error('origin_refused');
        callback('origin not allowed', false);
      },
      adapter: createAdapter(publishFailuresHandled(deps.redis, () => deps.metrics.error('adapter_error')), deps.subscriber, {
        key: adapterKey(config.redisKeyPrefix),
      }),
    });
    this.io.use((socket, next) => this.authenticate(socket, next));
    this.io.on('connection', (socket) => this.accept(socket));
    this.io.of('/').adapter.on('error', (error: unknown) => {
      deps.metrics.error('adapter_error');
      deps.logger.warn('socket.io adapter error', { event: 'adapter_error', error: String(error) });
    });
  }

  /** A WebSocket upgrade the replica's router sent to /socket.io/: engine.io takes the socket from here. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.io.engine.handleUpgrade(request, socket, head);
  }

  /** Publishes once to every other replica (one Redis PUBLISH on the adapter's request channel). */
  publish(message: HeartbeatMessage): void {
    this.io.serverSideEmit('heartbeat', message);
  }

  subscribe(handler: (message: FleetHeartbeat) => void): void {
    this.io.on('heartbeat', handler);
  }

  close(): Promise<void> {
    return this.io.close();
  }

  /**
   * The engine.io connections that carry a session now. socket.io lets one connection
   * open any number of sockets (a CONNECT packet each, many to one write); a session
   * is the unit every limit counts, so a connection gets one until it closes.
   */
  private readonly withSession = new WeakSet<ChatSocket['conn']>();

  /** One disconnect listener for every socket; socket.io calls it with the socket as `this`. */
  private readonly onDisconnect: (this: ChatSocket, reason: string) => void;

  private readonly badPacket = (error: Error): void => {
    this.deps.metrics.error('socketio_bad_packet');
    this.deps.logger.info('malformed socket.io packet, connection closed', { event: 'bad_packet', error: error.message });
  };

  /** Session from auth.session (preferred) or ?session=; malformed ids fail the connect with a reason. */
  private authenticate(socket: ChatSocket, next: (error?: Error) => void): void {
    // A client multiplexing on an engine.io connection opened before the drain can
    // still send CONNECT; it gets the drain's answer, not a session.
    if (this.deps.isDraining()) return next(closeError(CLOSE.shuttingDown));
    // Likewise on a connection opened before the store went away: counting could not start.
    if (!this.deps.storeReady()) return next(closeError(CLOSE.storeUnavailable));
    const { handshake } = socket;
    socket.data.requestId = requestIdFrom(handshake.headers);
    if (this.withSession.has(socket.conn)) {
      recordRefusal(this.deps, CLOSE.sessionPerConnection, socket.data.requestId, 'socketio');
      return next(closeError(CLOSE.sessionPerConnection));
    }
    const asked = resolveRequest(askInHandshake(handshake.auth, handshake.query), this.deps.maxInflight);
    if ('refused' in asked) {
      recordRefusal(this.deps, asked.refused, socket.data.requestId, 'socketio');
      return next(closeError(asked.refused));
    }
    socket.data.sessionId = asked.sessionId;
    socket.data.resume = asked.resume;
    this.withSession.add(socket.conn);
    next();
  }

  private accept(socket: ChatSocket): void {
    const { sessionId, requestId, resume } = socket.data;
    const connection = new SessionConnection(sessionId, new SocketIoSink(socket), requestId, this.deps, resume);
    socket.data.connection = connection;
    socket.on('message', onMessage);
    // A packet socket.io cannot decode: it reports it here (else it prints a stack to stderr)
    // and closes the connection. One shared listener: no closure per socket.
    socket.on('error', this.badPacket);
    socket.on('disconnect', this.onDisconnect);
    this.deps.registry.add(connection);
    socket.emit('session', { session: sessionId });
    connection.open();
  }
}

/** A client's message, shared by every socket; socket.io calls it with the socket as `this`. */
function onMessage(this: ChatSocket, text: unknown, ack?: unknown): void {
  const { connection } = this.data;
  const reply = typeof ack === 'function' ? (ack as Ack) : undefined;
  if (typeof text === 'string') connection?.receive(Buffer.byteLength(text), reply);
  else connection?.close(CLOSE.binaryFrame);
}

/**
 * The adapter calls PUBLISH and drops the promise. A publish that fails (Redis slower
 * than REDIS_COMMAND_TIMEOUT_MS, or a connection lost mid-command) would surface as an
 * unhandled rejection; this client counts it as an adapter error instead. Everything
 * else goes to the real client untouched.
 */
function publishFailuresHandled(redis: RedisClient, onFailure: () => void): RedisClient {
  return new Proxy(redis, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (property !== 'publish' || typeof value !== 'function') return value;
      return (...args: unknown[]): Promise<unknown> => {
        const published = (value as (...publishArgs: unknown[]) => Promise<unknown>).apply(target, args);
        published.catch(onFailure);
        return published;
      };
    },
  });
}

/**
 * socket.io reports why a socket went, not the WebSocket close code: a client's
 * disconnect() is a normal close, its transport closing (a tab closed) one
 * without a status, anything else (ping timeout, transport error) abnormal.
 */
function closeCodeOf(reason: string): number {
  if (reason === 'client namespace disconnect') return 1000;
  if (reason === 'transport close') return 1005;
  return ABNORMAL_CLOSURE;
}

/** A refused connect: the client's connect_error carries the reason and its close code. */
function closeError(reason: ServerClose): Error {
  return Object.assign(new Error(reason.reason), { data: { code: reason.code, reason: reason.reason } });
}
