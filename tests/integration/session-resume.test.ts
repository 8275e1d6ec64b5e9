/**
 * A session resumed with its id and nothing sent, on both transports: the open alone
 * refreshes the key's TTL to SESSION_TTL_SECONDS (the next message would refresh it
 * too, which is how dropping the refresh from the open script went unnoticed), and a
 * drain's bye reports the stored count the client has not added to.
 */
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { CLOSE } from '../../shared/protocol/closes.js';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { sessionTag } from '../../services/gateway/logger.js';
import { PlainClient, SocketIoClient } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';
import { sessionKey } from '../../tools/harness/session-keys.js';

const SESSION_TTL_SECONDS = 3600;
/** What a key is left with before the resume: far below SESSION_TTL_SECONDS. */
const SHORT_TTL_SECONDS = 30;

const transports = {
  plain: (replica: ReplicaProcess, session: string) => PlainClient.connect(replica.wsUrl, session),
  'socket.io': (replica: ReplicaProcess, session: string) => SocketIoClient.connect(replica.httpUrl, session),
};

describe('a resumed session that sends nothing', () => {
  let redis: RedisServer;
  let inspect: Redis;
  let replica: ReplicaProcess;
  const clients: Array<PlainClient | SocketIoClient> = [];

  before(async () => {
    redis = await RedisServer.start();
    inspect = redis.client();
  });

  beforeEach(async () => {
    replica = await ReplicaProcess.start(redis, { SESSION_TTL_SECONDS: String(SESSION_TTL_SECONDS) });
  });

  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await replica?.stop();
  });

  after(async () => {
    inspect?.disconnect();
    await redis?.destroy();
  });

  /** A session Redis already holds with `count`, as an earlier connection left it, with a short TTL left. */
  async function storedSession(count: number): Promise<string> {
    const session = randomSessionId();
    await inspect.set(sessionKey(session), String(count), 'EX', SHORT_TTL_SECONDS);
    return session;
  }

  /** Resumes `session` over `transport` and waits until the replica has answered its open (its "resume" line). */
  async function resume(transport: keyof typeof transports, session: string): Promise<PlainClient | SocketIoClient> {
    const client = await transports[transport](replica, session);
    clients.push(client);
    const tag = sessionTag(session);
    await eventually(() => replica.events('resume').some((line) => line.session === tag), `the replica to open session ${tag}`);
    return client;
  }

  for (const transport of Object.keys(transports) as Array<keyof typeof transports>) {
    it(`${transport}: the open alone refreshes the TTL to SESSION_TTL_SECONDS and keeps the count`, async () => {
      const session = await storedSession(7);
      await resume(transport, session);
      const ttl = await inspect.ttl(sessionKey(session));
      assert.ok(
        ttl > SESSION_TTL_SECONDS - 10,
        `resuming a session must refresh its TTL to SESSION_TTL_SECONDS (${SESSION_TTL_SECONDS} s): it is ${ttl} s`,
      );
      assert.equal(await inspect.get(sessionKey(session)), '7', 'the open counts nothing');
    });
  }

  it('a drain says bye with the stored count, on both transports', async () => {
    const plainSession = await storedSession(7);
    const socketIoSession = await storedSession(11);
    const plain = (await resume('plain', plainSession)) as PlainClient;
    const socketIo = (await resume('socket.io', socketIoSession)) as SocketIoClient;

    replica.signal('SIGTERM');
    assert.deepEqual(await plain.waitClosed(), { code: CLOSE.shuttingDown.code, reason: CLOSE.shuttingDown.reason });
    await socketIo.waitDisconnected();
    assert.deepEqual(plain.replies(), [{ bye: true, total: 7 }], 'plain: the bye carries the resumed count');
    assert.deepEqual(socketIo.replies(), [{ bye: true, total: 11, code: 1001, reason: 'server shutting down' }], 'socket.io: the bye carries the resumed count and the close');
    assert.equal((await replica.exited).code, 0, 'the drained replica exits 0');
  });
});
