/**
 * Clients that behave as the protocol asks real clients to: one message in
 * flight; after any close, reconnect with the same session and re-send the
 * message that got no count. The plain client is the project's client library
 * (shared/client/chat-client.ts), so the tests prove the code a browser runs; the
 * socket.io client uses socket.io's own reconnection. Both record everything a
 * test needs to prove that nothing was lost: every count, every bye, every close,
 * reconnect times and failed handshakes.
 */
import assert from 'node:assert/strict';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { ChatClient } from '../../shared/client/chat-client.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { eventually } from '../../tools/harness/processes.js';

export interface LoopOptions {
  /** Pause between a count and the next message. */
  thinkMs?: number;
  /** Delay before reconnecting after a close (the plain client's back-off ceiling for its first attempt). */
  reconnectDelayMs?: number;
}

export abstract class ClosedLoopClient {
  readonly session = randomSessionId();
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
  private thinkTimer: NodeJS.Timeout | undefined;

  constructor(protected readonly options: LoopOptions = {}) {}

  abstract start(): void;
  protected abstract connected(): boolean;
  protected abstract disconnect(): void;
  /** Sends the loop's next message. */
  protected abstract sendNext(): void;

  /**
   * Stops sending, waits for the answer in flight (if the connection still stands),
   * disconnects. It disconnects even when that answer never comes: a failed test's
   * after hook stops its clients this way, and a client left connected would go on
   * reconnecting forever and keep mocha's process alive.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    this.stopped = true;
    clearTimeout(this.thinkTimer);
    try {
      await eventually(() => !this.awaiting || !this.connected(), 'the last answer', timeoutMs);
    } finally {
      this.disconnect();
    }
  }

  protected onConnected(): void {
    if (this.lastClose !== undefined) {
      this.reconnectMs.push(Date.now() - this.lastClose);
      this.lastClose = undefined;
    }
  }

  /** The message in flight has its count: the next one goes after the think time. */
  protected answered(): void {
    this.awaiting = false;
    const think = this.options.thinkMs ?? 0;
    if (think === 0) this.next();
    else this.thinkTimer = setTimeout(() => this.next(), think);
  }

  protected onBye(total: number): void {
    this.byes.push({ total, lastCount: this.counts.at(-1) });
  }

  protected onClosed(code: number | string): void {
    if (this.stopped) return;
    this.closes.push(code);
    this.lastClose ??= Date.now();
  }

  protected next(): void {
    if (this.stopped) return;
    this.sendNext();
  }
}

/**
 * A plain /ws/chat/ client: the library's ChatClient, reconnecting by its own rules;
 * `urls` are tried in turn, one per connection attempt. The loop only ever sends the
 * next message once the previous one has its count: re-sending is the library's job.
 */
export class PlainLoopClient extends ClosedLoopClient {
  private client: ChatClient | undefined;
  private target = 0;

  constructor(
    private readonly urls: string[],
    options?: LoopOptions,
  ) {
    super(options);
  }

  start(): void {
    const delay = this.options.reconnectDelayMs ?? 50;
    const client = new ChatClient({
      url: (attempt) => this.urls[(attempt - 1) % this.urls.length]!,
      WebSocket,
      sessionId: this.session,
      // Full jitter below twice the delay: the delay on average for a first attempt. The
      // cap stays low so a test's clients are back soon after an outage ends.
      backoff: { initialMs: 2 * delay, maxMs: 10 * delay },
    });
    this.client = client;
    client.on('open', ({ connection }) => {
      this.onConnected();
      if (connection === 1) this.next();
    });
    // Every count frame that arrives is recorded, asked for or not.
    client.on('count', ({ count }) => this.counts.push(count));
    client.on('bye', ({ total }) => this.onBye(total));
    client.on('close', ({ code, wasOpen }) => {
      // A connect that never opened (refused, or an HTTP error instead of 101) is a failed handshake.
      if (!wasOpen) this.handshakeFailures += 1;
      else this.onClosed(code);
    });
    // The loop runs on the promises send() returns, so it sees what a caller of the library sees.
    client.connect().catch(() => undefined);
  }

  protected sendNext(): void {
    const client = this.client;
    if (client === undefined) return;
    this.target += 1;
    this.awaiting = true;
    client.send(`message ${this.target}`).then(
      () => this.answered(),
      // Rejected only when the client stops: by stop(), or after a close it must not retry.
      () => (this.awaiting = false),
    );
  }

  protected connected(): boolean {
    return this.client?.state === 'open';
  }

  protected disconnect(): void {
    void this.client?.close();
  }
}

/**
 * A socket.io client using socket.io's own reconnection, with the same session; on
 * each connect it re-sends the message that got no count, if any.
 */
export class SocketIoLoopClient extends ClosedLoopClient {
  private socket: Socket | undefined;
  private target = 0;

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
    socket.on('connect', () => {
      this.onConnected();
      this.sendNext();
    });
    socket.on('count', (frame: { count: number }) => {
      this.counts.push(frame.count);
      this.answered();
    });
    socket.on('bye', (frame: { total: number }) => this.onBye(frame.total));
    socket.on('connect_error', () => (this.handshakeFailures += 1));
    socket.on('disconnect', (reason) => this.onClosed(reason));
  }

  protected connected(): boolean {
    return this.socket?.connected === true;
  }

  protected sendNext(): void {
    if (this.stopped || !this.connected()) return;
    // The message that got no count is re-sent as it was; otherwise the next one.
    if (!this.awaiting) this.target += 1;
    this.awaiting = true;
    this.socket?.emit('message', `message ${this.target}`);
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

/**
 * What releases under live traffic must leave at every client, after `releases` of
 * them: counts 1..N with no gap and no repeat, no failed handshake, one bye per
 * release carrying the last count the client had seen, on the plain clients (the
 * client library) exactly one drain close (1001) per release and nothing else, and
 * the store holding exactly N (`stored[i]`: client i's stored count, as Redis gave it).
 */
export function assertUnbroken(clients: ClosedLoopClient[], stored: Array<string | null>, releases: number): void {
  for (const [index, client] of clients.entries()) {
    const label = `client ${index} (${client instanceof PlainLoopClient ? 'plain' : 'socket.io'})`;
    const expected = Array.from({ length: client.counts.length }, (_, at) => at + 1);
    assert.deepEqual(client.counts, expected, `${label}: counts are 1..N, no gap, no repeat`);
    assert.equal(client.handshakeFailures, 0, `${label}: failed handshakes`);
    if (client instanceof PlainLoopClient) assert.deepEqual(client.closes, Array(releases).fill(1001), `${label}: closes`);
    assert.equal(client.byes.length, releases, `${label}: one bye per release`);
    for (const bye of client.byes) assert.equal(bye.total, bye.lastCount, `${label}: the bye total is the last count before it`);
    assert.equal(Number(stored[index]), client.counts.length, `${label}: Redis holds exactly the counts the client saw`);
  }
}
