/**
 * The replica's registry as /metrics shows it at start-up: every metric there, and
 * each labelled series already at zero (rate() and absent() work from the first
 * scrape); the per-message counts kept as plain numbers reach it at scrape time.
 */
import assert from 'node:assert/strict';
import { ERROR_KINDS, Metrics, TRANSPORTS } from '../../services/gateway/metrics.js';

const METRICS = [
  ['wschat_messages_total', 'counter'],
  ['wschat_connections_active', 'gauge'],
  ['wschat_messages_inflight', 'gauge'],
  ['wschat_connections_opened_total', 'counter'],
  ['wschat_connections_closed_total', 'counter'],
  ['wschat_errors_total', 'counter'],
  ['wschat_message_duration_seconds', 'histogram'],
  ['wschat_sessions_resumed_total', 'counter'],
  ['wschat_heartbeats_published_total', 'counter'],
  ['wschat_heartbeat_ticks_delivered_total', 'counter'],
  ['wschat_heartbeats_delivered_total', 'counter'],
  ['wschat_heartbeat_fanout_seconds', 'histogram'],
  ['wschat_ready', 'gauge'],
  ['wschat_redis_connected', 'gauge'],
  ['wschat_shutdown_duration_seconds', 'histogram'],
] as const;

describe('metrics', () => {
  it('shows every metric on /metrics with its type', async () => {
    const text = await new Metrics().registry.metrics();
    for (const [name, type] of METRICS) assert.match(text, new RegExp(`^# TYPE ${name} ${type}$`, 'm'), name);
    assert.match(text, /^process_cpu_seconds_total /m, "and Node's default metrics");
  });

  it('exports every labelled series at zero from the start', async () => {
    const text = await new Metrics().registry.metrics();
    const zero = (series: string): void => assert.ok(text.split('\n').includes(`${series} 0`), `${series} 0 is missing`);
    for (const transport of TRANSPORTS) {
      for (const name of ['messages_total', 'connections_active', 'connections_opened_total', 'sessions_resumed_total', 'heartbeats_delivered_total']) {
        zero(`wschat_${name}{transport="${transport}"}`);
      }
      zero(`wschat_message_duration_seconds_count{transport="${transport}"}`);
    }
    for (const kind of ERROR_KINDS) zero(`wschat_errors_total{kind="${kind}"}`);
    zero('wschat_ready');
    zero('wschat_redis_connected');
    zero('wschat_messages_inflight');
    assert.ok(!ERROR_KINDS.includes('shutdown' as never), 'a drain is no error kind');
  });

  it('adds the messages counted since the last scrape, per transport, and shows messages in flight', async () => {
    const metrics = new Metrics();
    const plain = metrics.forTransport('plain');
    assert.equal(metrics.forTransport('plain'), plain, 'bound once per transport');
    for (let i = 0; i < 3; i += 1) plain.messages.inc();
    metrics.forTransport('socketio').messages.inc();
    metrics.messagesInflight.inc();
    metrics.messagesInflight.inc();
    metrics.messagesInflight.dec();
    const lines = (await metrics.registry.metrics()).split('\n');
    assert.ok(lines.includes('wschat_messages_total{transport="plain"} 3'));
    assert.ok(lines.includes('wschat_messages_total{transport="socketio"} 1'));
    assert.ok(lines.includes('wschat_messages_inflight 1'));
    plain.messages.inc();
    assert.ok((await metrics.registry.metrics()).split('\n').includes('wschat_messages_total{transport="plain"} 4'), 'a scrape takes each count once');
  });
});
