/**
 * Smoke tests of a colour about to go live, run by tools/promote.sh against its
 * replicas directly (not through Nginx), the page included:
 *
 *   SMOKE_VERSION                the colour under test
 *   SMOKE_REPLICAS               its replicas' base URLs, space-separated
 *   SMOKE_LIVE_URL               the stack's public URL (the live colour, through Nginx)
 *   SMOKE_REDIS_URL              the stack's Redis, which carries the fleet channel
 *   SMOKE_HEARTBEAT_INTERVAL_MS  the fleet's heartbeat interval
 *   SMOKE_PROBE_TIMEOUT_MS       how long a heartbeat probe may take to arrive (default 5000)
 *
 * The heartbeat check does not wait for the next tick (up to a whole interval, 30 s by
 * default, per replica): it publishes a probe through the fleet channel, as a replica
 * that won a tick publishes the tick (tests/smoke/fleet-probe.ts), addressed to its
 * own sockets on the replica, and waits for it on both transports.
 */
import assert from 'node:assert/strict';
import { sleep } from '../../tools/harness/processes.js';
import { PlainClient, SocketIoClient } from '../../tools/harness/clients.js';
import { FleetProbe } from './fleet-probe.js';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const version = setting('SMOKE_VERSION');
const replicas = setting('SMOKE_REPLICAS').split(' ');
const liveUrl = setting('SMOKE_LIVE_URL');
const redisUrl = setting('SMOKE_REDIS_URL');
const heartbeatIntervalMs = Number(setting('SMOKE_HEARTBEAT_INTERVAL_MS'));
const probeTimeoutMs = Number(process.env.SMOKE_PROBE_TIMEOUT_MS ?? 5000);
const wsUrl = (httpUrl: string): string => `${httpUrl.replace(/^http/, 'ws')}/ws/chat/`;

describe(`release smoke: ${version}`, () => {
  let probe: FleetProbe;

  before(async () => {
    probe = await FleetProbe.open(redisUrl, heartbeatIntervalMs);
  });

  after(async () => {
    await probe?.close();
  });

  for (const replica of replicas) {
    describe(replica, () => {
      it('is ready and answers its colour at /version', async () => {
        assert.equal((await fetch(`${replica}/readyz`)).status, 200);
        assert.deepEqual(await (await fetch(`${replica}/version`)).json(), { version });
      });

      it('serves the page and its client library', async () => {
        const page = await fetch(`${replica}/`);
        assert.equal(page.status, 200);
        assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
        assert.match(await page.text(), /<script type="module" src="\/static\/services\/gateway\/public\/app\.js">/);
        for (const asset of ['services/gateway/public/app.js', 'shared/client/chat-client.js']) {
          const response = await fetch(`${replica}/static/${asset}`);
          await response.arrayBuffer();
          assert.equal(response.status, 200, asset);
        }
      });

      it('counts messages in order', async () => {
        const client = await PlainClient.connect(wsUrl(replica));
        try {
          client.sendMany(3);
          assert.deepEqual(await client.waitForCounts(3), [1, 2, 3]);
        } finally {
          client.close();
        }
      });

      it('resumes a session created on the live colour, on both endpoints', async () => {
        const live = await PlainClient.connect(wsUrl(liveUrl));
        live.sendMany(2);
        await live.waitForCounts(2);
        live.close();
        await live.waitClosed();

        // Closed whatever the outcome: a client left open keeps this run (and so promote.sh) from ending.
        const plain = await PlainClient.connect(wsUrl(replica), live.sessionId);
        try {
          plain.send('resumed');
          assert.deepEqual(await plain.waitForCounts(1), [3]);
        } finally {
          plain.close();
        }
        const socketIo = await SocketIoClient.connect(replica, live.sessionId);
        try {
          socketIo.send('resumed again');
          assert.deepEqual(await socketIo.waitForCounts(1), [4]);
        } finally {
          socketIo.close();
        }
      });

      it('delivers the fleet heartbeat', async () => {
        const plain = await PlainClient.connect(wsUrl(replica));
        const socketIo = await SocketIoClient.connect(replica).catch((error: unknown) => {
          plain.close();
          throw error;
        });
        try {
          const sent = [
            { client: plain, transport: 'plain', ts: probe.send(plain.sessionId!) },
            { client: socketIo, transport: 'socket.io', ts: probe.send(socketIo.session!) },
          ];
          const missing = (): string[] => sent.filter(({ client, ts }) => !client.heartbeats().includes(ts)).map(({ transport }) => transport);
          const deadline = Date.now() + probeTimeoutMs;
          while (missing().length > 0 && Date.now() < deadline) await sleep(10);
          assert.deepEqual(missing(), [], `no heartbeat probe from the fleet channel within ${probeTimeoutMs} ms, on these transports`);
        } finally {
          plain.close();
          socketIo.close();
        }
      }).timeout(probeTimeoutMs + 5000);
    });
  }
});
