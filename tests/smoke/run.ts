/**
 * Runs the release smoke tests (tests/smoke/*.smoke.js beside this file) and prints
 * every check as it ends, with its result and duration, in the log format of the
 * stack scripts: tools/promote.sh's step 2 shows each check by name, never a row of
 * dots. Exit code 0 when every check passed, 1 otherwise; with SMOKE_FAILURES_FILE
 * set, the failed checks' names are written there, one a line, for promote.sh to
 * name in its abort message.
 *
 *   node tests/smoke/run.js [--timeout MS]     settings: tests/smoke/release.smoke.ts
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Mocha from 'mocha';

const here = path.dirname(fileURLToPath(import.meta.url));

/** HH:MM:SS in UTC, as tools/stack/lib.sh's log() prints it. */
function clock(): string {
  return new Date().toISOString().slice(11, 19);
}

/** A check's name: its replica (the suite under the root) and its title, or a hook's. */
function checkName(runnable: Mocha.Runnable): string {
  return runnable.titlePath().slice(1).join(': ');
}

/** The failed checks' names, as the reporter saw them. */
const failed: string[] = [];

/** One line of output (stdout; promote.sh sends it to its log). */
function print(line: string): void {
  process.stdout.write(`${line}\n`);
}

class SmokeReporter extends Mocha.reporters.Base {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const started = Date.now();
    let checks = 0;
    runner.on(Mocha.Runner.constants.EVENT_TEST_PASS, (test) => {
      checks += 1;
      print(`${clock()}   ok     ${String(test.duration ?? 0).padStart(5)} ms  ${checkName(test)}`);
    });
    runner.on(Mocha.Runner.constants.EVENT_TEST_FAIL, (runnable, error: Error) => {
      checks += 1;
      const name = checkName(runnable);
      failed.push(name);
      print(`${clock()}   FAILED ${String(runnable.duration ?? 0).padStart(5)} ms  ${name}`);
      for (const line of String(error?.message ?? error).split('\n').slice(0, 12)) print(`                          ${line}`);
    });
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const summary = failed.length === 0 ? `all ${checks} passed` : `${failed.length} of ${checks} failed`;
      print(`${clock()}   smoke checks: ${summary} in ${Date.now() - started} ms`);
    });
  }
}

function timeoutArgument(): number {
  const index = process.argv.indexOf('--timeout');
  const value = index === -1 ? 20_000 : Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--timeout wants milliseconds (got ${process.argv[index + 1]})`);
  return value;
}

async function main(): Promise<void> {
  const mocha = new Mocha({ timeout: timeoutArgument(), reporter: SmokeReporter });
  const files = readdirSync(here).filter((name) => name.endsWith('.smoke.js')).sort();
  if (files.length === 0) throw new Error(`no *.smoke.js in ${here}`);
  for (const file of files) mocha.addFile(path.join(here, file));
  await mocha.loadFilesAsync();
  const failures = await new Promise<number>((resolve) => mocha.run(resolve));
  const failuresFile = process.env.SMOKE_FAILURES_FILE;
  if (failuresFile !== undefined && failuresFile !== '') writeFileSync(failuresFile, failed.map((name) => `${name}\n`).join(''));
  // Like mocha --exit: a handle a check left open must not hold the promotion up.
  process.exit(failures === 0 ? 0 : 1);
}

await main();
