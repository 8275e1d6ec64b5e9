/**
 * Open-loop clients: they keep sending without waiting for counts (the load a slow
 * consumer or an abusive client puts on a replica), plain and socket.io.
 */
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { textOf } from '../../tools/harness/clients.js';

export interface FloodOptions {
  /** Messages per second, sent in bursts every 50 ms. */
  perSecond: number;
  /** Bytes per message. */
  size: number;
}

/**
 * A plain client that keeps sending without waiting for counts (open loop), as
 * long as its own write buffer is small; after any close it reconnects with the
 * same session and keeps going.
 */
export class PlainFlooder {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  /** Close codes of connections that had opened. */
  readonly closes: number[] = [];
  /** Connections that opened. */
  connections = 0;
  /** Connect attempts that never opened (refused with an HTTP status, e.g. 503 while Redis is away). */
  handshakeFailures = 0;
  maxBufferedAmount = 0;
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly url: string,
    private readonly options: FloodOptions,
  ) {}

  start(): void {
    const ws = new WebSocket(`${this.url}?session=${this.session}`);
    this.ws = ws;
    const payload = 'x'.repeat(this.options.size);
    const burst = Math.max(1, Math.round(this.options.perSecond / 20));
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.connections += 1;
      this.timer = setInterval(() => {
        this.maxBufferedAmount = Math.max(this.maxBufferedAmount, ws.bufferedAmount);
        if (ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > 256 * 1024) return;
        for (let i = 0; i < burst; i += 1) ws.send(payload);
      }, 50);
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(textOf(data)) as { count?: number };
      if (typeof frame.count === 'number') this.counts.push(frame.count);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      clearInterval(this.timer);
      if (this.stopped) return;
      if (opened) this.closes.push(code);
      else this.handshakeFailures += 1;
      setTimeout(() => this.start(), 100);
    });
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.ws?.terminate();
  }
}

/** The socket.io counterpart: emits without waiting for counts; does not reconnect after a server disconnect. */
export class SocketIoFlooder {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  readonly byes: number[] = [];
  disconnectReason: string | undefined;
  private socket: Socket | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly url: string,
    private readonly options: FloodOptions,
  ) {}

  start(): void {
    const socket = io(this.url, { transports: ['websocket'], auth: { session: this.session }, reconnection: false, forceNew: true });
    this.socket = socket;
    const payload = 'x'.repeat(this.options.size);
    const burst = Math.max(1, Math.round(this.options.perSecond / 20));
    socket.on('connect', () => {
      this.timer = setInterval(() => {
        if (socket.connected) for (let i = 0; i < burst; i += 1) socket.emit('message', payload);
      }, 50);
    });
    socket.on('count', (frame: { count: number }) => this.counts.push(frame.count));
    socket.on('bye', (frame: { total: number }) => this.byes.push(frame.total));
    socket.on('disconnect', (reason) => {
      clearInterval(this.timer);
      this.disconnectReason ??= reason;
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.socket?.disconnect();
  }
}
