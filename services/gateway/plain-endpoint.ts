/**
 * The plain RFC 6455 endpoint at /ws/chat/: any WebSocket client (browsers,
 * wscat, Python websockets) gets {"count": n} per text message.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { sessionTag, type LogContext } from './logger.js';
import { CLOSE, type ServerClose } from '../../shared/protocol/closes.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { closeForReceiverError, type ReceiverError } from './receiver-errors.js';
import { askInQuery, recordRefusal, resolveRequest, type Refusal, type Resume } from './session-request.js';
import { SessionConnection, type ConnectionDeps, type TransportSink } from './session-connection.js';
import type { HeartbeatPacket } from './heartbeat-packet.js';
import { textFrame } from './text-frame.js';

/** A plain socket's heartbeat: its JSON in one text frame. */
export function plainHeartbeatFrame(packet: HeartbeatPacket): Buffer {
  return textFrame(packet.json);
}

/**
 * ws closes the socket itself when its frame parser rejects input: its receiver's
 * error handler calls `close(code)` (a code and no reason; every other caller of
 * close() passes a reason, ws's echo of a client's close included), then emits
 * 'error' with the rejection in the same tick (lib/websocket.js, receiverOnError).
 * While a session owns the socket, that close is left to the 'error' listener,
 * which routes the rejection through the session's one close path: the close
 * the rejection calls for, with its reason, counted and logged.
 *
 * A client's own close frame (any valid code, 1002 and 1007 included) goes
 * straight to ws, which echoes it (RFC 6455 §5.5.1): nothing follows it.
 */
export class ChatWebSocket extends WebSocket {
  /** True while a SessionConnection owns the socket and closes it on a parser error. */
  receiverErrorsRouted = false;
  /** Answered the last liveness ping (or has not been pinged yet). */
  alive = true;
  /** The session on this socket, for the listeners, which are shared by every socket (no closures per socket). */
  connection: SessionConnection | undefined;

  override close(code?: number, data?: string | Buffer): void {
    const fromReceiver = code !== undefined && data === undefined;
    if (fromReceiver && this.receiverErrorsRouted && this.readyState === WebSocket.OPEN) return;
    super.close(code, data);
  }
}

/** RFC 6455 §5.5.2: a final ping frame with no payload, unmasked (a server's). */
const PING_FRAME = Buffer.from([0x89, 0x00]);

class PlainSink implements TransportSink {
  readonly transport = 'plain';

  /** `socket` is the one `ws` runs on: whole frames built here go to it in one write (text-frame.ts). */
  constructor(
    readonly ws: ChatWebSocket,
    private readonly socket: Duplex,
  ) {}

  sendCount(count: number): void {
    // Hot path: the same bytes as JSON.stringify({ count }) for an integer, without the generic walk.
    this.write(textFrame(`{"count":${count}}`));
  }

  /** The same frame, built by the first socket of the tick, to every socket. */
  sendHeartbeat(packet: HeartbeatPacket): void {
    this.write(packet.encoded(plainHeartbeatFrame));
  }

  /** The liveness ping: one empty ping frame, the same bytes ws.ping() writes, shared by every socket. */
  ping(): void {
    this.write(PING_FRAME);
  }

  /** What ws.send() does with a text frame once the socket is open, in one write; nothing once it is not. */
  private write(frame: Buffer): void {
    if (this.ws.readyState === WebSocket.OPEN) this.socket.write(frame);
  }

  /** The close frame that follows carries the code and reason. */
  sendBye(total: number): void {
    this.ws.send(JSON.stringify({ bye: true, total }));
  }

  close(reason: ServerClose): void {
    this.ws.receiverErrorsRouted = false;
    this.ws.close(reason.code, reason.reason);
  }

  bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  pause(): boolean {
    this.ws.pause();
    return true;
  }

  resume(): void {
    this.ws.resume();
  }
}

export interface PlainEndpointDeps extends ConnectionDeps {
  registry: ConnectionRegistry;
  /** Liveness period: a peer that has not answered the previous ping is dropped. */
  pingIntervalMs: number;
  /** MAX_MESSAGE_FRAGMENTS: frames one message may arrive in. */
  maxMessageFragments: number;
}

export class PlainEndpoint {
  private readonly wss: WebSocketServer;
  /** Session id chosen for each upgrade, read back when ws writes the 101 headers. */
  private readonly sessionIds = new WeakMap<IncomingMessage, string>();
  /**
   * Each plain session's socket, for the liveness sweep, which walks the registry's
   * sessions (socket.io runs its own ping/pong). A lookup, not a second set of live
   * sockets: it holds nothing the registry has let go of.
   */
  private readonly socketOf = new WeakMap<SessionConnection, PlainSink>();
  private livenessTimer: NodeJS.Timeout | undefined;
  /** The wall-clock instant the last sweep was scheduled for. */
  private lastSweep = 0;
  /** One close listener for every socket of this endpoint; ws calls it with the socket as `this`. */
  private readonly onClose: (this: WebSocket, code: number) => void;

  constructor(private readonly deps: PlainEndpointDeps) {
    const { registry } = deps;
    this.onClose = function onClose(this: WebSocket, code: number): void {
      const { connection } = chat(this);
      if (connection === undefined) return;
      registry.delete(connection);
      connection.transportClosed(code);
    };
    this.wss = new WebSocketServer({
      noServer: true,
      WebSocket: ChatWebSocket,
      maxPayload: deps.maxMessageBytes,
      maxFragments: deps.maxMessageFragments,
      clientTracking: false,
      perMessageDeflate: false,
      // The service speaks no subprotocol: select none (ws would echo the client's first).
      handleProtocols: () => false,
    });
    this.wss.on('headers', (headers, request) => {
      const sessionId = this.sessionIds.get(request);
      if (sessionId !== undefined) headers.push(`X-Session-Id: ${sessionId}`);
    });
  }

  /**
   * A peer that vanished without a FIN (a closed laptop, a NAT that forgot the
   * flow) would hold its socket forever; every interval, sockets that did not
   * answer the previous ping are dropped and the others are pinged.
   *
   * Sweeps fall half-way between two wall-clock multiples of the interval. The
   * interval is HEARTBEAT_INTERVAL_MS, whose ticks fall on those multiples: a sweep
   * started at any other phase could land on a tick, and the tick's fan-out would
   * wait behind a ping to every socket (seen in the 15,000-socket fan-out runs,
   * docs/benchmarks.md).
   */
  startLiveness(): void {
    if (this.livenessTimer === undefined) this.scheduleSweep();
  }

  stopLiveness(): void {
    clearTimeout(this.livenessTimer);
    this.livenessTimer = undefined;
  }

  private scheduleSweep(): void {
    const interval = this.deps.pingIntervalMs;
    const now = Date.now();
    // A timer may fire a little early on the wall clock: never sweep twice within an
    // interval, or the second would drop every socket whose pong is still on its way.
    const aligned = Math.floor((now - interval / 2) / interval) * interval + interval + interval / 2;
    const next = Math.max(aligned, this.lastSweep + interval);
    this.livenessTimer = setTimeout(() => {
      this.lastSweep = next;
      this.sweep();
      this.scheduleSweep();
    }, next - now);
  }

  private sweep(): void {
    this.deps.registry.forEach((connection) => {
      const sink = this.socketOf.get(connection);
      if (sink !== undefined) this.checkLiveness(sink);
    });
  }

  private checkLiveness(sink: PlainSink): void {
    const { ws } = sink;
    // A socket paused for backpressure cannot have read its pong: its silence is ours.
    if (ws.isPaused) {
      ws.alive = true;
      return;
    }
    if (!ws.alive) {
      this.deps.metrics.error('peer_unresponsive');
      ws.terminate();
      return;
    }
    ws.alive = false;
    sink.ping();
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): void {
    const asked = resolveRequest(askInQuery(request.url));
    if (!('refused' in asked)) this.sessionIds.set(request, asked.sessionId);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const chat = ws as ChatWebSocket;
      if ('refused' in asked) this.refuse(chat, asked.refused, requestId);
      else this.accept(chat, socket, asked.sessionId, asked.resume, requestId);
    });
  }

  /**
   * A malformed session id or resume position is refused after the handshake, with
   * its close (4500, 4506) and reason: browsers can read a close reason but not the
   * status of a failed handshake. There is no session, so nothing is counted and no
   * bye is sent.
   */
  private refuse(ws: ChatWebSocket, refused: Refusal, requestId: string): void {
    recordRefusal(this.deps, refused, requestId, 'plain');
    ws.on('error', () => undefined);
    ws.close(refused.code, refused.reason);
  }

  private accept(ws: ChatWebSocket, socket: Duplex, sessionId: string, resume: Resume | undefined, requestId: string): void {
    const context: LogContext = { request_id: requestId, session: sessionTag(sessionId), transport: 'plain' };
    const sink = new PlainSink(ws, socket);
    const connection = new SessionConnection(sessionId, sink, context, this.deps, resume);
    ws.receiverErrorsRouted = true;
    ws.connection = connection;
    ws.on('message', onMessage);
    ws.on('pong', onPong);
    ws.on('close', this.onClose);
    // Only ws's frame parser emits 'error' here (socket errors end in 'close'; deflate is off).
    ws.on('error', onReceiverError);
    this.socketOf.set(connection, sink);
    this.deps.registry.add(connection);
    connection.open();
  }
}

/** Every socket of the endpoint is one: the server is built with `WebSocket: ChatWebSocket`. */
function chat(ws: WebSocket): ChatWebSocket {
  return ws as ChatWebSocket;
}

/** The listeners every session's socket shares; ws calls them with the socket as `this`. */
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  const { connection } = chat(this);
  if (isBinary) connection?.close(CLOSE.binaryFrame);
  else connection?.receive(byteLength(data));
}

function onPong(this: WebSocket): void {
  chat(this).alive = true;
}

function onReceiverError(this: WebSocket, error: ReceiverError): void {
  chat(this).connection?.close(closeForReceiverError(error), error.code);
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data.byteLength;
}
