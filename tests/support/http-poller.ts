/**
 * Polls a stack's public HTTP endpoints through Nginx while something happens (a
 * release), keeping every failure: a status other than 200 or a failed request.
 */
import { sleep } from '../../tools/harness/processes.js';

/** Polls public HTTP endpoints through Nginx and keeps every failure. */
export class HttpPoller {
  readonly failures: string[] = [];
  requests = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(baseUrl: string) {
    this.done = this.loop(baseUrl);
  }

  private async loop(baseUrl: string): Promise<void> {
    while (this.running) {
      for (const path of ['/version', '/healthz', '/readyz']) {
        this.requests += 1;
        try {
          const response = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(2000) });
          await response.arrayBuffer();
          if (response.status !== 200) this.failures.push(`${path} ${response.status}`);
        } catch (error) {
          // fetch's own message is "fetch failed"; the cause says which (refused, reset, closed).
          const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
          this.failures.push(`${path} ${(error as Error).message}: ${cause?.code ?? cause?.message ?? 'no cause'}`);
        }
      }
      await sleep(25);
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}
