/**
 * Property-based test (fast-check, model-based): random sequences of connect,
 * message, reconnect elsewhere, client close and server close (a bad frame: bye,
 * then close), over 3 replicas on one Redis and both transports, checked reply by
 * reply against a model of the counters:
 * - per session, each message's count is the previous one + 1, whichever
 *   connection, replica or transport sends it;
 * - a connection resumes its session where it was (the replica's open log line
 *   says resume/connect with that count); a new session starts at 0 with a fresh id;
 * - a bye carries the count last confirmed to that connection; a client close is
 *   logged with the same total;
 * - nothing else arrives on any connection; Redis ends with the model's counts.
 * Steps run one after the other (each waits for its replies), so the model is exact.
 * fast-check prints the seed and the shrunk sequence of a failure; replay it with
 * COUNTER_MODEL_SEED=<seed> (and COUNTER_MODEL_PATH=<path>).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { isValidSessionId } from '../../shared/protocol/session-id.js';
import { textOf } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess, withTimeout, type LogLine } from '../../tools/harness/processes.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

const REPLICAS = 3;
const MAX_CONNECTIONS = 5;
const MAX_SESSIONS = 4;
const NUM_RUNS = Number(process.env.COUNTER_MODEL_RUNS ?? 30);
const STEP_TIMEOUT_MS = 5000;

type Transport = 'plain' | 'socketio';
/** What a connection receives, as JSON text: {"count":n} or {"bye":true,"total":n}. */
type Frame = string;

const countFrame = (count: number): Frame => JSON.stringify({ count });
const byeFrame = (total: number): Frame => JSON.stringify({ bye: true, total });

interface ModelConnection {
  session: number;
  transport: Transport;
  replica: number;
  /** The count last confirmed to this connection (what its bye must carry). */
  confirmed: number;
  expected: Frame[];
}

interface Model {
  /** Per session, its count. */
  counts: number[];
  connections: ModelConnection[];
}

/** One real connection, recording every frame it receives. */
interface RealConnection {
  readonly requestId: string;
  readonly frames: Frame[];
  /** The session id the server confirmed (X-Session-Id, or the socket.io `session` event). */
  readonly session: string;
  send(text: string): void;
  /** Something the server refuses with bye + a close: a binary frame, a non-string socket.io message. */
  sendUncountable(): void;
  /** Client-initiated close; resolves once closed. */
  close(): Promise<void>;
  /** Resolves with how the server closed it: the close code and reason, or the socket.io disconnect reason. */
  serverClosed(): Promise<string>;
  /** socket.io only: counts received through acks. */
  readonly acks: number[];
}

async function connectPlain(replica: ReplicaProcess, session: string | undefined): Promise<RealConnection> {
  const requestId = randomUUID();
  const url = session === undefined ? replica.wsUrl : `${replica.wsUrl}?session=${session}`;
  const ws = new WebSocket(url, { headers: { 'x-request-id': requestId } });
  const frames: Frame[] = [];
  let assigned = '';
  ws.on('upgrade', (response) => (assigned = String(response.headers['x-session-id'])));
  ws.on('message', (data, isBinary) => frames.push(isBinary ? '<binary>' : textOf(data)));
  const closed = new Promise<string>((resolve) => ws.on('close', (code, reason) => resolve(`${code} ${reason.toString()}`)));
  await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), STEP_TIMEOUT_MS, 'the plain handshake');
  return {
    requestId,
    frames,
    session: assigned,
    acks: [],
    send: (text) => ws.send(text),
    sendUncountable: () => ws.send(Buffer.from([1, 2, 3]), { binary: true }),
    close: async () => {
      ws.close(1000);
      await withTimeout(closed, STEP_TIMEOUT_MS, 'the client close');
    },
    serverClosed: () => withTimeout(closed, STEP_TIMEOUT_MS, 'the server close'),
  };
}

async function connectSocketIo(replica: ReplicaProcess, session: string | undefined): Promise<RealConnection> {
  const requestId = randomUUID();
  const socket: Socket = io(replica.httpUrl, {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth: session === undefined ? {} : { session },
    extraHeaders: { 'x-request-id': requestId },
  });
  const frames: Frame[] = [];
  const acks: number[] = [];
  socket.on('count', (frame: { count: number }) => frames.push(countFrame(frame.count)));
  socket.on('bye', (frame: { bye: true; total: number }) => frames.push(byeFrame(frame.total)));
  socket.on('heartbeat', () => frames.push('<heartbeat>'));
  const disconnected = new Promise<string>((resolve) => socket.on('disconnect', (reason) => resolve(reason)));
  const assigned = await withTimeout(
    new Promise<string>((resolve, reject) => {
      socket.once('session', (frame: { session: string }) => resolve(frame.session));
      socket.once('connect_error', reject);
    }),
    STEP_TIMEOUT_MS,
    'the socket.io connect',
  );
  return {
    requestId,
    frames,
    session: assigned,
    acks,
    send: (text) => socket.emit('message', text, (reply: { count: number }) => acks.push(reply.count)),
    sendUncountable: () => socket.emit('message', 42),
    close: async () => {
      socket.disconnect();
      await withTimeout(disconnected, STEP_TIMEOUT_MS, 'the client disconnect');
    },
    serverClosed: () => withTimeout(disconnected, STEP_TIMEOUT_MS, 'the server disconnect'),
  };
}

class Real {
  readonly sessions: string[] = [];
  readonly connections: RealConnection[] = [];

  constructor(readonly replicas: ReplicaProcess[]) {}

  /** The replica's log line for `requestId` with one of `events`, once written. */
  async logLine(replica: number, requestId: string, events: string[]): Promise<LogLine> {
    const find = (): LogLine | undefined =>
      this.replicas[replica]!.logs.find((line) => line.request_id === requestId && events.includes(String(line.event)));
    await eventually(() => find() !== undefined, `${events.join('/')} logged for ${requestId}`, STEP_TIMEOUT_MS);
    return find()!;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.connections.splice(0).map((connection) => connection.close().catch(() => undefined)));
  }
}

/** Every connection has received exactly what the model expects, and nothing else (so far). */
async function expectFrames(model: Model, real: Real, acting?: number): Promise<void> {
  if (acting !== undefined) {
    const want = model.connections[acting]!.expected.length;
    const frames = real.connections[acting]!.frames;
    await eventually(() => frames.length >= want, `${want} frames (have ${frames.length}: ${frames.join(' ')})`, STEP_TIMEOUT_MS, 2);
  }
  model.connections.forEach((connection, index) => {
    assert.deepEqual(real.connections[index]!.frames, connection.expected, `frames of connection ${index}`);
  });
}

const pick = (model: Model, index: number): number => index % model.connections.length;

/** Opens a connection (a new session or a known one) and checks how the replica opened it. */
async function open(
  model: Model,
  real: Real,
  session: number | 'new',
  replica: number,
  transport: Transport,
): Promise<void> {
  const connect = transport === 'plain' ? connectPlain : connectSocketIo;
  const requested = session === 'new' ? undefined : real.sessions[session];
  const connection = await connect(real.replicas[replica]!, requested);
  let index: number;
  if (session === 'new') {
    assert.ok(isValidSessionId(connection.session), `a fresh session id: ${connection.session}`);
    assert.ok(!real.sessions.includes(connection.session), 'a fresh session id is new');
    real.sessions.push(connection.session);
    model.counts.push(0);
    index = model.counts.length - 1;
  } else {
    assert.equal(connection.session, requested, 'the server confirms the session asked for');
    index = session;
  }
  real.connections.push(connection);
  const count = model.counts[index]!;
  model.connections.push({ session: index, transport, replica, confirmed: count, expected: [] });
  // The replica loaded the session before anything else happens (so the model stays exact).
  const line = await real.logLine(replica, connection.requestId, ['connect', 'resume']);
  assert.equal(line.event, count > 0 ? 'resume' : 'connect', 'a session with a count is resumed');
  assert.equal(line.count, count, 'the replica opened the session at its count');
  await expectFrames(model, real);
}

type Command = fc.AsyncCommand<Model, Real>;

/** Steps run (commands whose precondition held), over all sequences. */
let stepsRun = 0;

class Connect implements Command {
  constructor(
    readonly session: number | 'new',
    readonly replica: number,
    readonly transport: Transport,
  ) {}
  check(model: Readonly<Model>): boolean {
    if (model.connections.length >= MAX_CONNECTIONS) return false;
    return this.session === 'new' ? model.counts.length < MAX_SESSIONS : model.counts.length > 0;
  }
  async run(model: Model, real: Real): Promise<void> {
    stepsRun += 1;
    const session = this.session === 'new' ? 'new' : this.session % model.counts.length;
    await open(model, real, session, this.replica, this.transport);
  }
  toString(): string {
    return `connect(${this.session}, replica ${this.replica}, ${this.transport})`;
  }
}

/** A step on one of the open connections: possible whenever one is open. */
abstract class OnAConnection implements Command {
  check(model: Readonly<Model>): boolean {
    return model.connections.length > 0;
  }
  abstract run(model: Model, real: Real): Promise<void>;
  abstract toString(): string;
}

class Message extends OnAConnection {
  constructor(
    readonly connection: number,
    readonly burst: number,
  ) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    stepsRun += 1;
    const index = pick(model, this.connection);
    const connection = model.connections[index]!;
    for (let i = 0; i < this.burst; i += 1) {
      real.connections[index]!.send(`message ${i}`);
      model.counts[connection.session]! += 1;
      connection.confirmed = model.counts[connection.session]!;
      connection.expected.push(countFrame(connection.confirmed));
    }
    await expectFrames(model, real, index);
    if (connection.transport === 'socketio') {
      const counts = connection.expected.map((frame) => (JSON.parse(frame) as { count?: number }).count).filter((n) => n !== undefined);
      await eventually(() => real.connections[index]!.acks.length === counts.length, 'the acks', STEP_TIMEOUT_MS, 2);
      assert.deepEqual(real.connections[index]!.acks, counts, 'acks carry the same counts');
    }
  }
  toString(): string {
    return `message(#${this.connection}, x${this.burst})`;
  }
}

/** The client closes; the replica logs the close with the total it had confirmed. */
async function clientClose(model: Model, real: Real, index: number): Promise<ModelConnection> {
  const [connection] = model.connections.splice(index, 1);
  const [realConnection] = real.connections.splice(index, 1);
  await realConnection!.close();
  const line = await real.logLine(connection!.replica, realConnection!.requestId, ['close']);
  assert.equal(line.by, 'client');
  assert.equal(line.total, connection!.confirmed, 'the final total the replica logged');
  assert.deepEqual(realConnection!.frames, connection!.expected, 'nothing arrived but the counts');
  await expectFrames(model, real);
  return connection!;
}

class Close extends OnAConnection {
  constructor(readonly connection: number) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    stepsRun += 1;
    await clientClose(model, real, pick(model, this.connection));
  }
  toString(): string {
    return `close(#${this.connection})`;
  }
}

class ReconnectElsewhere extends OnAConnection {
  constructor(
    readonly connection: number,
    readonly shift: number,
    readonly transport: Transport,
  ) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    stepsRun += 1;
    const closed = await clientClose(model, real, pick(model, this.connection));
    await open(model, real, closed.session, (closed.replica + this.shift) % REPLICAS, this.transport);
  }
  toString(): string {
    return `reconnectElsewhere(#${this.connection}, +${this.shift}, ${this.transport})`;
  }
}

/** The server closes: a frame it will not count gets bye (the connection's total), then the close. */
class ServerClose extends OnAConnection {
  constructor(readonly connection: number) {
    super();
  }
  async run(model: Model, real: Real): Promise<void> {
    stepsRun += 1;
    const index = pick(model, this.connection);
    const connection = model.connections[index]!;
    const realConnection = real.connections[index]!;
    realConnection.sendUncountable();
    connection.expected.push(byeFrame(connection.confirmed));
    await expectFrames(model, real, index);
    const how = await realConnection.serverClosed();
    assert.equal(how, connection.transport === 'plain' ? '1003 binary frames are not supported' : 'io server disconnect');
    model.connections.splice(index, 1);
    real.connections.splice(index, 1);
    await expectFrames(model, real);
  }
  toString(): string {
    return `serverClose(#${this.connection})`;
  }
}

const transport = fc.constantFrom<Transport>('plain', 'socketio');
const replica = fc.integer({ min: 0, max: REPLICAS - 1 });
const connectionIndex = fc.nat({ max: MAX_CONNECTIONS - 1 });
const commands = [
  fc.tuple(fc.oneof(fc.constant<'new'>('new'), fc.nat({ max: MAX_SESSIONS - 1 })), replica, transport).map(
    ([session, r, t]) => new Connect(session, r, t),
  ),
  fc.tuple(connectionIndex, fc.integer({ min: 1, max: 3 })).map(([c, burst]) => new Message(c, burst)),
  fc.tuple(connectionIndex, fc.integer({ min: 1, max: REPLICAS - 1 }), transport).map(([c, shift, t]) => new ReconnectElsewhere(c, shift, t)),
  connectionIndex.map((c) => new Close(c)),
  connectionIndex.map((c) => new ServerClose(c)),
];

describe('counters against a model (property-based)', function () {
  this.timeout(180_000);
  let redis: RedisServer;
  let replicas: ReplicaProcess[] = [];
  let inspect: Redis;

  before(async () => {
    redis = await RedisServer.start();
    replicas = await Promise.all(Array.from({ length: REPLICAS }, () => ReplicaProcess.start(redis)));
    inspect = redis.client();
  });

  after(async () => {
    inspect?.disconnect();
    await Promise.all(replicas.map((r) => r.stop()));
    await redis?.destroy();
  });

  it(`answers every step of ${NUM_RUNS} random sequences as the model says`, async () => {
    await fc.assert(
      fc.asyncProperty(
        replica,
        transport,
        fc.commands(commands, { maxCommands: 40, size: 'max' }),
        async (firstReplica, firstTransport, sequence) => {
          const model: Model = { counts: [], connections: [] };
          const real = new Real(replicas);
          try {
            // Every sequence starts with one connection on a new session, so every command applies from the start.
            await open(model, real, 'new', firstReplica, firstTransport);
            await fc.asyncModelRun(() => ({ model, real }), sequence);
            await expectFrames(model, real);
            for (const [index, id] of real.sessions.entries()) {
              const stored = await inspect.get(sessionKey(id));
              assert.equal(Number(stored ?? 0), model.counts[index], `Redis holds session ${index}'s count`);
            }
          } finally {
            await real.closeAll();
          }
        },
      ),
      {
        numRuns: NUM_RUNS,
        seed: process.env.COUNTER_MODEL_SEED === undefined ? undefined : Number(process.env.COUNTER_MODEL_SEED),
        path: process.env.COUNTER_MODEL_PATH,
        // Shrinking a failure re-runs sequences against the replicas; stop it in time to report.
        interruptAfterTimeLimit: 150_000,
        markInterruptAsFailure: true,
      },
    );
    for (const r of replicas) {
      assert.equal(r.stderr, '', 'nothing on stderr');
    }
    process.stdout.write(`      ${NUM_RUNS} sequences, ${stepsRun} steps\n`);
  });
});
