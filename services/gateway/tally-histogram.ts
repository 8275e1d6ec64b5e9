/**
 * A labelled Prometheus histogram for the per-message path: an observation is a few
 * plain array writes on a series bound once, where prom-client's Histogram builds a
 * label object, validates it and hashes it into a string on every observe. The
 * registry reads it at scrape time in prom-client's own shape (buckets cumulative,
 * then +Inf, _sum and _count per series), so /metrics cannot tell the two apart.
 */
import type client from 'prom-client';

/** One label set's counts: `buckets[i]` counts the observations in (bounds[i-1], bounds[i]]; the last one above every bound. */
export class TallySeries {
  readonly buckets: Float64Array;
  sum = 0;
  count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const { bounds } = this;
    let index = 0;
    while (index < bounds.length && value > (bounds[index] as number)) index += 1;
    this.buckets[index] = (this.buckets[index] ?? 0) + 1;
    this.sum += value;
    this.count += 1;
  }
}

export interface TallyHistogramOptions<Label extends string> {
  name: string;
  help: string;
  labelName: Label;
  /** Every value of the one label, each series exported from the start (at zero). */
  labelValues: readonly string[];
  buckets: readonly number[];
  registry: client.Registry;
}

type Sample = { labels: Record<string, string | number>; value: number; metricName: string };

export class TallyHistogram<Label extends string> {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, TallySeries>();

  constructor(private readonly options: TallyHistogramOptions<Label>) {
    this.name = options.name;
    this.help = options.help;
    for (const value of options.labelValues) this.series.set(value, new TallySeries(options.buckets));
    // The registry only calls get() and reset() (and reads name, help, type, aggregator):
    // it holds any object of that shape, which its typings do not say.
    options.registry.registerMetric(this as unknown as client.Metric);
  }

  /** The series of one label value, to observe on without a lookup. */
  labels(value: string): TallySeries {
    const series = this.series.get(value);
    if (series === undefined) throw new Error(`${this.name}: no series ${this.options.labelName}="${value}"`);
    return series;
  }

  /** prom-client's call shape, for code off the hot path. */
  observe(labels: Record<Label, string>, value: number): void {
    this.labels(labels[this.options.labelName]).observe(value);
  }

  reset(): void {
    for (const value of this.series.keys()) this.series.set(value, new TallySeries(this.options.buckets));
  }

  get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Sample[] }> {
    const { labelName, buckets: bounds } = this.options;
    const values: Sample[] = [];
    for (const [labelValue, series] of this.series) {
      let cumulative = 0;
      for (let index = 0; index <= bounds.length; index += 1) {
        cumulative += series.buckets[index] ?? 0;
        const le = index < bounds.length ? (bounds[index] as number) : '+Inf';
        values.push({ labels: { le, [labelName]: labelValue }, value: cumulative, metricName: `${this.name}_bucket` });
      }
      values.push({ labels: { [labelName]: labelValue }, value: series.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { [labelName]: labelValue }, value: series.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }
}
