/**
 * One load-test worker process (forked by tools/loadtest.ts): opens its share of
 * sockets, sends, and checks every reply. Each socket expects counts 1, 2, 3...
 * exactly; every heartbeat is recorded per socket; a bye must carry the last
 * count. Latencies go into HDR histograms, sent to the coordinator encoded.
 *
 * Plain frames of the two frequent shapes (a count, a heartbeat) are read off their
 * bytes (frame-prefix.ts: a heartbeat is decoded once per tick, not per socket); any
 * other frame, and socket.io's, goes through the client library's decoders, and
 * nothing else of the library is used: the load test must see the server's raw
 * behaviour, so a socket that closes is an error here, never healed by a reconnect or
 * a re-send. Between hold and stop the worker counts its own CPU and the frames it
 * read, so the report says what the generator itself cost per frame.
 */
import * as hdr from 'hdr-histogram-js';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { parseServerFrame, toServerFrame, type ServerFrame } from '../../shared/protocol/messages.js';
import { textOf } from '../harness/clients.js';
import { HeartbeatScanner, scanCount } from './frame-prefix.js';
import type { CoordinatorMessage, RoundTripSample, TickWindow, WorkerConfig, WorkerMessage, WorkerResult, WorkerWindow } from './protocol.js';

type Histogram = ReturnType<typeof hdr.build>;

function histogram(): Histogram {
  // Microseconds, from 1 µs to 10 minutes, 3 significant digits.
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

const micros = (ms: number): number => Math.max(1, Math.round(ms * 1000));

class Session {
  expected = 1;
  lastCount = 0;
  /** Send times of messages awaiting their count, oldest first (replies come in order). */
  readonly sent: number[] = [];
  /** Their wall-clock send times, kept only when the worker records round trips. */
  readonly sentWall: number[] = [];
  /** The pause before the next message of a closed loop with a think time. */
  thinking: NodeJS.Timeout | undefined;
  readonly heartbeats: string[] = [];
  open = false;
  closeCode: number | string | undefined;
  send: (text: string) => void = () => undefined;
  close: () => void = () => undefined;
}

class Worker {
  private readonly sessions: Session[] = [];
  private readonly handshake = histogram();
  private readonly roundTrip = histogram();
  private readonly fanOut = histogram();
  private readonly tickToLast: Record<string, number> = {};
  private readonly errors: Record<string, number> = {};
  private readonly closes: Record<string, number> = {};
  private messages = 0;
  private frames = 0;
  private heartbeatFrames = 0;
  private pings = 0;
  /** Counters and CPU at the coordinator's hold: the window's figures are taken from here. */
  private atHold: { cpu: NodeJS.CpuUsage; messages: number; frames: number; heartbeatFrames: number; pings: number } | undefined;
  private readonly heartbeatScanner = new HeartbeatScanner();
  private connected = 0;
  private stopping = false;
  /** Heartbeat fan-out is recorded from this time on: once every socket is connected, the steady state. */
  private fanOutSince = Number.POSITIVE_INFINITY;
  private timers: NodeJS.Timeout[] = [];
  /** Round trips sent since hold, with recordRoundTrips. */
  private readonly samples: RoundTripSample[] = [];
  private holdSince = Number.POSITIVE_INFINITY;

  constructor(private readonly config: WorkerConfig) {}

  private error(kind: string): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }

  /** Opens every socket, at most `maxHandshakes` at a time, at `rampPerSecond`. */
  async connectAll(): Promise<void> {
    const { sockets, maxHandshakes, rampPerSecond } = this.config;
    const started = performance.now();
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < sockets) {
        const index = next;
        next += 1;
        const due = started + (index / rampPerSecond) * 1000;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        await this.connect(index);
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxHandshakes, sockets) }, lane));
  }

  private connect(index: number): Promise<void> {
    const session = new Session();
    this.sessions.push(session);
    const localAddress = this.config.sourceAddresses[index % this.config.sourceAddresses.length];
    const started = performance.now();
    const socketIo = index < this.config.socketIoSockets;
    return new Promise((resolve) => {
      const opened = (): void => {
        session.open = true;
        this.connected += 1;
        this.handshake.recordValue(micros(performance.now() - started));
        this.startSending(session);
        resolve();
      };
      const failed = (kind: string): void => {
        this.error(kind);
        resolve();
      };
      if (socketIo) this.openSocketIo(session, localAddress, opened, failed);
      else this.openPlain(session, localAddress, opened, failed);
    });
  }

  private openPlain(session: Session, localAddress: string | undefined, opened: () => void, failed: (kind: string) => void): void {
    // The server sends ASCII JSON: a frame that is not is caught by the checks on its content.
    const url = this.config.resume ? `${this.config.wsUrl}?session=${randomSessionId()}&last=0&pending=0` : this.config.wsUrl;
    const ws = new WebSocket(url, { localAddress, handshakeTimeout: 20_000, perMessageDeflate: false, skipUTF8Validation: true });
    session.send = (text) => ws.send(text);
    session.close = () => ws.close(1000);
    ws.on('open', opened);
    ws.on('error', () => {
      if (!session.open) failed('handshake_failed');
    });
    ws.on('message', (data: Buffer) => this.plainFrame(session, data));
    // ws answers each ping with a pong: the generator's work too, so it counts as a frame read.
    ws.on('ping', () => {
      this.frames += 1;
      this.pings += 1;
    });
    ws.on('close', (code) => this.closed(session, code));
  }

  private openSocketIo(session: Session, localAddress: string | undefined, opened: () => void, failed: (kind: string) => void): void {
    const socket: Socket = io(this.config.httpUrl, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: 20_000,
      ...(this.config.resume ? { auth: { session: randomSessionId(), last: 0, pending: 0 } } : {}),
      ...(localAddress === undefined ? {} : { localAddress }),
    });
    session.send = (text) => socket.emit('message', text);
    session.close = () => socket.disconnect();
    socket.on('connect', opened);
    socket.on('connect_error', () => failed('handshake_failed'));
    socket.on('count', (frame: unknown) => this.frame(session, toServerFrame(frame)));
    socket.on('heartbeat', (frame: unknown) => this.frame(session, toServerFrame(frame)));
    socket.on('bye', (frame: unknown) => this.frame(session, toServerFrame(frame)));
    socket.on('disconnect', (reason) => this.closed(session, reason));
  }

  /** A plain frame: the fast path for counts and heartbeats, the full decoder for the rest. */
  private plainFrame(session: Session, data: Buffer): void {
    const count = scanCount(data);
    if (count >= 0) return this.counted(session, count);
    const ts = this.heartbeatScanner.scan(data);
    if (ts !== undefined) return this.heartbeat(session, ts, this.heartbeatScanner.lastTickAt);
    this.frame(session, parseServerFrame(textOf(data)));
  }

  private counted(session: Session, count: number): void {
    this.frames += 1;
    if (count !== session.expected) this.error('count_mismatch');
    session.lastCount = count;
    session.expected = count + 1;
    const sentAt = session.sent.shift();
    const sentWall = session.sentWall.shift();
    if (sentAt === undefined) this.error('unexpected_count');
    else {
      const took = micros(performance.now() - sentAt);
      this.roundTrip.recordValue(took);
      if (sentWall !== undefined && sentWall >= this.holdSince) this.samples.push([sentWall, took]);
    }
    this.messages += 1;
    if (this.config.messageRate !== 0) return;
    const thinkMs = this.config.thinkMs ?? 0;
    if (thinkMs > 0) session.thinking = setTimeout(() => this.sendOne(session), thinkMs);
    else this.sendOne(session);
  }

  private heartbeat(session: Session, ts: string, tickAt: number): void {
    this.frames += 1;
    this.heartbeatFrames += 1;
    session.heartbeats.push(ts);
    if (tickAt >= this.fanOutSince) {
      const elapsedMs = Date.now() - tickAt;
      this.fanOut.recordValue(micros(elapsedMs));
      // Frames of a tick arrive in time order: the last one read is the tick's reading time.
      this.tickToLast[ts] = elapsedMs;
    }
  }

  private frame(session: Session, frame: ServerFrame): void {
    switch (frame.type) {
      case 'count':
        return this.counted(session, frame.count);
      case 'heartbeat':
        return this.heartbeat(session, frame.ts, Date.parse(frame.ts));
      case 'bye':
        this.frames += 1;
        if (frame.total !== session.lastCount) this.error('bye_total_mismatch');
        break;
      case 'unknown':
        this.frames += 1;
        this.error('unknown_frame');
        break;
    }
  }

  private closed(session: Session, code: number | string): void {
    const wasOpen = session.open;
    session.open = false;
    session.closeCode = code;
    // A socket that never opened is already counted as a failed handshake.
    if (!this.stopping && wasOpen) {
      this.error('closed_early');
      this.closes[String(code)] = (this.closes[String(code)] ?? 0) + 1;
    }
  }

  private startSending(session: Session): void {
    const { messageRate } = this.config;
    if (messageRate === 0) return this.sendOne(session);
    // Spread the sockets' sends over the period instead of sending in lockstep.
    const period = 1000 / messageRate;
    const timer = setTimeout(() => {
      this.sendOne(session);
      this.timers.push(setInterval(() => this.sendOne(session), period));
    }, Math.random() * period);
    this.timers.push(timer);
  }

  private sendOne(session: Session): void {
    if (this.stopping || !session.open) return;
    const { messagesPerSocket } = this.config;
    if (messagesPerSocket > 0 && session.expected + session.sent.length > messagesPerSocket) return;
    session.sent.push(performance.now());
    if (this.config.recordRoundTrips === true) session.sentWall.push(Date.now());
    session.send('load');
  }

  /** Every worker has connected its sockets at `since`; ticks from then on are the steady state. */
  hold(since: number): void {
    this.fanOutSince = since;
    this.holdSince = Date.now();
    this.atHold = this.counters();
  }

  /** What this process did and spent since hold (all zero if hold never came). */
  private window(): WorkerWindow {
    const from = this.atHold ?? this.counters();
    const cpu = process.cpuUsage(from.cpu);
    return {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      roundTrips: this.messages - from.messages,
      frames: this.frames - from.frames,
      heartbeatFrames: this.heartbeatFrames - from.heartbeatFrames,
      pings: this.pings - from.pings,
    };
  }

  private counters(): NonNullable<Worker['atHold']> {
    return { cpu: process.cpuUsage(), messages: this.messages, frames: this.frames, heartbeatFrames: this.heartbeatFrames, pings: this.pings };
  }

  progress(): WorkerMessage {
    return { type: 'progress', connected: this.connected, messages: this.messages, errors: this.total(this.errors) };
  }

  private total(counts: Record<string, number>): number {
    return Object.values(counts).reduce((sum, n) => sum + n, 0);
  }

  /** Stops sending, waits for outstanding answers, checks the heartbeats of the window, closes. */
  async finish(ticks: TickWindow): Promise<WorkerResult> {
    const window = this.window();
    this.stopping = true;
    for (const timer of this.timers) clearTimeout(timer);
    for (const session of this.sessions) clearTimeout(session.thinking);
    const deadline = Date.now() + 10_000;
    while (this.sessions.some((s) => s.open && s.sent.length > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const unanswered = this.sessions.reduce((sum, s) => sum + s.sent.length, 0);
    if (unanswered > 0) this.errors.unanswered = unanswered;
    const held = this.sessions.filter((s) => s.open).length;
    const expectedTicks = ticks.ticks;
    let missed = 0;
    let duplicated = 0;
    // Only sockets held through the whole window owe every tick of it.
    for (const session of this.sessions.filter((s) => s.open)) {
      const inWindow = session.heartbeats.filter((ts) => expectedTicks.includes(ts));
      duplicated += inWindow.length - new Set(inWindow).size;
      missed += expectedTicks.filter((ts) => !inWindow.includes(ts)).length;
    }
    for (const session of this.sessions) session.close();
    return {
      type: 'result',
      requested: this.config.sockets,
      held,
      messages: this.messages,
      errors: this.errors,
      closes: this.closes,
      heartbeatsMissed: missed,
      heartbeatsDuplicated: duplicated,
      handshake: hdr.encodeIntoCompressedBase64(this.handshake),
      roundTrip: hdr.encodeIntoCompressedBase64(this.roundTrip),
      fanOut: hdr.encodeIntoCompressedBase64(this.fanOut),
      tickToLast: this.tickToLast,
      window,
      ...(this.config.recordRoundTrips === true ? { roundTrips: this.samples } : {}),
    };
  }
}

let worker: Worker | undefined;
let progressTimer: NodeJS.Timeout | undefined;
const send = (message: WorkerMessage): void => void process.send?.(message);

// The coordinator gone (killed, crashed) ends the worker: an orphan would hold its sockets open.
process.on('disconnect', () => process.exit(1));
process.on('message', (message: CoordinatorMessage) => {
  if (message.type === 'hold') {
    worker?.hold(message.since);
  } else if (message.type === 'start') {
    const current = new Worker(message.config);
    worker = current;
    progressTimer = setInterval(() => send(current.progress()), 1000);
    void current.connectAll().then(() => send({ type: 'connected' }));
  } else if (worker !== undefined) {
    clearInterval(progressTimer);
    void worker.finish(message.window).then((result) => {
      send(result);
      setTimeout(() => process.exit(0), 200);
    });
  }
});
