/**
 * Smoke tests of a colour about to go live, run by tools/promote.sh against its
 * replicas directly (not through Nginx), the page included:
 *
 *   SMOKE_VERSION               the colour under test
 *   SMOKE_REPLICAS              its replicas' base URLs, space-separated
 *   SMOKE_LIVE_URL              the stack's public URL (the live colour, through Nginx)
 *   SMOKE_HEARTBEAT_TIMEOUT_MS  how long to wait for a heartbeat
 */
import assert from 'node:assert/strict';
import { PlainClient, SocketIoClient } from '../support/clients.js';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set`);
  return value;
}

const version = setting('SMOKE_VERSION');
const replicas = setting('SMOKE_REPLICAS').split(' ');
const liveUrl = setting('SMOKE_LIVE_URL');
const heartbeatTimeoutMs = Number(setting('SMOKE_HEARTBEAT_TIMEOUT_MS'));
const wsUrl = (httpUrl: string): string => `${httpUrl.replace(/^http/, 'ws')}/ws/chat/`;

describe(`release smoke: ${version}`, () => {
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
        const client = await PlainClient.connect(wsUrl(replica));
        try {
          const deadline = Date.now() + heartbeatTimeoutMs;
          while (client.heartbeats().length === 0 && Date.now() < deadline) {
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
          assert.ok(client.heartbeats().length > 0, `no heartbeat within ${heartbeatTimeoutMs} ms`);
        } finally {
          client.close();
        }
      }).timeout(heartbeatTimeoutMs + 2000);
    });
  }
});
