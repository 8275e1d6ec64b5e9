/**
 * One client connection bound to one session, whatever the transport.
 *
 * Concurrency model: every message starts its Redis increment at once (so a burst
 * is pipelined in one write), but replies are chained in arrival order, so the
 * client sees 1, 2, 3... even if a transport or Redis topology ever resolved them
 * out of order. A count is written only after Redis confirmed it.
 *
 * Closing is one path for every reason (drain, bad frame, Redis failure): stop
 * taking new messages, let the ones already received get their counts, send
 * {"bye": true, "total": n}, then close with the reason's code.
 */
import type { LogContext, LogContextStore, Logger } from '../../shared/logger.js';
import { errorFields } from '../../shared/logger.js';
import type { Metrics, Transport, TransportMetrics } from '../../shared/metrics.js';
import { CLOSE, type CountMessage, type KnownClose, type ServerClose } from '../../shared/protocol.js';
import type { SessionStore } from '../../shared/session-store.js';

export type Ack = (reply: CountMessage) => void;

/** What a transport must offer; implemented by the plain and socket.io endpoints. */
export interface TransportSink {
  readonly transport: Transport;
  sendCount(count: number, ack: Ack | undefined): void;
  /** The heartbeat, already serialised once for the whole fan-out. */
  sendHeartbeat(serialized: string, ts: string): void;
  sendBye(total: number): void;
  close(reason: ServerClose): void;
  /** Stops reading from the client; false when the transport cannot. */
  pause(): boolean;
  resume(): void;
}

export interface ConnectionDeps {
  store: SessionStore;
  metrics: Metrics;
  logger: Logger;
  contextStore: LogContextStore;
  maxMessageBytes: number;
  maxInflight: number;
}

/** RFC 6455: the socket went away without a closing handshake. */
export const ABNORMAL_CLOSURE = 1006;

export class SessionConnection {
  /** The session's count as last confirmed to this client (what a bye reports). */
  private confirmed = 0;
  /** False until Redis answered the open; no bye can be sent before that. */
  private opened = false;
  /** Messages whose increment Redis has not answered yet; never above maxInflight. */
  private inflight = 0;
  /**
   * Messages received over the bound, waiting for a slot (their acks). Pausing a
   * socket stops reading it, but what was already read still arrives; it waits here
   * rather than in Redis, a few bytes each.
   */
  private readonly waiting: Array<Ack | undefined> = [];
  private paused = false;
  /** Redis failed once: later counts are not sent (the client could not tell which message they belong to). */
  private storeFailed = false;
  private closing: KnownClose | undefined;
  private transportGone = false;
  private replies: Promise<void> = Promise.resolve();
  private readonly transportMetrics: TransportMetrics;

  constructor(
    readonly sessionId: string,
    private readonly sink: TransportSink,
    private readonly context: LogContext,
    private readonly deps: ConnectionDeps,
  ) {
    this.transportMetrics = deps.metrics.forTransport(sink.transport);
  }

  get transport(): Transport {
    return this.sink.transport;
  }

  /** Loads the session's count; messages may arrive before it answers and are chained after it. */
  open(): void {
    this.run(() => {
      const { logger } = this.deps;
      this.transportMetrics.connectionsOpened.inc();
      this.transportMetrics.connectionsActive.inc();
      const opening = this.deps.store.open(this.sessionId);
      this.replies = opening.then(
        ({ count, resumed }) => {
          this.opened = true;
          this.confirmed = count;
          if (resumed) this.transportMetrics.sessionsResumed.inc();
          logger.info(resumed ? 'session resumed' : 'connection opened', { event: resumed ? 'resume' : 'connect', count });
        },
        (error: unknown) => this.storeFailure(error),
      );
    });
  }

  /** A text message of `bytes` bytes (UTF-8) arrived. */
  receive(bytes: number, ack?: Ack): void {
    this.run(() => {
      // Decided to close: the client gets no count for this one and will re-send it after reconnecting.
      if (this.closing !== undefined) return;
      if (bytes > this.deps.maxMessageBytes) return this.close(CLOSE.messageTooBig);
      if (this.inflight < this.deps.maxInflight && this.waiting.length === 0) return this.count(ack);
      if (this.throttle()) this.waiting.push(ack);
    });
  }

  private count(ack: Ack | undefined): void {
    const started = performance.now();
    this.inflight += 1;
    this.deps.metrics.messagesInflight.inc();
    const increment = this.deps.store.increment(this.sessionId);
    this.replies = this.replies
      .then(() => increment)
      .then(
        (count) => this.reply(count, ack, started),
        (error: unknown) => this.storeFailure(error),
      )
      .finally(() => this.settled());
  }

  private reply(count: number, ack: Ack | undefined, started: number): void {
    if (this.storeFailed) return;
    this.confirmed = count;
    if (this.transportGone) return;
    this.sink.sendCount(count, ack);
    this.transportMetrics.messages.inc();
    this.transportMetrics.messageDuration.observe((performance.now() - started) / 1000);
  }

  /** Too many messages await Redis: stop reading from the client, or close if the transport cannot pause. */
  private throttle(): boolean {
    if (this.paused) return true;
    if (this.sink.pause()) {
      this.paused = true;
      return true;
    }
    this.close(CLOSE.tooManyInflight);
    return false;
  }

  private settled(): void {
    this.inflight -= 1;
    this.deps.metrics.messagesInflight.dec();
    if (this.waiting.length > 0) return this.count(this.waiting.shift());
    if (this.paused && this.inflight <= this.deps.maxInflight / 2) {
      this.paused = false;
      this.sink.resume();
    }
  }

  private storeFailure(error: unknown): void {
    if (!this.storeFailed) {
      this.storeFailed = true;
      this.deps.logger.warn('session store failed', { event: 'store_error', ...errorFields(error) });
    }
    this.close(CLOSE.storeUnavailable);
  }

  /**
   * Server-initiated close: messages already received are answered first, then
   * the bye, then the close frame. Idempotent; the first reason wins.
   */
  close(reason: KnownClose): void {
    this.run(() => {
      if (this.closing !== undefined || this.transportGone) return;
      this.closing = reason;
      // Messages waiting for a slot were received before this decision: they get their
      // counts before the bye, unless Redis failed (then the client re-sends them).
      const waiting = this.waiting.splice(0);
      if (!this.storeFailed) for (const ack of waiting) this.count(ack);
      if (reason.kind !== 'shutdown') this.deps.metrics.error(reason.kind);
      // A drain closes every socket at once; its per-socket line is debug, the close line that follows is not.
      const level = reason === CLOSE.shuttingDown ? 'debug' : 'info';
      this.deps.logger.log(level, 'closing connection', { event: 'closing', code: reason.code, reason: reason.reason });
      void this.replies.then(() => {
        if (this.transportGone) return;
        if (this.opened) this.sink.sendBye(this.confirmed);
        this.sink.close(reason);
      });
    });
  }

  sendHeartbeat(serialized: string, ts: string): void {
    if (!this.transportGone) this.sink.sendHeartbeat(serialized, ts);
  }

  /**
   * The transport reports the socket closed with `code` (ABNORMAL_CLOSURE when
   * no close frame came). The final total is logged once in-flight messages settled.
   */
  transportClosed(code: number): void {
    if (this.transportGone) return;
    this.transportGone = true;
    const by = this.closing !== undefined ? 'server' : code === ABNORMAL_CLOSURE ? 'abnormal' : 'client';
    this.transportMetrics.connectionsActive.dec();
    // Only server-sent codes become label values; client codes are arbitrary numbers.
    this.deps.metrics.connectionsClosed.inc({ transport: this.transport, code: this.closing?.code.toString() ?? by });
    void this.replies.then(() =>
      this.run(() => {
        // The session stays in Redis (until its TTL) so the client can resume it.
        this.deps.logger.info('connection closed', {
          event: 'close',
          by,
          code: this.closing?.code ?? code,
          total: this.confirmed,
        });
      }),
    );
  }

  private run(fn: () => void): void {
    this.deps.contextStore.run(this.context, fn);
  }
}
