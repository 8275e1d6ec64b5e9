/**
 * Mocha runs with "exit": false, so a test that leaves a socket, a timer or a loop
 * behind keeps its process alive after the last test: a failing blue/green run sat
 * there until CI killed it. Mocha's --exit would hide such a leak; this guard names it
 * instead. Loaded by .mocharc.json (--require), it waits, once every suite's after
 * hooks are done, for the process to exit by itself; if it is still running after
 * EXIT_GRACE_MS it prints what holds the event loop and exits non-zero, which also
 * runs the SIGKILL of every child tools/harness/processes.ts still tracks.
 */
const EXIT_GRACE_MS = 10_000;

export function mochaGlobalTeardown(): void {
  const finished = Date.now();
  setTimeout(() => {
    const holding = process.getActiveResourcesInfo().filter((resource) => resource !== 'TTYWrap');
    process.stderr.write(
      `exit guard: the tests finished ${Date.now() - finished} ms ago and the process is still running, ` +
        `held by: ${holding.join(', ') || '(nothing reported)'}; a test left these behind. Exiting with 1.\n`,
    );
    // Keep mocha's failure count when there is one: a leak must not turn a failed run's code into 1 either.
    process.exit(Math.max(1, Number(process.exitCode ?? 0)));
  }, EXIT_GRACE_MS).unref();
}
