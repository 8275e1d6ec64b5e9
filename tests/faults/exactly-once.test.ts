/**
 * Resuming with the last count seen, end to end on a real replica and Redis, on both
 * transports (DESIGN.md, "Exactly once"): re-sends answered with the counts Redis
 * already gave them, a count the store lost never handed out again, a newer
 * connection ending the older one with 4505, and a malformed position refused
 * with 4506. The mechanism itself is proven on a model in exactly-once-model.test.ts.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { io, type Socket } from 'socket.io-client';
import { CLOSE } from '../../shared/protocol/closes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { PlainClient } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

type Position = { last: number; pending?: number };

describe('resuming with the last count seen (exactly once)', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let replica: ReplicaProcess;
  const plains: PlainClient[] = [];
  const sockets: Socket[] = [];

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
    replica = await ReplicaProcess.start(redis);
  });

  afterEach(() => {
    for (const client of plains.splice(0)) client.close();
    for (const socket of sockets.splice(0)) socket.disconnect();
  });

  after(async () => {
    await replica?.stop();
    inspect?.disconnect();
    await redis?.destroy();
  });

  async function plain(session: string, position: Position): Promise<PlainClient> {
    const query = new URLSearchParams({ session, last: String(position.last), pending: String(position.pending ?? 0) });
    const client = await PlainClient.connect(`${replica.wsUrl}?${query.toString()}`);
    plains.push(client);
    return client;
  }

  /** A socket.io client resuming with auth.last and auth.pending; its counts arrive as acks. */
  async function socketIo(session: string, position: Position): Promise<Socket> {
    const socket = io(replica.httpUrl, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      auth: { session, last: position.last, pending: position.pending ?? 0 },
    });
    sockets.push(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('session', () => resolve());
      socket.once('connect_error', reject);
    });
    return socket;
  }

  const ack = (socket: Socket, text: string): Promise<number> =>
    new Promise((resolve) => socket.emit('message', text, (reply: { count: number }) => resolve(reply.count)));
  /** The whole ack, replay mark included. */
  const ackReply = (socket: Socket, text: string): Promise<unknown> => new Promise((resolve) => socket.emit('message', text, resolve));

  /** A session Redis holds at `count`, counted by a resumed connection (so in its leased form). */
  async function sessionAt(count: number): Promise<string> {
    const session = randomSessionId();
    const client = await plain(session, { last: 0 });
    client.sendMany(count);
    await client.waitForCounts(count);
    client.close();
    await client.waitClosed();
    return session;
  }

  it("plain: the first re-sends get the counts Redis gave them (the client never read them), the rest are counted", async () => {
    const session = await sessionAt(5);
    // The client read 3 of the 5 counts and re-sends the 2 it has no count for, then a new one.
    const client = await plain(session, { last: 3, pending: 2 });
    client.sendMany(3);
    assert.deepEqual(await client.waitForCounts(3), [4, 5, 6]);
    assert.equal(await inspect.hget(sessionKey(session), 'c'), '6', 'one count per message: 6 messages, 6 counts');
  });

  it('socket.io: the same, each re-send acked with its count, marked as a replay', async () => {
    const session = await sessionAt(5);
    const socket = await socketIo(session, { last: 3, pending: 2 });
    const events: unknown[] = [];
    socket.on('count', (frame: unknown) => events.push(frame));
    const replies = await Promise.all([ackReply(socket, 'a'), ackReply(socket, 'b'), ackReply(socket, 'c')]);
    const expected = [{ count: 4, replay: true }, { count: 5, replay: true }, { count: 6 }];
    assert.deepEqual(replies, expected);
    assert.deepEqual(events, expected, 'the count events carry the same mark');
    assert.equal(await inspect.hget(sessionKey(session), 'c'), '6');
  });

  it('never hands out again a count the store lost: the next count follows the last one the client saw', async () => {
    const session = await sessionAt(3);
    await inspect.del(sessionKey(session));
    const client = await plain(session, { last: 3 });
    client.sendMany(1);
    assert.deepEqual(await client.waitForCounts(1), [4]);
    const socket = await socketIo(session, { last: 4 });
    await inspect.del(sessionKey(session));
    // socket.io's connection took the lease from the plain one; the store lost it again.
    assert.equal(await ack(socket, 'x'), 5);
  });

  it('a newer connection on the session ends the older one with bye + 4505 (no count skipped or repeated)', async () => {
    const session = await sessionAt(2);
    const older = await plain(session, { last: 2 });
    older.sendMany(1);
    assert.deepEqual(await older.waitForCounts(1), [3]);
    const newer = await socketIo(session, { last: 3 });
    older.send('after the newer one resumed');
    assert.deepEqual(await older.waitClosed(), { code: CLOSE.sessionTaken.code, reason: CLOSE.sessionTaken.reason });
    assert.deepEqual(older.replies(), [{ count: 3 }, { bye: true, total: 3 }]);
    assert.equal(await ack(newer, 'y'), 4);
    await eventually(() => replica.events('session_taken').length === 1, 'the session_taken log line');
  });

  it('refuses a malformed position with 4506 on both transports, counting nothing', async () => {
    const session = randomSessionId();
    const client = await PlainClient.connect(`${replica.wsUrl}?session=${session}&last=-1`);
    plains.push(client);
    assert.deepEqual(await client.waitClosed(), { code: 4506, reason: 'invalid resume position' });
    await assert.rejects(socketIo(session, { last: 1.5 }), (error: Error & { data?: unknown }) => {
      assert.equal(error.message, 'invalid resume position');
      assert.deepEqual(error.data, { code: 4506, reason: 'invalid resume position' });
      return true;
    });
    assert.equal(await inspect.exists(sessionKey(session)), 0);
    assert.equal(await replica.metric('wschat_errors_total', { kind: 'invalid_resume' }), 2);
  });
});
