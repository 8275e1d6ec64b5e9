/**
 * `--reference`'s report: product and ceiling runs of one scenario, alternated, and
 * the product/ceiling ratios of each pair with their spread over the pairs. A ratio
 * is null where either run lacks the figure (no heartbeat tick in the window, no
 * server metrics).
 */
import { runMarkdown, type LoadTestOptions, type Report } from './report.js';

export const RATIOS = {
  round_trips_per_second: 'round trips/s (higher is better)',
  round_trip_p99: 'round-trip p99',
  fan_out_p50: 'heartbeat fan-out p50, tick to the socket (client-seen)',
  fan_out_p95: 'heartbeat fan-out p95 (client-seen)',
  fan_out_p99: 'heartbeat fan-out p99 (client-seen)',
  fan_out_max: 'heartbeat fan-out max (client-seen)',
  connect_seconds: 'time to connect every socket',
  own_fan_out_mean: "server's own fan-out, tick to its last write (mean)",
  rss_per_connection: 'memory per socket (RSS growth, no forced GC)',
  server_cpu_per_message: "server processes' CPU per message",
  server_cpu_per_frame: "server processes' CPU per frame sent (heartbeats and pings too)",
  nginx_cpu_per_frame: "Nginx workers' CPU per frame the generator read (--behind-nginx)",
} as const;

export type RatioName = keyof typeof RATIOS;
export type Ratios = Record<RatioName, number | null>;

export interface Spread {
  min: number;
  median: number;
  max: number;
  values: number[];
}

export interface Pair {
  product: Report;
  ceiling: Report;
  ratios: Ratios;
}

export interface ComparisonReport {
  date: string;
  ok: boolean;
  options: LoadTestOptions;
  /** How the ceiling was started (tools/loadtest/reference-server.ts's arguments; a fleet behind the stack's Nginx with --behind-nginx). */
  ceiling: { mode: 'fair' | 'bare'; args: string[]; fleet?: CeilingFleetInfo };
  pairs: Pair[];
  ratios: Record<RatioName, Spread | null>;
  /** Teardown steps that failed (--behind-nginx: the colour flipped back, the fleet stopped, the lock released); the run is not ok then. */
  cleanup_failures?: string[];
}

/** --behind-nginx's fleet: one ceiling per replica port of the idle colour, behind the same Nginx. */
export interface CeilingFleetInfo {
  behind: 'nginx';
  colour: 'blue' | 'green';
  product_colour: 'blue' | 'green';
  ports: number[];
  pids: number[];
}

const round2 = (value: number): number => Math.round(value * 100) / 100;

function ratio(product: number | null | undefined, ceiling: number | null | undefined): number | null {
  // A figure of 0 or below (RSS that shrank under a GC during a small run) makes no ratio.
  if (product === null || product === undefined || ceiling === null || ceiling === undefined || product <= 0 || ceiling <= 0) return null;
  return round2(product / ceiling);
}

const server = (report: Report) => (typeof report.server === 'string' ? undefined : report.server);
/** A client-seen latency, or undefined when nothing was recorded. */
const seen = (count: number, value: number): number | undefined => (count > 0 ? value : undefined);

export function pairRatios(product: Report, ceiling: Report): Ratios {
  const [p, c] = [server(product), server(ceiling)];
  const [pf, cf] = [product.heartbeat.fan_out, ceiling.heartbeat.fan_out];
  const [pr, cr] = [product.messages.round_trip, ceiling.messages.round_trip];
  return {
    round_trips_per_second: ratio(product.messages.round_trips_per_second, ceiling.messages.round_trips_per_second),
    round_trip_p99: ratio(seen(pr.count, pr.p99_ms), seen(cr.count, cr.p99_ms)),
    fan_out_p50: ratio(seen(pf.count, pf.p50_ms), seen(cf.count, cf.p50_ms)),
    fan_out_p95: ratio(seen(pf.count, pf.p95_ms), seen(cf.count, cf.p95_ms)),
    fan_out_p99: ratio(seen(pf.count, pf.p99_ms), seen(cf.count, cf.p99_ms)),
    fan_out_max: ratio(seen(pf.count, pf.max_ms), seen(cf.count, cf.max_ms)),
    connect_seconds: ratio(product.connect.seconds, ceiling.connect.seconds),
    own_fan_out_mean: ratio(p?.own_fan_out?.mean_ms, c?.own_fan_out?.mean_ms),
    rss_per_connection: ratio(p?.rss_per_connection_kib, c?.rss_per_connection_kib),
    server_cpu_per_message: ratio(p?.cpu_us_per_message, c?.cpu_us_per_message),
    server_cpu_per_frame: ratio(p?.cpu_us_per_frame, c?.cpu_us_per_frame),
    nginx_cpu_per_frame: ratio(product.nginx?.cpu_us_per_frame, ceiling.nginx?.cpu_us_per_frame),
  };
}

function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return { min: sorted[0]!, median: round2(median), max: sorted[sorted.length - 1]!, values };
}

export function compare(options: LoadTestOptions, ceiling: ComparisonReport['ceiling'], runs: Array<{ product: Report; ceiling: Report }>): ComparisonReport {
  const pairs = runs.map((run) => ({ ...run, ratios: pairRatios(run.product, run.ceiling) }));
  const ratios = Object.fromEntries(
    (Object.keys(RATIOS) as RatioName[]).map((name) => [name, spread(pairs.map((pair) => pair.ratios[name]).filter((v): v is number => v !== null))]),
  ) as Record<RatioName, Spread | null>;
  return {
    date: runs[0]?.product.date ?? new Date().toISOString(),
    ok: runs.length > 0 && runs.every((run) => run.product.ok && run.ceiling.ok),
    options,
    ceiling,
    pairs,
    ratios,
  };
}

/** One row per figure, one column per run, in the order they ran. */
function runsTable(pairs: Pair[]): string[] {
  const runs = pairs.flatMap((pair, index) => [
    { name: `product ${index + 1}`, report: pair.product },
    { name: `ceiling ${index + 1}`, report: pair.ceiling },
  ]);
  const row = (label: string, value: (report: Report) => string | number | null | undefined): string =>
    `| ${label} | ${runs.map(({ report }) => value(report) ?? 'n/a').join(' | ')} |`;
  return [
    `| figure | ${runs.map((run) => run.name).join(' | ')} |`,
    `|---|${runs.map(() => '---').join('|')}|`,
    row('checks', (r) => (r.ok ? 'PASS' : `FAIL ${JSON.stringify(r.errors)}`)),
    row('sockets held / requested', (r) => `${r.sockets.held} / ${r.sockets.requested}`),
    row('connect s (handshake p99 ms)', (r) => `${r.connect.seconds} (${r.connect.handshake.p99_ms})`),
    row('errors', (r) => JSON.stringify(r.errors)),
    row('heartbeat ticks checked, missed, duplicated', (r) => `${r.heartbeat.ticks_checked}, ${r.heartbeat.missed}, ${r.heartbeat.duplicated}`),
    row('messages answered (every count checked)', (r) => r.messages.total),
    row('round trips/s', (r) => r.messages.round_trips_per_second),
    row('round trip p50 / p99 ms', (r) => `${r.messages.round_trip.p50_ms} / ${r.messages.round_trip.p99_ms}`),
    row('fan-out p50 / p95 / p99 / max ms (client)', (r) => {
      const f = r.heartbeat.fan_out;
      return f.count > 0 ? `${f.p50_ms} / ${f.p95_ms} / ${f.p99_ms} / ${f.max_ms}` : 'n/a';
    }),
    row('tick to last socket ms, per tick', (r) => r.heartbeat.tick_to_last_socket_ms.join(', ') || undefined),
    row("server's own fan-out mean ms", (r) => server(r)?.own_fan_out?.mean_ms),
    row("server's own fan-out p50 / p99 at or under (bucket) ms", (r) => {
      const own = server(r)?.own_fan_out;
      return own === null || own === undefined ? undefined : `${own.p50_le_ms ?? '>10000'} / ${own.p99_le_ms ?? '>10000'}`;
    }),
    row('server processes', (r) => server(r)?.replicas),
    row('server CPU s while held', (r) => server(r)?.cpu_seconds),
    row('server CPU µs / message', (r) => server(r)?.cpu_us_per_message),
    row('server CPU µs / frame sent', (r) => server(r)?.cpu_us_per_frame),
    row('Redis CPU µs / message', (r) => r.redis?.cpu_us_per_message),
    row('Nginx workers, CPU s while held', (r) => (r.nginx === null ? undefined : `${r.nginx.workers}, ${r.nginx.cpu_seconds}`)),
    row('Nginx CPU µs / frame read', (r) => r.nginx?.cpu_us_per_frame),
    row('load generator CPU s while held', (r) => r.load_generator.cpu_seconds),
    row('frames read while held (heartbeats, pings)', (r) => `${r.load_generator.frames} (${r.load_generator.heartbeat_frames}, ${r.load_generator.pings})`),
    row('load generator CPU µs / frame', (r) => r.load_generator.cpu_us_per_frame),
    row('load generator CPU µs / round trip', (r) => r.load_generator.cpu_us_per_round_trip),
    row('RSS KiB / socket', (r) => server(r)?.rss_per_connection_kib),
  ];
}

function ceilingText(ceiling: ComparisonReport['ceiling']): string {
  const command = `\`reference-server.js ${ceiling.args.join(' ')}\``;
  const { fleet } = ceiling;
  if (fleet === undefined) return command;
  return (
    `${fleet.ports.length} x ${command} on the ${fleet.colour} colour's ports (${fleet.ports.join(', ')}) behind the stack's own Nginx, ` +
    `the live colour flipped between runs (product: ${fleet.product_colour})`
  );
}

export function comparisonMarkdown(report: ComparisonReport): string {
  const { options } = report;
  const lines = [
    `# Load test ${report.date}: product against the ${report.ceiling.mode} ceiling, ${report.pairs.length} pair(s): ${report.ok ? 'PASS' : 'FAIL'}`,
    '',
    `Scenario: ${options.sockets} sockets (${Math.round(options.socketIoShare * 100)}% socket.io on the product; the ceiling is plain only), ` +
      `rate ${options.rate === 0 ? 'closed loop' : `${options.rate}/s per socket`}, held ${options.durationS} s, heartbeat ${options.heartbeatMs || 'none'} ms, ` +
      `${options.resume ? 'sessions resumed with last (the leased, exactly-once path)' : 'no session named (the unleased path)'}. ` +
      `Ceiling: ${ceilingText(report.ceiling)}.`,
    ...(report.cleanup_failures === undefined ? [] : ['', `**Teardown failed**: ${report.cleanup_failures.join('; ')}`]),
    '',
    '| product / ceiling | min | median | max |',
    '|---|---|---|---|',
    ...(Object.keys(RATIOS) as RatioName[]).map((name) => {
      const s = report.ratios[name];
      return `| ${RATIOS[name]} | ${s?.min ?? 'n/a'} | ${s?.median ?? 'n/a'} | ${s?.max ?? 'n/a'} |`;
    }),
    '',
    ...runsTable(report.pairs),
    '',
  ];
  const failed = report.pairs.flatMap((pair) => [pair.product, pair.ceiling]).filter((r) => !r.ok);
  for (const run of failed) lines.push(runMarkdown(run, `Failed run: ${run.target} ${run.date}`));
  return lines.join('\n');
}
