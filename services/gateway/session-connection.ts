/**
 * One client connection bound to one session, whatever the transport.
 *
 * Concurrency model: every message starts its Redis increment at once (so a burst
 * is pipelined in one write), but replies leave in arrival order through a FIFO of
 * pending operations, so the client sees 1, 2, 3... even if a transport or Redis
 * topology ever resolved them out of order. A count is written only after Redis
 * confirmed it. The FIFO costs one promise reaction per message, where a chain of
 * promises would cost several: this is the hot path.
 *
 * Closing is one path for every reason, and the reason's `ending` decides what
 * it does (shared/protocol/closes.ts):
 * - 'bye' (drain, limits, Redis failure, binary, too big): stop taking new
 *   messages, let the ones already received get their counts, send
 *   {"bye": true, "total": n}, then close with the reason's code;
 * - 'fail' (the peer broke RFC 6455): the close frame at once, then nothing,
 *   whatever Redis answers later (§7.1.7), even if a 'bye' close was waiting.
 * A close the client starts is not a server close: ws echoes it, and this
 * connection only learns of it in transportClosed().
 *
 * A client that resumes with the last count it saw (`resume`) is counted exactly
 * once (DESIGN.md, "Exactly once"): the connection holds a lease on the session,
 * each increment names the count it expects before it, the first re-sends are
 * answered with the counts the store already gave them, and a newer connection on
 * the session (a stale lease) ends this one with 4505.
 */
import type { HeartbeatPacket } from './heartbeat-packet.js';
import { errorFields, sessionTag, type LogContext, type Logger } from './logger.js';
import type { Metrics, Transport, TransportMetrics } from './metrics.js';
import { CLOSE, type KnownClose, type ServerClose } from '../../shared/protocol/closes.js';
import { type CountMessage } from '../../shared/protocol/messages.js';
import { planResume, type Resume } from './resume-plan.js';
import { STALE_LEASE, type LeasedSession, type OpenedSession, type ResumeTooFar, type SessionStore } from './store/session-store.js';
import { FULL_BUCKET, takeToken } from './token-bucket.js';

export type Ack = (reply: CountMessage) => void;

/**
 * What a transport must offer; implemented by the plain endpoint's socket itself and by
 * socket.io's sink. Named apart from ws's own methods (close, pause, resume), so a ws
 * WebSocket can be one without a sink object per socket.
 */
export interface TransportSink {
  readonly transport: Transport;
  /** `replayed`: the count was answered from the store (a re-send counted before), not counted now. */
  sendCount(count: number, ack: Ack | undefined, replayed: boolean): void;
  /** The tick's heartbeat, serialised once for the whole fan-out and encoded once per transport. */
  sendHeartbeat(packet: HeartbeatPacket): void;
  /** `reason` is the close that follows, for a transport whose close carries no code (socket.io). */
  sendBye(total: number, reason: ServerClose): void;
  closeTransport(reason: ServerClose): void;
  /** Bytes written to the transport that the client has not read yet (a client that stops reading grows it). */
  bufferedBytes(): number;
  /** Stops reading from the client; false when the transport cannot. */
  pauseReading(): boolean;
  resumeReading(): void;
}

export interface ConnectionDeps {
  store: SessionStore;
  metrics: Metrics;
  logger: Logger;
  maxMessageBytes: number;
  maxInflight: number;
  /** Sustained messages a second per connection (bursts of twice that); 0: no limit. */
  maxMessagesPerSecond: number;
  /** Unread bytes after which a client counts as not reading and is closed. */
  maxBufferedBytes: number;
}

/** RFC 6455: the socket went away without a closing handshake. */
export const ABNORMAL_CLOSURE = 1006;

/**
 * Where a connection is in its close; it only moves forward (open -> closing ->
 * closed -> gone, any step skippable but none undone):
 * - open: taking messages;
 * - closing: a 'bye' close was decided: no new messages, those received get their
 *   counts, then the bye and the close frame;
 * - closed: the close frame was handed to the transport: nothing more is written;
 * - gone: the transport reported the socket closed; `reason` is the server's close,
 *   undefined when the client or the network ended it.
 */
export type ConnectionStatus =
  | { readonly state: 'open' }
  | { readonly state: 'closing' | 'closed'; readonly reason: KnownClose }
  | { readonly state: 'gone'; readonly reason: KnownClose | undefined };

/**
 * The session's open or one message, waiting for Redis, in arrival order. What Redis
 * answered is written into the entry (no object per answer: this is the hot path).
 */
interface Pending {
  /** 'waiting' until Redis answered; then 'counted' (`count` holds the count) or 'failed' (`error` holds why). */
  state: 'waiting' | 'counted' | 'failed';
  count: number;
  error: unknown;
  /** The open is first in every FIFO; it carries no reply. */
  readonly kind: 'open' | 'message';
  readonly ack: Ack | undefined;
  readonly started: number;
}

/** Every open connection's status: one object, not one per connection. */
const OPEN: ConnectionStatus = Object.freeze({ state: 'open' });

export class SessionConnection {
  /**
   * The last count handed to the transport (or loaded at open): what a bye reports.
   * Undefined until Redis answered the open: no bye before the session's count is known.
   */
  private confirmed: number | undefined;
  /** The highest count a resumed connection answers from the store (0: none); every later count is new. */
  private replayedUpTo = 0;
  /** Messages whose increment Redis has not answered yet; never above maxInflight. */
  private inflight = 0;
  /**
   * The FIFO of the open and the messages sent to Redis, oldest first; answered strictly
   * in this order. Under a closed loop, and on an idle socket, it holds one entry or
   * none: that one lives in this field, and `pendingRest` is an array only while more
   * wait (an emptied array keeps its backing store, which an idle socket would carry).
   * Two fields of the connection, not an object of its own.
   */
  private pendingHead: Pending | undefined = undefined;
  private pendingRest: Pending[] | undefined = undefined;
  /**
   * Run once the FIFO is empty: the bye and close, the final log line. Allocated when
   * a task waits: most connections never have one until they close.
   */
  private idleTasks: Array<() => void> | undefined;
  /**
   * Messages received over the bound, waiting for a slot (their acks). Pausing a
   * socket stops reading it, but what was already read still arrives; it waits here
   * rather than in Redis, a few bytes each.
   */
  private waiting: Array<Ack | undefined> | undefined;
  private paused = false;
  /**
   * Set once Redis failed (1013) or a newer connection took the lease (4505): later
   * counts are not sent (the client could not tell which message they belong to).
   */
  private countsStopped: KnownClose | undefined;
  /** Resumed connections: the lease the open took, undefined until Redis answered it. */
  private lease: number | undefined;
  /** Resumed connections: the count the next increment expects before it. */
  private expected = 0;
  /**
   * Resumed connections: the count the next re-send gets, which the store already gave
   * it; re-sends are answered from the store while it is at most `replayedUpTo`.
   */
  private nextReplay = 1;
  private current: ConnectionStatus = OPEN;
  private readonly transportMetrics: TransportMetrics;
  /** The rate limit's bucket, as the instant it is full again (token-bucket.ts); unused when there is no limit. */
  private rateFullAt = FULL_BUCKET;

  /**
   * `sink`: the plain endpoint's sweep reads it to find the socket. `requestId`: every
   * log line's request_id; the rest of a line's context (session tag, transport) is
   * built when a line is logged, not kept per connection.
   */
  constructor(
    readonly sessionId: string,
    readonly sink: TransportSink,
    private readonly requestId: string,
    private readonly deps: ConnectionDeps,
    private readonly resume?: Resume,
  ) {
    this.transportMetrics = deps.metrics.forTransport(sink.transport);
  }

  get transport(): Transport {
    return this.sink.transport;
  }

  get status(): ConnectionStatus {
    return this.current;
  }

  /** The close the server decided on, if it did. */
  private get decided(): KnownClose | undefined {
    return this.current.state === 'open' ? undefined : this.current.reason;
  }

  /** The close frame went, or the transport is gone: nothing more is written. */
  private get finished(): boolean {
    return this.current.state === 'closed' || this.current.state === 'gone';
  }

  /** Loads the session's count; messages may arrive before it answers and are answered after it. */
  open(): void {
    this.transportMetrics.connectionsOpened.inc();
    this.transportMetrics.connectionsActive.inc();
    // The open is first in the FIFO, so acting on its answer at once keeps the order.
    const { resume } = this;
    const opening =
      resume === undefined
        ? this.deps.store.open(this.sessionId).then((session) => this.sessionOpened(session))
        : this.deps.store.openLeased(this.sessionId, resume.last).then((session) => this.leaseTaken(session, resume));
    this.track('open', undefined, opening);
  }

  /** Increments of a resumed connection need its lease and base count: until the open answers, none can start. */
  private get waitsForLease(): boolean {
    return this.resume !== undefined && this.lease === undefined;
  }

  /** A text message of `bytes` bytes (UTF-8) arrived. */
  receive(bytes: number, ack?: Ack): void {
    // Decided to close: the client gets no count for this one and will re-send it after reconnecting.
    if (this.decided !== undefined) return;
    if (bytes > this.deps.maxMessageBytes) return this.close(CLOSE.messageTooBig);
    const now = performance.now();
    if (!this.withinRate(now)) return this.close(CLOSE.rateLimited);
    if (this.waitsForLease) {
      // They wait with the others over the bound (a socket.io client that floods before
      // the open answers meets the bound there too).
      if (this.waitingCount < this.deps.maxInflight || this.throttle()) this.wait(ack);
      return;
    }
    if (this.inflight < this.deps.maxInflight && this.waitingCount === 0) return this.count(ack, now);
    if (this.throttle()) this.wait(ack);
  }

  /** Takes a token from the connection's bucket (MAX_MESSAGES_PER_SECOND, bursts of twice that); false when over the rate. */
  private withinRate(now: number): boolean {
    const perSecond = this.deps.maxMessagesPerSecond;
    if (perSecond <= 0) return true;
    const fullAt = takeToken(this.rateFullAt, now, perSecond, 2 * perSecond);
    if (fullAt === undefined) return false;
    this.rateFullAt = fullAt;
    return true;
  }

  /**
   * The waiting list, like the replays and the idle tasks, exists only while it holds
   * something: an idle socket keeps none of them (docs/benchmarks.md, memory).
   */
  private get waitingCount(): number {
    return this.waiting?.length ?? 0;
  }

  private wait(ack: Ack | undefined): void {
    (this.waiting ??= []).push(ack);
  }

  /** Every waiting ack, oldest first; the list is gone after. */
  private takeWaiting(): Array<Ack | undefined> {
    const waiting = this.waiting ?? [];
    this.waiting = undefined;
    return waiting;
  }

  private count(ack: Ack | undefined, now = performance.now()): void {
    this.inflight += 1;
    this.deps.metrics.messagesInflight.inc();
    this.track('message', ack, this.increment(), now);
  }

  private increment(): Promise<number> {
    if (this.lease === undefined) return this.deps.store.increment(this.sessionId);
    // A re-send the old connection had counted: its count, without counting it again.
    if (this.nextReplay <= this.replayedUpTo) return Promise.resolve(this.nextReplay++);
    const expected = this.expected;
    this.expected += 1;
    return this.deps.store.incrementLeased(this.sessionId, this.lease, expected);
  }

  /** Queues an operation in arrival order; its answer is acted on once all before it were. */
  private track(kind: Pending['kind'], ack: Ack | undefined, answer: Promise<number>, started = performance.now()): void {
    const entry: Pending = { kind, ack, started, state: 'waiting', count: 0, error: undefined };
    if (this.pendingHead === undefined) this.pendingHead = entry;
    else (this.pendingRest ??= []).push(entry);
    answer.then(
      (count) => {
        entry.state = 'counted';
        entry.count = count;
        this.answered();
      },
      (error: unknown) => {
        entry.state = 'failed';
        entry.error = error;
        this.answered();
      },
    );
  }

  /** Settles every answered entry at the head of the FIFO. */
  private answered(): void {
    for (let head = this.pendingHead; head !== undefined && head.state !== 'waiting'; head = this.pendingHead) {
      this.pendingHead = this.pendingRest?.shift();
      if (this.pendingRest?.length === 0) this.pendingRest = undefined;
      this.settle(head);
    }
    if (this.idle) this.runIdleTasks();
  }

  /** Nothing waits for Redis. */
  private get idle(): boolean {
    return this.pendingHead === undefined;
  }

  private sessionOpened({ count, resumed }: OpenedSession, fields: Record<string, unknown> = {}): number {
    this.confirmed = count;
    if (resumed) this.transportMetrics.sessionsResumed.inc();
    this.log('info', resumed ? 'session resumed' : 'connection opened', { event: resumed ? 'resume' : 'connect', count, ...fields });
    return count;
  }

  /**
   * A resumed connection's open: the counts above the client's `last` answer its first
   * re-sends (planResume), so the bye reports `last` until they went out; then the
   * messages that arrived meanwhile start their increments, in order. A `last` the
   * store refused (too far ahead of its count) ends the connection with 4506 and
   * nothing counted: the lease was never taken.
   */
  private leaseTaken(session: LeasedSession | ResumeTooFar, resume: Resume): number {
    if ('refused' in session) return this.resumeRefused(session, resume);
    const plan = planResume(session.count, resume.last, resume.pending);
    this.lease = session.lease;
    this.expected = session.count;
    this.nextReplay = plan.firstReplay;
    this.replayedUpTo = plan.lastReplay;
    this.sessionOpened(session, { last: resume.last, replays: plan.discard, raised: session.raisedBy });
    if (plan.discard > 0) this.confirmed = resume.last;
    // Nothing can have failed yet: this is the session's first answer. What waited
    // starts within the bound; the rest follows as slots free (slotFreed).
    while (this.inflight < this.deps.maxInflight && this.waitingCount > 0) this.count(this.waiting!.shift());
    if (this.waitingCount === 0) this.waiting = undefined;
    this.resumeIfCaughtUp();
    return session.count;
  }

  private resumeRefused({ count }: ResumeTooFar, { last }: Resume): number {
    this.waiting = undefined;
    this.log('info', 'resume position refused', { event: 'refused', code: CLOSE.invalidResume.code, last, count });
    this.close(CLOSE.invalidResume);
    return count;
  }

  private settle(entry: Pending): void {
    if (entry.state === 'failed') this.storeFailure(entry.error);
    else if (entry.count === STALE_LEASE) this.leaseLost();
    else if (entry.kind === 'message') this.reply(entry.count, entry.ack, entry.started);
    if (entry.kind === 'message') this.slotFreed();
  }

  private reply(count: number, ack: Ack | undefined, started: number): void {
    if (this.countsStopped !== undefined || this.finished || !this.stillReading()) return;
    // Only a count handed to the transport is confirmed: a bye never reports one the client cannot get.
    this.sink.sendCount(count, ack, count <= this.replayedUpTo);
    this.confirmed = count;
    this.transportMetrics.messages.inc();
    this.transportMetrics.messageDuration.observe((performance.now() - started) / 1000);
  }

  /** Too many messages await Redis: stop reading from the client, or close if the transport cannot pause. */
  private throttle(): boolean {
    if (this.paused) return true;
    if (this.sink.pauseReading()) {
      this.paused = true;
      return true;
    }
    this.close(CLOSE.tooManyInflight);
    return false;
  }

  private slotFreed(): void {
    this.inflight -= 1;
    this.deps.metrics.messagesInflight.dec();
    if (this.waiting !== undefined && this.waiting.length > 0) return this.count(this.waiting.shift());
    this.resumeIfCaughtUp();
  }

  private resumeIfCaughtUp(): void {
    if (this.paused && this.inflight <= this.deps.maxInflight / 2) {
      this.paused = false;
      this.sink.resumeReading();
    }
  }

  /** The store answered a stale lease: a newer connection resumed the session; this one ends. */
  private leaseLost(): void {
    this.stopCounting(CLOSE.sessionTaken, () => this.log('info', 'session resumed on another connection', { event: 'session_taken' }));
  }

  private storeFailure(error: unknown): void {
    this.stopCounting(CLOSE.storeUnavailable, () => this.log('warn', 'session store failed', { event: 'store_error', ...errorFields(error) }));
  }

  /** No count goes out after this; the first cause is logged once, and the connection ends with `reason`. */
  private stopCounting(reason: KnownClose, logFirst: () => void): void {
    if (this.countsStopped === undefined) {
      this.countsStopped = reason;
      logFirst();
    }
    this.close(reason);
  }

  /**
   * Server-initiated close, the one path for every reason. A 'bye' close answers the
   * messages already received first, then sends the bye, then the close frame; it
   * is idempotent and the first reason wins. A 'fail' close sends the close frame
   * at once, and takes over from a 'bye' close still waiting for Redis.
   * `detail` (the parser's error code) goes to the log line only.
   */
  close(reason: KnownClose, detail?: string): void {
    if (this.finished) return;
    if (reason.ending === 'fail') return this.fail(reason, detail);
    if (this.current.state === 'closing') return;
    this.current = { state: 'closing', reason };
    // Messages waiting for a slot were received before this decision: they get their
    // counts before the bye, unless Redis failed or the session was taken (then the
    // client re-sends them). A resumed connection's wait for its lease, whose answer counts them.
    if (this.countsStopped !== undefined) this.waiting = undefined;
    else if (!this.waitsForLease) for (const ack of this.takeWaiting()) this.count(ack);
    this.recordClose(reason, detail);
    this.whenIdle(() => {
      if (this.finished) return;
      if (this.confirmed !== undefined) this.sink.sendBye(this.confirmed, reason);
      this.sendClose(reason);
    });
  }

  /** RFC 6455 §7.1.7 _Fail the WebSocket Connection_: the close frame now, and nothing after it. */
  private fail(reason: KnownClose, detail: string | undefined): void {
    this.waiting = undefined;
    this.recordClose(reason, detail);
    this.sendClose(reason);
  }

  private sendClose(reason: KnownClose): void {
    this.current = { state: 'closed', reason };
    this.sink.closeTransport(reason);
  }

  private recordClose(reason: KnownClose, detail: string | undefined): void {
    if (reason.kind !== 'shutdown') this.deps.metrics.error(reason.kind);
    // A drain closes every socket at once; its per-socket line is debug, the close line that follows is not.
    const level = reason === CLOSE.shuttingDown ? 'debug' : 'info';
    const fields = { event: 'closing', code: reason.code, reason: reason.reason, ending: reason.ending };
    this.log(level, 'closing connection', detail === undefined ? fields : { ...fields, detail });
  }

  sendHeartbeat(packet: HeartbeatPacket): void {
    if (this.current.state === 'open' && this.stillReading()) this.sink.sendHeartbeat(packet);
  }

  /**
   * A client that stops reading would make the replica hold every reply and heartbeat
   * for it; past MAX_BUFFERED_BYTES it is closed instead (its close frame waits behind
   * the backlog; ws destroys the socket if the closing handshake never completes).
   */
  private stillReading(): boolean {
    if (this.sink.bufferedBytes() <= this.deps.maxBufferedBytes) return true;
    this.close(CLOSE.slowConsumer);
    return false;
  }

  /**
   * The transport reports the socket closed with `code` (ABNORMAL_CLOSURE when
   * no close frame came). The final total is logged once in-flight messages settled.
   */
  transportClosed(code: number): void {
    if (this.current.state === 'gone') return;
    const reason = this.decided;
    this.current = { state: 'gone', reason };
    // No reply can reach the client now, and it re-sends them after reconnecting:
    // counting them would skip counts (those already at Redis cannot be called back).
    this.waiting = undefined;
    const by = reason !== undefined ? 'server' : code === ABNORMAL_CLOSURE ? 'abnormal' : 'client';
    this.deps.store.released?.(this.sessionId);
    this.transportMetrics.connectionsActive.dec();
    // Only server-sent codes become label values; client codes are arbitrary numbers.
    this.deps.metrics.connectionsClosed.inc({ transport: this.transport, code: reason?.code.toString() ?? by });
    // The session stays in Redis (until its TTL) so the client can resume it.
    this.whenIdle(() =>
      this.log('info', 'connection closed', { event: 'close', by, code: reason?.code ?? code, total: this.confirmed ?? 0 }),
    );
  }

  /**
   * Runs `task` once every pending operation is answered. Never synchronously:
   * callers are often inside a transport's own event (a parser error, a message),
   * where closing the socket at once would re-enter it.
   */
  private whenIdle(task: () => void): void {
    (this.idleTasks ??= []).push(task);
    if (this.idle) queueMicrotask(() => this.runIdleTasks());
  }

  private runIdleTasks(): void {
    // Run after every answer that empties the FIFO: nothing to allocate when there is nothing to run.
    const tasks = this.idleTasks;
    if (!this.idle || tasks === undefined) return;
    this.idleTasks = undefined;
    for (const task of tasks) task();
  }

  private log(level: string, message: string, fields: Record<string, unknown>): void {
    // winston formats a line before its transport drops it for its level; a drain logs a debug line per socket.
    if (!this.deps.logger.isLevelEnabled(level)) return;
    const context: LogContext = { request_id: this.requestId, session: sessionTag(this.sessionId), transport: this.transport };
    this.deps.logger.log(level, message, { ...context, ...fields });
  }
}
