/**
 * The hot path's histogram, read back as the registry reads it: each observation in
 * the first bucket whose bound is at or above it, buckets exported cumulative up to
 * +Inf, then _sum and _count, per label value.
 */
import assert from 'node:assert/strict';
import client from 'prom-client';
import { TallyHistogram } from '../../services/gateway/tally-histogram.js';

function histogram(): TallyHistogram<'transport'> {
  return new TallyHistogram({
    name: 'unit_seconds',
    help: 'unit',
    labelName: 'transport',
    labelValues: ['plain', 'socketio'],
    buckets: [0.1, 1],
    registry: new client.Registry(),
  });
}

/** `le=value` for each bucket of one label value, then sum and count. */
async function read(target: TallyHistogram<'transport'>, transport: string): Promise<string[]> {
  const { values } = await target.get();
  return values
    .filter((value) => value.labels.transport === transport)
    .map((value) => (value.labels.le === undefined ? `${value.metricName}=${value.value}` : `le ${value.labels.le}=${value.value}`));
}

describe('tally histogram', () => {
  it('puts a value in the first bucket at or above it, counts cumulatively up to +Inf, and keeps sum and count', async () => {
    const target = histogram();
    const plain = target.labels('plain');
    for (const value of [0.05, 0.1, 0.5, 1, 3]) plain.observe(value);
    assert.deepEqual(await read(target, 'plain'), ['le 0.1=2', 'le 1=4', 'le +Inf=5', 'unit_seconds_sum=4.65', 'unit_seconds_count=5']);
  });

  it('exports every label value from the start at zero, and keeps the series apart', async () => {
    const target = histogram();
    target.observe({ transport: 'socketio' }, 2);
    assert.deepEqual(await read(target, 'plain'), ['le 0.1=0', 'le 1=0', 'le +Inf=0', 'unit_seconds_sum=0', 'unit_seconds_count=0']);
    assert.deepEqual(await read(target, 'socketio'), ['le 0.1=0', 'le 1=0', 'le +Inf=1', 'unit_seconds_sum=2', 'unit_seconds_count=1']);
  });

  it('reads as prom-client histogram text, and resets to zero', async () => {
    const registry = new client.Registry();
    const target = new TallyHistogram({ name: 'unit_seconds', help: 'unit help', labelName: 'transport', labelValues: ['plain'], buckets: [1], registry });
    target.labels('plain').observe(0.5);
    const text = await registry.metrics();
    assert.match(text, /^# HELP unit_seconds unit help$/m);
    assert.match(text, /^# TYPE unit_seconds histogram$/m);
    assert.match(text, /^unit_seconds_bucket\{le="1",transport="plain"\} 1$/m);
    assert.match(text, /^unit_seconds_bucket\{le="\+Inf",transport="plain"\} 1$/m);
    target.reset();
    assert.match(await registry.metrics(), /^unit_seconds_count\{transport="plain"\} 0$/m);
  });

  it('refuses a label value it was not given', () => {
    assert.throws(() => histogram().labels('other'), /unit_seconds: no series transport="other"/);
  });
});
