/**
 * The tests' and tools' one reader of /metrics text (tools/harness/prometheus-text.ts):
 * the format's corners, and a whole exposition as the product's own registry writes it,
 * read back series by series.
 */
import assert from 'node:assert/strict';
import { METRIC_PREFIX, Metrics } from '../../services/gateway/metrics.js';
import { parseExposition, sumOf, valueOf } from '../../tools/harness/prometheus-text.js';

describe('Prometheus text format reader', () => {
  it('reads names, escaped labels, the special values and an optional timestamp', () => {
    const { samples, types } = parseExposition(
      [
        '# HELP a_total Something, counted.',
        '# TYPE a_total counter',
        'a_total{kind="x",path="C:\\\\dir \\"quoted\\"\\nnext"} 3',
        'a_total{kind="y",} 4 1700000000000',
        'job:rate:5m 1.5e-7',
        'g Nan',
        'h_bucket{le="+Inf"} +Inf',
        'l -Inf',
        '',
      ].join('\n'),
    );
    assert.equal(types.get('a_total'), 'counter');
    assert.deepEqual(samples.slice(0, 3), [
      { name: 'a_total', labels: { kind: 'x', path: 'C:\\dir "quoted"\nnext' }, value: 3 },
      { name: 'a_total', labels: { kind: 'y' }, value: 4 },
      { name: 'job:rate:5m', labels: {}, value: 1.5e-7 },
    ]);
    assert.ok(Number.isNaN(samples[3]!.value));
    assert.deepEqual(
      samples.slice(4).map((sample) => sample.value),
      [Infinity, -Infinity],
    );
  });

  it('refuses what is not a sample line rather than reading a wrong value', () => {
    for (const line of ['wschat_x', 'wschat_x{kind="a"}', 'wschat_x{kind=a} 1', 'wschat_x{kind="a} 1', 'wschat_x 1 2 3', 'wschat_x one', '{kind="a"} 1']) {
      assert.throws(() => parseExposition(line), /not a sample|malformed labels/, line);
    }
  });

  it('sums and looks up series by name and a subset of their labels', () => {
    const { samples } = parseExposition(
      ['e_total{kind="a",transport="plain"} 1', 'e_total{kind="a",transport="socketio"} 2', 'e_total{kind="b",transport="plain"} 4', 'e_total_other 8'].join('\n'),
    );
    assert.equal(sumOf(samples, 'e_total'), 7, 'every series of the name, no other name');
    assert.equal(sumOf(samples, 'e_total', { kind: 'a' }), 3);
    assert.equal(sumOf(samples, 'e_total', { kind: 'c' }), 0);
    assert.equal(valueOf(samples, 'e_total', { transport: 'plain' }), 1, 'the first that carries the labels');
    assert.equal(valueOf(samples, 'e_total', { kind: 'b', transport: 'plain' }), 4);
    assert.equal(valueOf(samples, 'e_total', { kind: 'b', transport: 'socketio' }), undefined);
    assert.equal(valueOf(samples, 'missing'), undefined);
  });

  it("reads back every series of the product's registry, histograms whole", async () => {
    const metrics = new Metrics();
    // Observations in two series of a labelled histogram: its buckets, _sum and _count by label.
    metrics.messageDuration.observe({ transport: 'plain' }, 0.002);
    metrics.messageDuration.observe({ transport: 'socketio' }, 0.2);
    metrics.messages.inc({ transport: 'plain' }, 3);
    const text = await metrics.registry.metrics();
    const { samples, types } = parseExposition(text);
    assert.equal(sumOf(samples, 'wschat_message_duration_seconds_count'), 2);
    assert.equal(valueOf(samples, 'wschat_message_duration_seconds_sum', { transport: 'socketio' }), 0.2);
    assert.equal(valueOf(samples, 'wschat_messages_total', { transport: 'plain' }), 3);
    const written = text.split('\n').filter((line) => line !== '' && !line.startsWith('#'));
    assert.equal(samples.length, written.length, 'one sample a sample line');
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      assert.equal(types.get(metric.name), metric.type, metric.name);
      // The process and runtime metrics are collected anew at each read: only the product's own stand still.
      if (!metric.name.startsWith(METRIC_PREFIX)) continue;
      for (const value of metric.values) {
        const name = 'metricName' in value && typeof value.metricName === 'string' ? value.metricName : metric.name;
        const labels = Object.fromEntries(Object.entries(value.labels).map(([key, label]) => [key, String(label)]));
        assert.equal(valueOf(samples, name, labels), value.value, `${name} ${JSON.stringify(labels)}`);
      }
    }
  });
});
