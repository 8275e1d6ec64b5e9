/**
 * The plain RFC 6455 endpoint at /ws/chat/: any WebSocket client (browsers,
 * wscat, Python websockets) gets {"count": n} per text message.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { CLOSE, type ServerClose } from '../../shared/protocol/closes.js';
import type { ConnectionRegistry } from './connection-registry.js';
import { closeForReceiverError, type ReceiverError } from './receiver-errors.js';
import { askInQuery, recordRefusal, resolveRequest, type Refusal, type Resume } from './session-request.js';
import { SessionConnection, type ConnectionDeps, type TransportSink } from './session-connection.js';
import type { HeartbeatPacket } from './heartbeat-packet.js';
import { isReceiverClose, writeBesideSender } from './library-internals.js';
import { elapsedSince, LivenessSweep, type LivenessPeer } from './liveness-sweep.js';
import { textFrame } from './text-frame.js';
import { destroyOnError } from './upgrade-router.js';

/** A plain socket's heartbeat: its JSON in one text frame. */
export function plainHeartbeatFrame(packet: HeartbeatPacket): Buffer {
  return textFrame(packet.json);
}

/** RFC 6455 §5.5.2: a final ping frame with no payload, unmasked (a server's). */
const PING_FRAME = Buffer.from([0x89, 0x00]);

/** `readAtPing` of a socket that owes no answer (not pinged yet, or skipped while paused): no byte count equals it. */
const NOT_PINGED = -1;

/**
 * Every socket of the endpoint (the server is built with `WebSocket: ChatWebSocket`),
 * and the transport sink of the session on it: the socket is the sink, so an idle
 * socket holds no sink object of its own and the liveness sweep finds the socket
 * through its session (no lookup table). Its methods are named apart from ws's own
 * (`ping`, `close`, `pause`, `resume`).
 *
 * ws closes the socket itself when its frame parser rejects input, then emits 'error'
 * with the rejection (library-internals.ts, isReceiverClose). While a session owns
 * the socket, that close is left to the 'error' listener,
 * which routes the rejection through the session's one close path: the close
 * the rejection calls for, with its reason, counted and logged.
 *
 * A client's own close frame (any valid code, 1002 and 1007 included) goes
 * straight to ws, which echoes it (RFC 6455 §5.5.1): nothing follows it.
 */
export class ChatWebSocket extends WebSocket implements TransportSink, LivenessPeer {
  /**
   * The session on this socket, for the listeners, which are shared by every socket
   * (no closures per socket). Set, it also routes parser errors through the session.
   */
  connection: SessionConnection | undefined = undefined;
  /**
   * The TCP socket ws runs on: whole frames built here go to it in one write
   * (text-frame.ts), and its byte count tells the liveness sweep that the peer answered.
   */
  rawSocket: Duplex | undefined = undefined;
  /** The socket's bytesRead when it was last pinged; NOT_PINGED when it owes no answer. */
  readAtPing = NOT_PINGED;
  /** When it was last pinged, on the liveness clock. */
  pingedAt = 0;

  override close(code?: number, data?: string | Buffer): void {
    if (isReceiverClose(code, data) && this.connection !== undefined && this.readyState === WebSocket.OPEN) return;
    super.close(code, data);
  }

  get transport(): 'plain' {
    return 'plain';
  }

  sendCount(count: number): void {
    // Hot path: the same bytes as JSON.stringify({ count }) for an integer, without the generic walk.
    this.write(textFrame(`{"count":${count}}`));
  }

  /** The same frame, built by the first socket of the tick, to every socket. */
  sendHeartbeat(packet: HeartbeatPacket): void {
    this.write(packet.encoded(plainHeartbeatFrame));
  }

  /**
   * The liveness sweep's visit at `now` (livenessClock(), liveness-sweep.ts). A peer
   * that sent anything since the last ping (its pong or any frame) is pinged again,
   * with one empty ping frame, the same bytes ws.ping() writes, shared by every
   * socket. Any byte read proves the path to the peer alive as a pong does, and
   * counting bytes needs no 'pong' listener, whose fourth event name would grow every socket's listener table.
   * A peer that sent nothing is given until its ping is `patienceMs` old; false after.
   */
  answersPings(now: number, patienceMs: number): boolean {
    const read = bytesRead(this.rawSocket);
    if (read === this.readAtPing) return elapsedSince(this.pingedAt, now) < patienceMs;
    this.readAtPing = read;
    this.pingedAt = now;
    this.write(PING_FRAME);
    return true;
  }

  /** What ws.send() does with a text frame once the socket is open, in one write; nothing once it is not. */
  private write(frame: Buffer): void {
    if (this.readyState === WebSocket.OPEN) writeBesideSender(this.rawSocket, frame);
  }

  /** The close frame that follows carries the code and reason. */
  sendBye(total: number): void {
    this.send(JSON.stringify({ bye: true, total }));
  }

  /** With a reason, so the override above lets it through. */
  closeTransport(reason: ServerClose): void {
    this.close(reason.code, reason.reason);
  }

  bufferedBytes(): number {
    return this.bufferedAmount;
  }

  pauseReading(): boolean {
    this.pause();
    return true;
  }

  resumeReading(): void {
    this.resume();
  }

  /** Paused for backpressure: the server is not reading it, so its silence is ours. */
  excuseSilence(): void {
    this.readAtPing = NOT_PINGED;
  }
}

/** An upgraded socket is a net.Socket (or a TLS one), which counts what it read; the Duplex type does not say so. */
function bytesRead(socket: Duplex | undefined): number {
  return (socket as { bytesRead?: number } | undefined)?.bytesRead ?? 0;
}

export interface PlainEndpointDeps extends ConnectionDeps {
  registry: ConnectionRegistry;
  /** Liveness period: each socket is pinged once per period, and dropped once a ping is a period old unanswered. */
  pingIntervalMs: number;
  /** MAX_MESSAGE_FRAGMENTS: frames one message may arrive in. */
  maxMessageFragments: number;
}

export class PlainEndpoint {
  private readonly wss: WebSocketServer;
  /** Session id chosen for each upgrade, read back when ws writes the 101 headers. */
  private readonly sessionIds = new WeakMap<IncomingMessage, string>();
  private readonly liveness: LivenessSweep;
  /** One close listener for every socket of this endpoint; ws calls it with the socket as `this`. */
  private readonly onClose: (this: WebSocket, code: number) => void;

  constructor(private readonly deps: PlainEndpointDeps) {
    const { registry } = deps;
    this.liveness = new LivenessSweep({ registry, metrics: deps.metrics, intervalMs: deps.pingIntervalMs, peerOf: chatPeer });
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

  /** Pings every plain socket once per interval and drops the ones that stopped answering (liveness-sweep.ts). */
  startLiveness(): void {
    this.liveness.start();
  }

  stopLiveness(): void {
    this.liveness.stop();
  }

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer, requestId: string): void {
    const asked = resolveRequest(askInQuery(request.url), this.deps.maxInflight);
    if (!('refused' in asked)) this.sessionIds.set(request, asked.sessionId);
    this.wss.handleUpgrade(request, socket, head, (ws) => {
      const chat = ws as ChatWebSocket;
      // ws listens for the socket's errors now (and destroys it on one), as the router did
      // until here: one listener, not two in an array, for the socket's life.
      socket.removeListener('error', destroyOnError);
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
    ws.rawSocket = socket;
    const connection = new SessionConnection(sessionId, ws, requestId, this.deps, resume);
    ws.connection = connection;
    // No 'pong' listener: the liveness sweep counts the bytes read instead (ChatWebSocket.answersPings).
    ws.on('message', onMessage);
    ws.on('close', this.onClose);
    // Only ws's frame parser emits 'error' here (socket errors end in 'close'; deflate is off).
    ws.on('error', onReceiverError);
    this.deps.registry.add(connection);
    connection.open();
  }
}

/** A plain session's sink is its socket; socket.io runs its own ping/pong. */
function chatPeer({ sink }: SessionConnection): ChatWebSocket | undefined {
  return sink instanceof ChatWebSocket ? sink : undefined;
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

function onReceiverError(this: WebSocket, error: ReceiverError): void {
  chat(this).connection?.close(closeForReceiverError(error), error.code);
}

function byteLength(data: RawData): number {
  if (Array.isArray(data)) return data.reduce((sum, chunk) => sum + chunk.length, 0);
  return data.byteLength;
}
