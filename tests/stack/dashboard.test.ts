/**
 * Every panel of the Grafana dashboard, queried in the real Prometheus that
 * `make dev-up` starts, against a live stack with traffic and one release behind
 * it: each expression must parse and return data.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { type LoopClient, loopClientsOf } from '../support/loop-clients.js';
import { eventually, sleep } from '../../tools/harness/processes.js';
import { NativeStack } from '../support/stack.js';
import { repoRoot } from '../../tools/harness/repo-root.js';

interface Panel {
  title: string;
  targets: Array<{ expr: string }>;
}

const dashboard = JSON.parse(
  readFileSync(path.join(repoRoot, 'observability/grafana/dashboards/wschat.json'), 'utf8'),
) as { panels: Panel[] };

/** Throws naming Prometheus when it is not installed (make test-deps installs Debian's). */
function requirePrometheus(): void {
  try {
    execFileSync('prometheus', ['--version'], { stdio: 'ignore' });
  } catch (error) {
    throw new Error(`the dashboard test needs prometheus, which does not run (make test-deps installs it): ${(error as Error).message}`, { cause: error });
  }
}

async function query(prometheusUrl: string, expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  return (await response.json()) as { status: string; error?: string; data?: { result: unknown[] } };
}

describe('grafana dashboard', function () {
  this.timeout(120_000);
  let stack: NativeStack | undefined;
  let clients: LoopClient[] = [];

  before(async () => {
    requirePrometheus();
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 1000 });
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.stop(1000).catch(() => undefined)));
    await stack?.destroy();
  });

  it('has panels whose every query parses and returns data from a live stack', async () => {
    const live = stack!;
    clients = loopClientsOf(live, 10, 5, { thinkMs: 50 });
    for (const client of clients) client.start();
    // A release, so that drains have been reported and the shutdown panel has data.
    const promotion = await live.promote();
    assert.equal(promotion.code, 0, promotion.output);
    await eventually(
      async () => (await query(live.prometheusUrl, 'sum(up{job="wschat"})')).data?.result.length === 1,
      'Prometheus scraping the replicas',
      30_000,
      500,
    );
    // Enough scrapes (every 5 s) after the release for one-minute rates.
    await sleep(12_000);

    const empty: string[] = [];
    let queries = 0;
    for (const panel of dashboard.panels) {
      for (const { expr } of panel.targets) {
        queries += 1;
        const answer = await query(live.prometheusUrl, expr.replaceAll('$__rate_interval', '1m'));
        assert.equal(answer.status, 'success', `${panel.title}: ${expr}: ${answer.error}`);
        if ((answer.data?.result.length ?? 0) === 0) empty.push(`${panel.title}: ${expr}`);
      }
    }
    assert.deepEqual(empty, [], 'queries that returned nothing');
    assert.ok(queries >= 12, `${queries} queries`);

    // The drains of blue's two replicas, reported through Redis by green, reached Prometheus.
    const drains = await query(live.prometheusUrl, 'sum(wschat_shutdown_duration_seconds_count{job="wschat"})');
    const [sample] = (drains.data?.result ?? []) as Array<{ value: [number, string] }>;
    assert.equal(Number(sample?.value[1]), 2, JSON.stringify(drains));
  });
});
