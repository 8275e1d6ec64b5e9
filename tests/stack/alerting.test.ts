/**
 * An alert reaches someone: the native stack's Prometheus evaluates the shipped rules
 * and sends to the stack's Alertmanager, which posts to ALERT_WEBHOOK_URL, here a
 * receiver of the test's own. With no socket open, WschatNoActiveConnections fires
 * after its 60 s; one client connecting resolves it. Both notifications must arrive.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { PlainClient } from '../../tools/harness/clients.js';
import { eventually } from '../../tools/harness/processes.js';
import { NativeStack } from '../support/stack.js';

/** Alertmanager's webhook body, the fields the test reads. */
interface Notification {
  status: 'firing' | 'resolved';
  alerts: Array<{ status: 'firing' | 'resolved'; labels: Record<string, string> }>;
}

/** Throws naming the package when Alertmanager is not installed (make test-deps installs it). */
function requireAlertmanager(): void {
  try {
    execFileSync('prometheus-alertmanager', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    throw new Error(`the alerting test needs prometheus-alertmanager, which does not run (make test-deps installs it): ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/** An HTTP server on a free loopback port that keeps every JSON body posted to it. */
async function webhookReceiver(): Promise<{ url: string; received: Notification[]; close: () => Promise<void> }> {
  const received: Notification[] = [];
  const server = http.createServer((request, response) => {
    let body = '';
    request.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
    request.on('end', () => {
      received.push(JSON.parse(body) as Notification);
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    received,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const ALERT = 'WschatNoActiveConnections';

function notified(received: Notification[], status: Notification['status']): boolean {
  return received.some((notification) => notification.alerts.some((alert) => alert.labels.alertname === ALERT && alert.status === status));
}

describe('alerting (Prometheus -> Alertmanager -> webhook)', function () {
  this.timeout(180_000);
  let stack: NativeStack | undefined;
  let receiver: Awaited<ReturnType<typeof webhookReceiver>> | undefined;

  before(async () => {
    requireAlertmanager();
    receiver = await webhookReceiver();
    stack = await NativeStack.started({
      replicas: 1,
      heartbeatIntervalMs: 30_000,
      env: { ALERT_WEBHOOK_URL: receiver.url, ALERT_GROUP_WAIT: '1s', ALERT_GROUP_INTERVAL: '2s' },
    });
  });

  after(async () => {
    await stack?.destroy();
    await receiver?.close();
  });

  it(`posts ${ALERT} when no socket is open for 60 s, and its resolution once one is`, async () => {
    const { received } = receiver!;
    // 60 s of the rule's `for`, one evaluation and scrape interval each (5 s), group_wait.
    await eventually(() => notified(received, 'firing'), `${ALERT} firing at the webhook`, 100_000);
    assert.ok(!notified(received, 'resolved'), 'not resolved while no socket is open');
    const client = await PlainClient.connect(`${stack!.httpUrl.replace(/^http/, 'ws')}/ws/chat/`);
    try {
      client.send('here');
      assert.deepEqual(await client.waitForCounts(1), [1]);
      await eventually(() => notified(received, 'resolved'), `${ALERT} resolved at the webhook`, 40_000);
    } finally {
      client.close();
    }
  });
});
