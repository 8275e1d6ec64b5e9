/**
 * Test clients that record everything they receive, in order, so tests can
 * assert on whole sequences (counts, heartbeats, bye, close).
 */
import type { IncomingMessage } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import WebSocket, { type RawData } from 'ws';
import { eventually, withTimeout } from './processes.js';

export type Frame = { count: number } | { ts: string } | { bye: true; total: number } | Record<string, unknown>;

export interface Closed {
  code: number;
  reason: string;
}

function isCount(frame: Frame): frame is { count: number } {
  return typeof (frame as { count?: unknown }).count === 'number';
}

function isHeartbeat(frame: Frame): frame is { ts: string } {
  return typeof (frame as { ts?: unknown }).ts === 'string';
}

function isBye(frame: Frame): frame is { bye: true; total: number } {
  return (frame as { bye?: unknown }).bye === true;
}

/** What both kinds of client record. */
abstract class RecordingClient {
  readonly frames: Frame[] = [];

  counts(): number[] {
    return this.frames.filter(isCount).map((frame) => frame.count);
  }

  heartbeats(): string[] {
    return this.frames.filter(isHeartbeat).map((frame) => frame.ts);
  }

  bye(): { bye: true; total: number } | undefined {
    return this.frames.find(isBye);
  }

  /** Frames other than heartbeats, which may arrive at any time. */
  replies(): Frame[] {
    return this.frames.filter((frame) => !isHeartbeat(frame));
  }

  async waitForCounts(n: number, timeoutMs = 5000): Promise<number[]> {
    await eventually(() => this.counts().length >= n, `${n} counts (have ${this.counts().length})`, timeoutMs);
    return this.counts();
  }
}

export class PlainClient extends RecordingClient {
  closed: Closed | undefined;
  readonly closedPromise: Promise<Closed>;
  private constructor(
    readonly ws: WebSocket,
    readonly sessionId: string | undefined,
  ) {
    super();
    ws.on('message', (data, isBinary) => {
      if (!isBinary) this.frames.push(JSON.parse(textOf(data)) as Frame);
    });
    this.closedPromise = new Promise((resolve) => {
      ws.on('close', (code, reason) => {
        this.closed = { code, reason: reason.toString() };
        resolve(this.closed);
      });
    });
  }

  /** Opens /ws/chat/ (optionally resuming `session`) and resolves once the socket is open. */
  static connect(url: string, session?: string, headers: Record<string, string> = {}): Promise<PlainClient> {
    const target = session === undefined ? url : `${url}?session=${encodeURIComponent(session)}`;
    const ws = new WebSocket(target, { headers });
    return new Promise((resolve, reject) => {
      let sessionId: string | undefined;
      ws.once('upgrade', (response: IncomingMessage) => {
        const header = response.headers['x-session-id'];
        sessionId = typeof header === 'string' ? header : undefined;
      });
      ws.once('open', () => resolve(new PlainClient(ws, sessionId)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_request, response: IncomingMessage) =>
        reject(new Error(`handshake refused with HTTP ${response.statusCode}`)),
      );
    });
  }

  send(text: string | Buffer, binary = false): void {
    this.ws.send(text, { binary });
  }

  sendMany(n: number, prefix = 'message'): void {
    for (let i = 1; i <= n; i += 1) this.send(`${prefix} ${i}`);
  }

  waitClosed(timeoutMs = 5000): Promise<Closed> {
    return withTimeout(this.closedPromise, timeoutMs, 'the socket to close');
  }

  close(): void {
    this.ws.close(1000);
  }
}

export class SocketIoClient extends RecordingClient {
  readonly acks: number[] = [];
  session: string | undefined;
  disconnectReason: string | undefined;

  private constructor(readonly socket: Socket) {
    super();
    socket.on('count', (frame: Frame) => this.frames.push(frame));
    socket.on('heartbeat', (frame: Frame) => this.frames.push(frame));
    socket.on('bye', (frame: Frame) => this.frames.push(frame));
    socket.on('session', (frame: { session: string }) => (this.session = frame.session));
    socket.on('disconnect', (reason) => (this.disconnectReason = reason));
  }

  /**
   * Connects over the websocket transport, without automatic reconnection
   * (tests reconnect explicitly), and resolves once the session id arrived.
   */
  static connect(httpUrl: string, session?: string): Promise<SocketIoClient> {
    const socket = io(httpUrl, {
      transports: ['websocket'],
      reconnection: false,
      auth: session === undefined ? {} : { session },
      forceNew: true,
    });
    const client = new SocketIoClient(socket);
    // The server emits `session` right after the connect; resolve once it is known.
    return new Promise((resolve, reject) => {
      socket.once('session', () => resolve(client));
      socket.once('connect_error', reject);
    });
  }

  /** Sends `text`; the ack's count is recorded in `acks`. */
  send(text: unknown): void {
    this.socket.emit('message', text, (reply: { count: number }) => this.acks.push(reply.count));
  }

  sendMany(n: number, prefix = 'message'): void {
    for (let i = 1; i <= n; i += 1) this.send(`${prefix} ${i}`);
  }

  async waitDisconnected(timeoutMs = 5000): Promise<string> {
    await eventually(() => this.disconnectReason !== undefined, 'socket.io disconnect', timeoutMs);
    return this.disconnectReason ?? '';
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** A text frame's payload as a string, whatever buffer shape ws delivered it in. */
export function textOf(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return data instanceof ArrayBuffer ? Buffer.from(data).toString('utf8') : data.toString('utf8');
}

export function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, index) => from + index);
}
