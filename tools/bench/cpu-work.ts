/**
 * The CPU-bound work of tools/bench/cpu-handler-bench.ts: a fixed number of steps of
 * an integer recurrence, pure JavaScript, so it holds whichever thread runs it for as
 * long as it runs (nothing in it waits or yields). Its default export is the piscina
 * task that a worker thread runs.
 */

/** Runs `steps` steps; returns the last value, so the work cannot be optimised away. */
export function burn(steps: number): number {
  let value = 1;
  for (let step = 0; step < steps; step += 1) value = (value * 1_103_515_245 + 12_345) % 2_147_483_648;
  return value;
}

/** The steps that take about `ms` on this thread, measured over a few runs. */
export function stepsFor(ms: number): number {
  const trial = 2_000_000;
  let best = Number.POSITIVE_INFINITY;
  for (let run = 0; run < 5; run += 1) {
    const started = performance.now();
    burn(trial);
    best = Math.min(best, performance.now() - started);
  }
  return Math.max(1, Math.round((trial / best) * ms));
}

export default function task({ steps }: { steps: number }): number {
  return burn(steps);
}
