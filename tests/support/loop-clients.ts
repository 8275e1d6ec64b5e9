/**
 * Closed-loop clients that behave as the protocol asks real clients to: one message
 * in flight; after any close, reconnect with the same session and re-send the
 * message that got no count, and only that one. The plain client is the project's
 * client library (shared/client/chat-client.ts), so the tests prove the code a browser
 * runs; the socket.io client uses socket.io's own reconnection. Both record everything
 * a test needs to prove that nothing was lost: every count, every bye, every close
 * they did not ask for (when, and whether a message awaited its count then: the only
 * case in which Redis may have counted something the client never saw), reconnect
 * times, failed handshakes, and their last events for failure messages.
 * The checks on what they recorded are in tests/support/session-assertions.ts.
 */
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

export interface Bye {
  total: number;
  /** The last count the client had seen when the bye arrived. */
  lastCount: number | undefined;
  /** Whether the connection the bye came on delivered any count. */
  countedOnItsConnection: boolean;
}

export abstract class LoopClient {
  readonly session = randomSessionId();
  readonly counts: number[] = [];
  /** Byes received, in order. */
  readonly byes: Bye[] = [];
  /** Closes the client did not ask for: the close code (plain) or the disconnect reason (socket.io). */
  readonly closes: Array<number | string> = [];
  /** How many of those closes came while a message awaited its count on the connection. */
  closesInFlight = 0;
  /** When each of those closes came (Date.now()). */
  readonly closeTimes: number[] = [];
  /** Milliseconds from each unrequested close to the next successful connect. */
  readonly reconnectMs: number[] = [];
  handshakeFailures = 0;
  /**
   * Messages that got their count. The next message goes only once the previous one
   * has its count, so this equals the number of counts received; a client that
   * re-sent an answered message would have more counts than answered messages.
   */
  answered = 0;
  /** The last events (connect, send, count, close), for failure messages. */
  readonly trace: string[] = [];
  protected stopped = false;
  protected awaiting = false;
  /** The number of the last message sent (a re-send keeps its number). */
  protected target = 0;
  /** Counts received on the current connection. */
  private connectionCounts = 0;
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
    this.cancelThink();
    try {
      await eventually(() => !this.awaiting || !this.connected(), 'the last answer', timeoutMs);
    } finally {
      this.disconnect();
    }
  }

  protected onConnected(): void {
    this.note('connected');
    this.connectionCounts = 0;
    if (this.lastClose !== undefined) {
      this.reconnectMs.push(Date.now() - this.lastClose);
      this.lastClose = undefined;
    }
  }

  /** A count arrived, asked for or not: every one is recorded. */
  protected onCount(count: number): void {
    this.note(`count ${count}`);
    this.counts.push(count);
    this.connectionCounts += 1;
  }

  /** The message in flight has its count: the next one goes after the think time. */
  protected onAnswered(): void {
    this.answered += 1;
    this.awaiting = false;
    const think = this.options.thinkMs ?? 0;
    if (think === 0) this.next();
    else this.thinkTimer = setTimeout(() => this.next(), think);
  }

  protected cancelThink(): void {
    clearTimeout(this.thinkTimer);
  }

  protected onBye(total: number): void {
    this.byes.push({ total, lastCount: this.counts.at(-1), countedOnItsConnection: this.connectionCounts > 0 });
  }

  /** A connection that had opened closed; `inFlight`: a message sent on it awaited its count. */
  protected onClosed(code: number | string, inFlight: boolean): void {
    this.note(`closed ${code}${inFlight ? ` with message ${this.target} awaiting its count` : ''}`);
    if (this.stopped) return;
    this.closes.push(code);
    this.closeTimes.push(Date.now());
    if (inFlight) this.closesInFlight += 1;
    this.lastClose ??= Date.now();
  }

  protected note(event: string): void {
    this.trace.push(`${new Date().toISOString().slice(11, 23)} ${event}`);
    if (this.trace.length > 40) this.trace.shift();
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
export class PlainLoopClient extends LoopClient {
  private client: ChatClient | undefined;

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
    client.on('count', ({ count }) => this.onCount(count));
    client.on('bye', ({ total }) => this.onBye(total));
    client.on('close', ({ code, wasOpen, unanswered }) => {
      // A connect that never opened (refused, or an HTTP error instead of 101) is a failed handshake.
      if (!wasOpen) this.handshakeFailures += 1;
      // `unanswered`: messages written on that connection without a count, which the library re-sends.
      else this.onClosed(code, unanswered > 0);
    });
    // The loop runs on the promises send() returns, so it sees what a caller of the library sees.
    client.connect().catch(() => undefined);
  }

  protected sendNext(): void {
    const client = this.client;
    if (client === undefined) return;
    this.target += 1;
    this.awaiting = true;
    this.note(`send message ${this.target}`);
    client.send(`message ${this.target}`).then(
      () => this.onAnswered(),
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
 * A socket.io client using socket.io's own reconnection, with the same session and
 * where it resumes (auth.last, auth.pending); on each connect it re-sends the
 * message that got no count, if any.
 */
export class SocketIoLoopClient extends LoopClient {
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
      // Asked again on every (re)connect: where the session resumes. The message awaiting its
      // count is re-sent on connect, so it is the one pending message; a count the old
      // connection's store gave it comes back as its answer instead of a second count.
      auth: (send) => send({ session: this.session, last: this.counts.at(-1) ?? 0, pending: this.awaiting ? 1 : 0 }),
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
      this.onCount(frame.count);
      if (this.awaiting) this.onAnswered();
    });
    socket.on('bye', (frame: { total: number }) => this.onBye(frame.total));
    socket.on('connect_error', () => (this.handshakeFailures += 1));
    socket.on('disconnect', (reason) => {
      // The connect handler sends what comes next: a think time running out while
      // disconnected, or after the reconnect, would send a second message in flight.
      this.cancelThink();
      this.onClosed(reason, this.awaiting);
    });
  }

  protected connected(): boolean {
    return this.socket?.connected === true;
  }

  protected sendNext(): void {
    if (this.stopped || !this.connected()) return;
    // The message that got no count is re-sent as it was; otherwise the next one.
    if (!this.awaiting) this.target += 1;
    this.awaiting = true;
    this.note(`send message ${this.target}`);
    this.socket?.emit('message', `message ${this.target}`);
  }

  protected disconnect(): void {
    this.socket?.disconnect();
  }
}

/** How failure messages name a loop client: its index and transport. */
export function loopClientLabel(client: LoopClient, index: number): string {
  return `client ${index} (${client instanceof PlainLoopClient ? 'plain' : 'socket.io'})`;
}

/** `plain` plain and `socketIo` socket.io loop clients, all of one endpoint (a stack's public side), not started yet. */
export function loopClientsOf(endpoint: { wsUrl: string; httpUrl: string }, plain: number, socketIo: number, options?: LoopOptions): LoopClient[] {
  return [
    ...Array.from({ length: plain }, () => new PlainLoopClient([endpoint.wsUrl], options)),
    ...Array.from({ length: socketIo }, () => new SocketIoLoopClient(endpoint.httpUrl, options)),
  ];
}
