/**
 * A /ws/chat/ client that follows the protocol's client rules, for Node and the
 * browser alike (no Node or DOM import: the WebSocket constructor is passed in).
 *
 * - It picks the session id itself (a browser cannot read the X-Session-Id header)
 *   and keeps it across reconnects, so counting resumes on any replica.
 * - Counts come back in the order messages were sent, so sends wait in one FIFO and
 *   each count frame settles the oldest send that has not had one.
 * - After a bye + 1001 (drain), 1006 (connection dropped, or a handshake that failed),
 *   1011, 1012, 1013 (session store unavailable), 1014 or a private code in
 *   4000-4499 it reconnects with exponential back-off and full jitter, resumes the
 *   session, and re-sends, in order, every message that got no count. After any other
 *   close (4500-4999: a refused session or a limit the client broke; 1002, 1003, 1007,
 *   1009: a client bug) it stops and fails what is pending: reconnecting would only
 *   repeat the refusal.
 *
 * Delivery is exactly once: every connection says which count the client saw last
 * and how many of its messages went out without one (`?last=&pending=`), so a
 * message counted whose reply was lost with the connection (1006, 1013) is answered
 * with that count when it is re-sent, not counted again; a count the store lost is
 * never handed out again (DESIGN.md, "Exactly once"). Two clients on one session
 * (two tabs) end the older connection with 4505, which is not retried.
 */
import { backoffDelay, backoffOptions, type BackoffOptions } from './backoff.js';
import { isPrivateReconnectCode } from '../protocol/closes.js';
import { parseServerFrame } from '../protocol/messages.js';
import { isValidSessionId, randomSessionId } from '../protocol/session-id.js';

/**
 * The part of a WebSocket the client uses: the browser's and `ws`'s both fit. The
 * handler properties are `unknown` so that either one's event types are accepted;
 * the client assigns its own handlers and reads only `code`, `reason` and `data`.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ChatClientOptions {
  /**
   * The ws:// or wss:// URL of /ws/chat/, without `?session=`, `?last=` and `?pending=` (the client adds them),
   * or a function giving the URL for each connection attempt (1, 2, ...).
   */
  url: string | ((attempt: number) => string);
  /** The WebSocket constructor: `globalThis.WebSocket` in a browser, `ws`'s in Node. */
  WebSocket: WebSocketConstructor;
  /** The session to resume; a fresh uuid4 when absent. Must be a canonical lowercase uuid. */
  sessionId?: string;
  /** Reconnect delays. @default { initialMs: 250, maxMs: 30000, factor: 2 } */
  backoff?: Partial<BackoffOptions>;
  /** Source of the jitter, a number in [0, 1). @default Math.random */
  random?: () => number;
}

/**
 * - `idle`: never connected; `connecting`: a socket is opening; `open`: sends go out;
 * - `waiting`: closed, the next attempt is scheduled; `closed`: stopped (by `close()`
 *   or a close that must not be retried); `connect()` starts again.
 */
export type ChatClientState = 'idle' | 'connecting' | 'open' | 'waiting' | 'closed';

export interface ChatClientEvents {
  /** A connection opened. `connection` numbers them from 1; `resent` messages went out again on it. */
  open: { sessionId: string; connection: number; resent: number };
  /** A count arrived; `text` is the message it answers (undefined if none was waiting). */
  count: { count: number; text: string | undefined };
  heartbeat: { ts: string };
  /** The server is about to close this connection; `total` is the last count it confirmed. */
  bye: { total: number };
  /**
   * A connection closed (or failed to open: `wasOpen` false). `unanswered` messages
   * had been sent on it without a count; they are re-sent if `willReconnect`, after
   * `delayMs`.
   */
  close: { code: number; reason: string; wasOpen: boolean; willReconnect: boolean; delayMs: number | undefined; unanswered: number };
  /** A reconnect attempt starts now (attempt 1 is the first after a close). */
  reconnecting: { attempt: number };
  /** A frame that is not a count, heartbeat or bye. */
  unknown: { text: string };
}

export type ChatClientListener<K extends keyof ChatClientEvents> = (event: ChatClientEvents[K]) => void;

/** RFC 6455 codes after which the client reconnects: the connection failed, not the client. */
const RECONNECT_CODES: ReadonlySet<number> = new Set([
  1001, // going away: a replica draining (after its bye)
  1006, // abnormal closure: the connection dropped, or the handshake failed (503 while draining, refused port)
  1011, // internal error
  1012, // service restart
  1013, // try again later: the session store did not confirm in time
  1014, // bad gateway
]);

/**
 * Whether a close with `code` should be followed by a reconnect: one of
 * RECONNECT_CODES, or a private code whose range says so (4000-4499; see
 * shared/protocol/closes.ts), including one this version does not know yet.
 */
export function reconnectsAfter(code: number): boolean {
  return RECONNECT_CODES.has(code) || isPrivateReconnectCode(code);
}

/** Why a send failed: the client was closed, or the server closed it with a code that is not retried. */
export class ChatClientError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly reason: string,
  ) {
    super(message);
    this.name = 'ChatClientError';
  }
}

const OPEN = 1;
const CLIENT_CLOSE = 1000;

interface Pending {
  readonly text: string;
  readonly resolve: (count: number) => void;
  readonly reject: (error: Error) => void;
  /** Written on the current connection and awaiting its count. */
  sent: boolean;
  /** Written on some earlier connection that closed before its count. */
  everSent: boolean;
}

interface CloseEventLike {
  code?: number;
  reason?: string;
}

export class ChatClient {
  readonly sessionId: string;
  /** The last count received, or undefined before the first. */
  lastCount: number | undefined;
  private readonly options: ChatClientOptions;
  private readonly backoff: Readonly<BackoffOptions>;
  private readonly random: () => number;
  private readonly listeners = new Map<keyof ChatClientEvents, Set<(event: never) => void>>();
  private readonly queue: Pending[] = [];
  private socket: WebSocketLike | undefined;
  private socketOpened = false;
  private currentState: ChatClientState = 'idle';
  /** Failed attempts since the last healthy connection: the back-off exponent. */
  private failures = 0;
  private connections = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private closeRequested = false;
  private openWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private closeWaiters: Array<() => void> = [];

  constructor(options: ChatClientOptions) {
    if (options.sessionId !== undefined && !isValidSessionId(options.sessionId)) {
      throw new TypeError('sessionId must be a canonical lowercase uuid');
    }
    this.options = options;
    this.sessionId = options.sessionId ?? randomSessionId();
    this.backoff = backoffOptions(options.backoff);
    this.random = options.random ?? Math.random;
  }

  get state(): ChatClientState {
    return this.currentState;
  }

  /** Messages sent (or queued to be sent) that have not had their count yet. */
  get pending(): number {
    return this.queue.length;
  }

  on<K extends keyof ChatClientEvents>(type: K, listener: ChatClientListener<K>): () => void {
    let set = this.listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(type, set);
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  off<K extends keyof ChatClientEvents>(type: K, listener: ChatClientListener<K>): void {
    this.listeners.get(type)?.delete(listener);
  }

  /**
   * Connects (or reconnects after `close()`), with the same session. Resolves on the
   * next open, however many attempts that takes; rejects if the client is closed first.
   */
  connect(): Promise<void> {
    const opened = new Promise<void>((resolve, reject) => {
      if (this.currentState === 'open') resolve();
      else this.openWaiters.push({ resolve, reject });
    });
    if (this.currentState === 'idle' || this.currentState === 'closed') {
      this.closeRequested = false;
      this.failures = 0;
      this.openSocket();
    }
    return opened;
  }

  /**
   * Sends `text` and resolves with its count. While the client is connecting or
   * waiting to reconnect the message is queued and goes out, in order, on the next
   * connection. Rejects with a ChatClientError if the client is closed before a
   * count arrives, or was never connected.
   */
  send(text: string): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      if (typeof text !== 'string') return reject(new TypeError('send() takes a string'));
      if (this.currentState === 'idle' || this.currentState === 'closed') {
        return reject(new ChatClientError('not connected: call connect() first', undefined, ''));
      }
      const pending: Pending = { text, resolve, reject, sent: false, everSent: false };
      this.queue.push(pending);
      if (this.currentState === 'open') this.transmit(pending);
    });
  }

  /**
   * Closes with 1000 and stops reconnecting; sends still waiting for a count are
   * rejected. Resolves once the socket has closed. The session stays in Redis:
   * `connect()` resumes it.
   */
  close(): Promise<void> {
    if (this.currentState === 'idle' || this.currentState === 'closed') return Promise.resolve();
    this.closeRequested = true;
    const closed = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.socket === undefined) {
      this.stop(new ChatClientError('closed by the client', CLIENT_CLOSE, ''));
      this.emit('close', { code: CLIENT_CLOSE, reason: '', wasOpen: false, willReconnect: false, delayMs: undefined, unanswered: 0 });
    } else {
      this.socket.close(CLIENT_CLOSE);
    }
    return closed;
  }

  private openSocket(): void {
    this.connections += 1;
    const { url } = this.options;
    const base = typeof url === 'function' ? url(this.connections) : url;
    // The messages sent before and still without a count lead the queue, and go out first again.
    const pending = this.queue.filter((entry) => entry.everSent).length;
    const socket = new this.options.WebSocket(withResume(base, this.sessionId, this.lastCount ?? 0, pending));
    this.socket = socket;
    this.socketOpened = false;
    this.currentState = 'connecting';
    // Without a handler, ws (Node) throws on 'error'; the close event that follows is what counts.
    socket.onerror = (): void => undefined;
    socket.onopen = (): void => {
      if (this.socket === socket) this.opened();
    };
    socket.onmessage = (event: { data?: unknown }): void => {
      if (this.socket === socket && typeof event.data === 'string') this.received(event.data);
    };
    socket.onclose = (event: CloseEventLike): void => {
      if (this.socket === socket) this.closed(event.code ?? 1006, event.reason ?? '');
    };
  }

  private opened(): void {
    this.socketOpened = true;
    this.currentState = 'open';
    let resent = 0;
    for (const pending of this.queue) {
      if (pending.everSent) resent += 1;
      this.transmit(pending);
    }
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const waiter of waiters) waiter.resolve();
    this.emit('open', { sessionId: this.sessionId, connection: this.connections, resent });
  }

  private transmit(pending: Pending): void {
    if (this.socket?.readyState !== OPEN) return;
    pending.sent = true;
    pending.everSent = true;
    this.socket.send(pending.text);
  }

  private received(text: string): void {
    const frame = parseServerFrame(text);
    switch (frame.type) {
      case 'count': {
        // A count proves the session is served: the next failure starts the back-off afresh.
        this.failures = 0;
        this.lastCount = frame.count;
        const head = this.queue[0];
        const answered = head?.sent === true ? this.queue.shift() : undefined;
        this.emit('count', { count: frame.count, text: answered?.text });
        answered?.resolve(frame.count);
        break;
      }
      case 'heartbeat':
        this.failures = 0;
        this.emit('heartbeat', { ts: frame.ts });
        break;
      case 'bye':
        this.emit('bye', { total: frame.total });
        break;
      case 'unknown':
        this.emit('unknown', { text: frame.text });
        break;
    }
  }

  private closed(code: number, reason: string): void {
    const wasOpen = this.socketOpened;
    this.socket = undefined;
    this.socketOpened = false;
    let unanswered = 0;
    for (const pending of this.queue) {
      if (pending.sent) unanswered += 1;
      pending.sent = false;
    }
    if (this.closeRequested) {
      this.stop(new ChatClientError('closed by the client', code, reason));
      this.emit('close', { code, reason, wasOpen, willReconnect: false, delayMs: undefined, unanswered });
      return;
    }
    if (!reconnectsAfter(code)) {
      this.stop(new ChatClientError(`closed by the server with ${code}${reason === '' ? '' : ` (${reason})`}`, code, reason));
      this.emit('close', { code, reason, wasOpen, willReconnect: false, delayMs: undefined, unanswered });
      return;
    }
    const delayMs = backoffDelay(this.backoff, this.failures, this.random);
    this.failures += 1;
    const attempt = this.failures;
    this.currentState = 'waiting';
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.emit('reconnecting', { attempt });
      this.openSocket();
    }, delayMs);
    this.emit('close', { code, reason, wasOpen, willReconnect: true, delayMs, unanswered });
  }

  /** Ends in `closed`: every pending send and connect() fails with `error`. */
  private stop(error: ChatClientError): void {
    this.currentState = 'closed';
    for (const pending of this.queue.splice(0)) pending.reject(error);
    const waiters = this.openWaiters;
    this.openWaiters = [];
    for (const waiter of waiters) waiter.reject(error);
    const closeWaiters = this.closeWaiters;
    this.closeWaiters = [];
    for (const resolve of closeWaiters) resolve();
  }

  private emit<K extends keyof ChatClientEvents>(type: K, event: ChatClientEvents[K]): void {
    const set = this.listeners.get(type);
    if (set === undefined) return;
    for (const listener of [...set]) {
      try {
        (listener as ChatClientListener<K>)(event);
      } catch (error) {
        // A listener's bug must not break the connection's state: report it as EventTarget does.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}

/** `url` with `session=<id>&last=<n>&pending=<u>` in its query (replacing any there). */
function withResume(url: string, sessionId: string, last: number, pending: number): string {
  const parsed = new URL(url);
  parsed.searchParams.set('session', sessionId);
  parsed.searchParams.set('last', String(last));
  parsed.searchParams.set('pending', String(pending));
  return parsed.toString();
}
