/**
 * `--reference --behind-nginx`: the product and the fair ceiling through the very same
 * Nginx, alternately, in one command.
 *
 * Why this design. The figure to compare at 100,000 sockets is the fan-out through
 * Nginx, and Nginx's share of it is large (a tick is two socket operations per socket in
 * Nginx for one in the server). A ceiling reached directly, or behind a second Nginx,
 * would differ in exactly that share: another process, another config, other workers
 * competing for the same 2 cores. So the ceiling fleet (one fair reference-server per
 * replica, tools/loadtest/ceiling-fleet.ts) listens on the idle colour's replica ports, which
 * the stack's Nginx already has as an upstream, and the comparison flips the live colour
 * with the stack's own set_live_colour between runs: product colour, ceiling colour,
 * product colour... Same Nginx process, same rendered config (worker count,
 * worker_connections, reuseport, timeouts), same upstream shape (REPLICAS servers), same
 * public URL; only what listens behind the upstream changes. The ceiling has the
 * product's Redis and its HEARTBEAT_INTERVAL_MS, read from the stack's saved settings,
 * and ticks on the same wall-clock multiples.
 *
 * The price: for the ceiling runs the stack's public side is the ceiling, so this is a
 * benchmark of a stack of its own, never of one serving users. It holds the stack's lock
 * (no promote, dev-up or dev-down meanwhile), refuses to start when the idle colour
 * runs, and always leaves the product colour live, the fleet stopped and the lock
 * released: after the last run, on a failure, and on SIGINT/SIGTERM (teardown.ts).
 */
import { portAnswers } from '../harness/processes.js';
import { CeilingFleet } from './ceiling-fleet.js';
import { ceilingAnswer, flipLiveColour, replicaAnswer } from './colour-flip.js';
import { compare, type ComparisonReport } from './compare.js';
import type { ServerSample } from './protocol.js';
import type { LoadTestOptions, Report } from './report.js';
import { takeStackLock } from './stack-lock.js';
import { otherColour, readStack, type Colour, type StackView } from './stack-view.js';
import type { Teardown } from './teardown.js';

/** One run of the scenario against one target (tools/loadtest.ts's Coordinator). */
export interface RunTarget {
  target: 'product' | 'ceiling';
  /** The servers' figures; undefined: the replicas' /metrics at options.metricsUrls. */
  sample?: () => Promise<ServerSample | undefined>;
  /** Nginx's master, whose workers' CPU the run reports. */
  nginxPid: number | undefined;
}
export type RunOne = (options: LoadTestOptions, target: RunTarget) => Promise<Report>;

/** How long the servers get to close the last run's sockets before the next run starts. */
const SETTLE_TIMEOUT_MS = 120_000;

/** The options this mode can honour: the stack's URL, Redis and heartbeat, plain sockets, the fair ceiling. */
function checkScenario(options: LoadTestOptions, stack: StackView): void {
  const problems = [
    options.url !== stack.url && `--url ${options.url} is not the stack's Nginx (${stack.url}, from ${stack.runDir})`,
    options.heartbeatMs !== stack.heartbeatMs && `--heartbeat-ms ${options.heartbeatMs} is not the stack's HEARTBEAT_INTERVAL_MS (${stack.heartbeatMs})`,
    options.redisUrl !== stack.redisUrl && `--redis ${options.redisUrl} is not the stack's Redis (${stack.redisUrl})`,
    options.socketIoShare !== 0 && '--socketio must be 0: the ceiling is plain WebSocket only',
    options.ceiling !== 'fair' && '--ceiling must be fair: the fleet pays the product\'s Redis round trip and heartbeat',
    stack.nginxPid === undefined && `Nginx of the stack in ${stack.runDir} is not running`,
  ].filter((problem): problem is string => typeof problem === 'string');
  if (problems.length > 0) throw new Error(`--behind-nginx: ${problems.join('; ')}`);
}

async function requireIdle(stack: StackView, colour: Colour): Promise<void> {
  const taken = [];
  for (const port of stack.ports(colour)) if (await portAnswers(port)) taken.push(port);
  if (taken.length > 0) throw new Error(`--behind-nginx: the idle colour's (${colour}) ports ${taken.join(', ')} are in use: stop that colour first`);
}

/** Waits until the servers hold no socket of the last run (closing 100,000 takes a while), or the timeout. */
async function settle(sample: () => Promise<ServerSample | undefined>, what: string): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const connections = (await sample())?.connections ?? 0;
    if (connections === 0) return;
    if (Date.now() > deadline) {
      process.stderr.write(`${what}: still ${connections} connections ${SETTLE_TIMEOUT_MS / 1000} s after the run; going on\n`);
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** `repeat` pairs, product then ceiling, through the stack's Nginx; always leaves the product colour live. */
export async function behindNginx(options: LoadTestOptions, runOne: RunOne, teardown: Teardown, sampleReplicas: (urls: string[]) => Promise<ServerSample | undefined>): Promise<ComparisonReport> {
  const stack = readStack();
  checkScenario(options, stack);
  const productColour = stack.liveColour;
  const ceilingColour = otherColour(productColour);
  const lock = await takeStackLock(stack.lockFile);
  teardown.add('release the stack lock', () => lock.release());
  let cleanupFailures: string[];
  let report: ComparisonReport;
  try {
    await requireIdle(stack, ceilingColour);
    const args = ['--redis', stack.redisUrl, '--heartbeat-ms', String(stack.heartbeatMs)];
    const fleet = await CeilingFleet.start(stack.ports(ceilingColour), args);
    teardown.add('stop the ceiling fleet', () => fleet.stop());
    let live = productColour;
    const makeLive = async (colour: Colour): Promise<void> => {
      if (live === colour) return;
      // Set first: a flip that fails half-way (reloaded, never confirmed) is still undone at teardown.
      live = colour;
      await flipLiveColour(stack, colour, colour === productColour ? replicaAnswer(colour) : ceilingAnswer);
    };
    teardown.add(`make ${productColour} live again`, () => makeLive(productColour));
    const productOptions: LoadTestOptions = { ...options, metricsUrls: stack.ports(productColour).map((port) => `http://127.0.0.1:${port}/metrics`) };
    const ceilingOptions: LoadTestOptions = { ...options, metricsUrls: [], reference: false };
    const productSample = () => sampleReplicas(productOptions.metricsUrls);
    const runs: Array<{ product: Report; ceiling: Report }> = [];
    for (let pair = 0; pair < options.repeat; pair += 1) {
      await makeLive(productColour);
      const product = await runOne(productOptions, { target: 'product', nginxPid: stack.nginxPid });
      await settle(productSample, 'product');
      await makeLive(ceilingColour);
      const ceiling = await runOne(ceilingOptions, { target: 'ceiling', sample: () => fleet.sample(), nginxPid: stack.nginxPid });
      await settle(() => fleet.sample(), 'ceiling');
      runs.push({ product, ceiling });
    }
    report = compare(options, { mode: 'fair', args, fleet: { behind: 'nginx', colour: ceilingColour, product_colour: productColour, ports: fleet.ports, pids: fleet.pids } }, runs);
  } finally {
    cleanupFailures = await teardown.run();
    for (const failure of cleanupFailures) process.stderr.write(`teardown: ${failure}\n`);
  }
  if (cleanupFailures.length === 0) return report;
  return { ...report, ok: false, cleanup_failures: cleanupFailures };
}
