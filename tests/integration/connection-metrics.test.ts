/**
 * The connection metrics read straight from a replica's /metrics, on both transports:
 * wschat_connections_active up on connect and down on close, wschat_messages_total up
 * by exactly the messages answered. (Other suites notice a wrong figure only
 * indirectly: a ping test timing out, a memory test's sum.)
 */
import assert from 'node:assert/strict';
import { sessionTag } from '../../services/gateway/logger.js';
import { PlainClient, SocketIoClient } from '../../tools/harness/clients.js';
import { eventually, RedisServer, ReplicaProcess } from '../../tools/harness/processes.js';

const transports = {
  plain: async (replica: ReplicaProcess) => {
    const client = await PlainClient.connect(replica.wsUrl);
    return { client, session: client.sessionId };
  },
  socketio: async (replica: ReplicaProcess) => {
    const client = await SocketIoClient.connect(replica.httpUrl);
    return { client, session: client.session };
  },
};

describe('connection metrics', () => {
  let redis: RedisServer;
  let replica: ReplicaProcess;
  const clients: Array<PlainClient | SocketIoClient> = [];

  before(async () => {
    redis = await RedisServer.start();
    replica = await ReplicaProcess.start(redis);
  });

  afterEach(() => {
    for (const client of clients.splice(0)) client.close();
  });

  after(async () => {
    await replica?.stop();
    await redis?.destroy();
  });

  for (const transport of Object.keys(transports) as Array<keyof typeof transports>) {
    it(`${transport}: connections_active 1 once connected, 0 once closed; messages_total +3 for three messages`, async () => {
      const labels = { transport };
      const metric = (name: string): Promise<number> => replica.metric(name, labels);
      const messagesBefore = await metric('wschat_messages_total');
      const closedBefore = await replica.metric('wschat_connections_closed_total', { transport, code: 'client' });
      assert.equal(await metric('wschat_connections_active'), 0, 'no socket yet');

      const { client, session } = await transports[transport](replica);
      clients.push(client);
      // The replica counts the socket before the client can see its handshake answered.
      assert.equal(await metric('wschat_connections_active'), 1, 'wschat_connections_active once connected');

      client.sendMany(3);
      assert.deepEqual(await client.waitForCounts(3), [1, 2, 3]);
      // Each count is added to the metric before it is written, so it is there once the client has it.
      assert.equal((await metric('wschat_messages_total')) - messagesBefore, 3, 'wschat_messages_total after three messages');
      assert.equal(await metric('wschat_connections_active'), 1, 'still one socket while it stays open');

      client.close();
      // The replica's "connection closed" line is written after the gauge went down.
      const tag = sessionTag(session ?? '');
      await eventually(() => replica.events('close').some((line) => line.session === tag), `the replica to log the close of ${tag}`);
      assert.equal(await metric('wschat_connections_active'), 0, 'wschat_connections_active once the client closed');
      assert.equal(
        (await replica.metric('wschat_connections_closed_total', { transport, code: 'client' })) - closedBefore,
        1,
        'wschat_connections_closed_total{code="client"}',
      );
    });
  }
});
