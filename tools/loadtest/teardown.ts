/**
 * What a run started, stopped in reverse order, each step once, whatever the steps
 * before it did: on the normal path (a finally), on a failure, and on SIGINT or
 * SIGTERM, where no finally runs. One instance per run, made by its caller: no
 * module-level state.
 */
export interface Step {
  name: string;
  run: () => Promise<void>;
}

export class Teardown {
  private readonly steps: Step[] = [];
  private running: Promise<string[]> | undefined;

  /** Adds a step to run at teardown; the returned function removes it (done already). */
  add(name: string, run: () => Promise<void>): () => void {
    const step = { name, run };
    this.steps.push(step);
    return () => {
      const index = this.steps.indexOf(step);
      if (index >= 0) this.steps.splice(index, 1);
    };
  }

  /**
   * Runs every step still registered, last added first; resolves with what failed
   * (each as "name: message"). A second call while one runs gets the same promise, so a
   * signal during a finally's teardown waits for it rather than racing it.
   */
  run(): Promise<string[]> {
    this.running ??= this.runSteps().finally(() => (this.running = undefined));
    return this.running;
  }

  private async runSteps(): Promise<string[]> {
    const failures: string[] = [];
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.run();
      } catch (error) {
        failures.push(`${step.name}: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return failures;
  }
}

/**
 * SIGINT and SIGTERM run the teardown, report what failed on `write`, then exit
 * 130 / 143 (128 + the signal, as a shell reports it). Returns the uninstaller.
 */
export function teardownOnSignals(teardown: Teardown, write: (line: string) => void): () => void {
  const handlers = (['SIGINT', 'SIGTERM'] as const).map((signal) => {
    const handler = (): void => {
      write(`\n${signal}: stopping what this run started\n`);
      void teardown.run().then((failures) => {
        for (const failure of failures) write(`teardown: ${failure}\n`);
        process.exit(signal === 'SIGINT' ? 130 : 143);
      });
    };
    process.on(signal, handler);
    return { signal, handler };
  });
  return () => {
    for (const { signal, handler } of handlers) process.off(signal, handler);
  };
}
