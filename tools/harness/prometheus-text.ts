/**
 * The one reader of the Prometheus text exposition format (what a replica's /metrics
 * serves) for the tests and tools: parsed into samples, then summed or looked up by
 * name and labels. Every TypeScript caller that reads /metrics text goes through here.
 *
 * Our own, and small, because no npm parser fits: parse-prometheus-text-format (the
 * most used) drops the _sum, _count and labels of a labelled histogram and every
 * sample without a # TYPE line; prom2javascript (one release) refuses NaN and -Inf
 * values and names with a colon, all valid in the format, so it throws on a replica's
 * /metrics right after start (prom-client's "Nan"); exposition folds the white space
 * inside label values. prom-client writes the format; it does not read it.
 *
 * The shell scripts (tools/stack/lib.sh metric_sum, tools/monitor.sh) keep a few lines of
 * node -e of their own: they run where dist/ need not be built (a stack that
 * tools/dev-up.sh compiled into its run folder, or the Compose stack).
 */

/** One sample line: `name{labels} value [timestamp]`. Histograms and summaries are their _bucket, _sum, _count (and quantile) lines. */
export interface Sample {
  name: string;
  labels: Readonly<Record<string, string>>;
  value: number;
}

/** A parsed exposition: its samples in order, and the type each `# TYPE` line declared. */
export interface Exposition {
  samples: Sample[];
  /** Metric family name to its declared type (counter, gauge, histogram, summary, untyped). */
  types: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/;

/**
 * The format's float, as Go's ParseFloat reads it: decimal numbers, and NaN and
 * [+-]Inf in any case (prom-client writes "Nan" for a gauge with no value yet).
 */
function parseValue(text: string, line: string): number {
  if (/^[+-]?inf(inity)?$/i.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (/^nan$/i.test(text)) return Number.NaN;
  const value = Number(text);
  // Number('') is 0 and Number('0x1') is 1: neither is a value of the format.
  if (text === '' || Number.isNaN(value) || /^0x/i.test(text)) throw new Error(`not a sample value in ${JSON.stringify(line)}`);
  return value;
}

/** `{a="x",b="y\"z"}` at the start of `rest`: the labels and what follows the closing brace. */
function parseLabels(rest: string, line: string): { labels: Record<string, string>; after: string } {
  const labels: Record<string, string> = {};
  let at = 1;
  const fail = (): never => {
    throw new Error(`malformed labels in ${JSON.stringify(line)}`);
  };
  for (;;) {
    while (rest[at] === ' ') at += 1;
    if (rest[at] === '}') return { labels, after: rest.slice(at + 1) };
    const name = LABEL_NAME.exec(rest.slice(at))?.[0] ?? fail();
    at += name.length;
    if (rest.slice(at, at + 2) !== '="') fail();
    at += 2;
    let value = '';
    for (; at < rest.length && rest[at] !== '"'; at += 1) {
      if (rest[at] !== '\\') {
        value += rest[at];
        continue;
      }
      at += 1;
      const escaped = rest[at];
      if (escaped === 'n') value += '\n';
      else if (escaped === '\\' || escaped === '"') value += escaped;
      else fail();
    }
    if (at >= rest.length) fail();
    labels[name] = value;
    at += 1;
    while (rest[at] === ' ') at += 1;
    if (rest[at] === ',') at += 1;
    else if (rest[at] !== '}') fail();
  }
}

/** Parses exposition text; throws on a line that is neither a comment, blank, nor a sample. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const type = /^#\s+TYPE\s+(\S+)\s+(\S+)\s*$/.exec(line);
      if (type !== null) types.set(type[1]!, type[2]!);
      continue;
    }
    const name = NAME.exec(line)?.[0];
    if (name === undefined) throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    let rest = line.slice(name.length);
    let labels: Record<string, string> = {};
    if (rest.startsWith('{')) ({ labels, after: rest } = parseLabels(rest, line));
    // The value, then an optional timestamp (ignored: replicas write none).
    const [value, timestamp, ...extra] = rest.trim().split(/\s+/);
    if (!/^\s/.test(rest) || value === undefined || extra.length > 0 || (timestamp !== undefined && !/^-?\d+$/.test(timestamp))) {
      throw new Error(`not a sample line: ${JSON.stringify(line)}`);
    }
    samples.push({ name, labels, value: parseValue(value, line) });
  }
  return { samples, types };
}

/** Whether `sample` is of metric `name` and carries every one of `labels` (others may be there too). */
function matches(sample: Sample, name: string, labels: Readonly<Record<string, string>>): boolean {
  return sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value);
}

/** The sum of every series of `name` that carries `labels` (0 when there is none). */
export function sumOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  return samples.filter((sample) => matches(sample, name, labels)).reduce((total, sample) => total + sample.value, 0);
}

/** The value of the first series of `name` that carries `labels`, or undefined when there is none. */
export function valueOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  return samples.find((sample) => matches(sample, name, labels))?.value;
}

/** One scrape of `url` (a /metrics endpoint), parsed: every value read from the same instant. */
export async function scrape(url: string): Promise<Exposition> {
  const response = await fetch(url);
  const text = await response.text();
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}: ${text.slice(0, 200)}`);
  return parseExposition(text);
}

/** The sum of every series of `name` carrying `labels` in one scrape of `url` (a /metrics endpoint). */
export async function metricSum(url: string, name: string, labels: Readonly<Record<string, string>> = {}): Promise<number> {
  return sumOf((await scrape(url)).samples, name, labels);
}
