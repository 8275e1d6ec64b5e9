/**
 * Clients that behave as the protocol asks real clients to: one message in
 * flight; after any close, reconnect with the same session and re-send the
 * message that got no count. They record everything a test needs to prove that
 * nothing was lost: every count, every bye, every close, reconnect times and
 * failed handshakes.
 */
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { newSessionId } from '../../shared/protocol.js';
import { textOf } from './clients.js';
import { eventually } from './processes.js';

export interface LoopOptions {
  /** Pause between a count and the next message. */
  thinkMs?: number;
  /** Delay before reconnecting after a close. */
  reconnectDelayMs?: number;
}

export abstract class ClosedLoopClient {
  readonly session = newSessionId();
  readonly counts: number[] = [];
  /** Byes received, in order, with the last count the client had seen when each arrived. */
  readonly byes: Array<{ total: number; lastCount: number | undefined }> = [];
  /** Closes the client did not ask for: the close code (plain) or the disconnect reason (socket.io). */
  readonly closes: Array<number | string> = [];
  /** Milliseconds from each unrequested close to the next successful connect. */
  readonly reconnectMs: number[] = [];
  handshakeFailures = 0;
  protected stopped = false;
  protected awaiting = false;
  private lastClose: number | undefined;
  private target = 0;
  private thinkTimer: NodeJS.Timeout | undefined;

  constructor(protected readonly options: LoopOptions = {}) {}

  abstract start(): void;
  protected abstract connected(): boolean;
  protected abstract transmit(text: string): void;
  protected abstract disconnect(): void;

  /** Stops sending, waits for the answer in flight (if the connection still stands), disconnects. */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.thinkTimer);
    await eventually(() => !this.awaiting || !this.connected(), 'the last answer', timeoutMs);
    this.disconnect();
  }

  protected onConnected(): void {
    if (this.lastClose !== undefined) {
      this.reconnectMs.push(Date.now() - this.lastClose);
      this.lastClose = undefined;
    }
    this.sendNext();
  }

  protected onCount(count: number): void {
    this.counts.push(count);
    this.awaiting = false;
    const think = this.options.thinkMs ?? 0;
    if (think === 0) this.sendNext();
    else this.thinkTimer = setTimeout(() => this.sendNext(), think);
  }

  protected onBye(total: number): void {
    this.byes.push({ total, lastCount: this.counts.at(-1) });
  }

  protected onClosed(code: number | string): void {
    if (this.stopped) return;
    this.closes.push(code);
    this.lastClose ??= Date.now();
  }

  protected sendNext(): void {
    if (this.stopped || !this.connected()) return;
    // The message that got no count is re-sent as it was; otherwise the next one.
    if (!this.awaiting) this.target += 1;
    this.awaiting = true;
    this.transmit(`message ${this.target}`);
  }
}

/** A plain /ws/chat/ client; `urls` are tried in turn on each reconnect. */
export class PlainLoopClient extends ClosedLoopClient {
  private ws: WebSocket | undefined;
  private attempt = 0;

  constructor(
    private readonly urls: string[],
    options?: LoopOptions,
  ) {
    super(options);
  }

  start(): void {
    const url = this.urls[this.attempt % this.urls.length]!;
    this.attempt += 1;
    const ws = new WebSocket(`${url}?session=${this.session}`);
    this.ws = ws;
    let opened = false;
    ws.on('open', () => {
      opened = true;
      this.onConnected();
    });
    ws.on('message', (data) => {
      const frame = JSON.parse(textOf(data)) as { count?: number; bye?: boolean; total?: number };
      if (typeof frame.count === 'number') this.onCount(frame.count);
      else if (frame.bye === true) this.onBye(frame.total ?? -1);
    });
    ws.on('error', () => undefined);
    ws.on('close', (code) => {
      // A connect that never opened (refused, or an HTTP error instead of 101) is a failed handshake.
      if (!opened) this.handshakeFailures += 1;
      else this.onClosed(code);
      if (!this.stopped) setTimeout(() => this.start(), this.options.reconnectDelayMs ?? 50);
    });
  }

  protected connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  protected transmit(text: string): void {
    this.ws?.send(text);
  }

  protected disconnect(): void {
    this.ws?.close();
  }
}

/** A socket.io client using socket.io's own reconnection, with the same session. */
export class SocketIoLoopClient extends ClosedLoopClient {
  private socket: Socket | undefined;

  constructor(
    private readonly url: string,
    options?: LoopOptions,
  ) {
    super(options);
  }

  start(): void {
    const delay = this.options.reconnectDelayMs ?? 50;
    const socket = io(this.url, {
      transports: ['websocket'],
      auth: { session: this.session },
      reconnectionDelay: delay,
      reconnectionDelayMax: delay * 4,
      forceNew: true,
    });
    this.socket = socket;
    socket.on('connect', () => this.onConnected());
    socket.on('count', (frame: { count: number }) => this.onCount(frame.count));
    socket.on('bye', (frame: { total: number }) => this.onBye(frame.total));
    socket.on('connect_error', () => (this.handshakeFailures += 1));
    socket.on('disconnect', (reason) => this.onClosed(reason));
  }

  protected connected(): boolean {
    return this.socket?.connected === true;
  }

  protected transmit(text: string): void {
    this.socket?.emit('message', text);
  }

  protected disconnect(): void {
    this.socket?.disconnect();
  }
}

/** p-th percentile (0-100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
