/**
 * Loops that run beside a test's traffic until stopped: a sampler of anything (a
 * replica's metrics, its probes) and a prober that keeps opening new connections
 * ("new connections keep working"). stopLoops() in an after hook stops those a
 * failed assertion left running.
 */
import WebSocket from 'ws';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { textOf } from '../../tools/harness/clients.js';
import { sleep } from '../../tools/harness/processes.js';

/** Loops that run until stopped (samplers, probers); a failed test stops them in its after hook. */
const loops = new Set<{ stop(): Promise<void> }>();

/** Stops every sampler and prober still running (for after hooks: a failed assertion skips their stop()). */
export async function stopLoops(): Promise<void> {
  await Promise.all([...loops].map((loop) => loop.stop()));
}

/** Runs `sample` every `intervalMs` until stopped and keeps each result with its time. */
export class Sampler<T> {
  /** `at`: when the sample started; `done`: when its value was read in full. */
  readonly samples: Array<{ at: number; done: number; value: T }> = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(sample: () => Promise<T>, intervalMs: number) {
    loops.add(this);
    this.done = (async () => {
      while (this.running) {
        const at = Date.now();
        const value = await sample();
        this.samples.push({ at, done: Date.now(), value });
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    loops.delete(this);
    await this.done;
  }

  between(from: number, to: number): T[] {
    return this.samples.filter((s) => s.at >= from && s.at <= to).map((s) => s.value);
  }

  /** Samples taken wholly inside [from, to]: started at or after `from`, read in full by `to`. */
  within(from: number, to: number): T[] {
    return this.samples.filter((s) => s.at >= from && s.done <= to).map((s) => s.value);
  }
}

export interface ProbeAttempt {
  started: number;
  ended: number;
  error: string | undefined;
}

/**
 * Opens a new plain connection every `intervalMs` (a new session each time), sends
 * one message and expects exactly {"count":1}, then closes: "new connections keep working".
 */
export class ConnectProber {
  readonly attempts: ProbeAttempt[] = [];
  private running = true;
  private readonly done: Promise<void>;

  constructor(
    private readonly wsUrl: string,
    intervalMs = 100,
    private readonly timeoutMs = 3000,
  ) {
    loops.add(this);
    this.done = (async () => {
      while (this.running) {
        const started = Date.now();
        let error: string | undefined;
        try {
          await this.once();
        } catch (caught) {
          error = (caught as Error).message;
        }
        this.attempts.push({ started, ended: Date.now(), error });
        await sleep(intervalMs);
      }
    })();
  }

  failures(): ProbeAttempt[] {
    return this.attempts.filter((attempt) => attempt.error !== undefined);
  }

  private once(): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${this.wsUrl}?session=${randomSessionId()}`, { handshakeTimeout: this.timeoutMs });
      const timer = setTimeout(() => finish(new Error('no count in time')), this.timeoutMs);
      let settled = false;
      const finish = (error?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (error === undefined) ws.close(1000);
        else ws.terminate();
        if (error === undefined) resolve();
        else reject(error);
      };
      ws.on('open', () => ws.send('probe'));
      ws.on('message', (data) => {
        const text = textOf(data);
        if (text === '{"count":1}') finish();
        else if (!text.startsWith('{"ts":')) finish(new Error(`unexpected reply ${text}`));
      });
      ws.on('unexpected-response', (_request, response) => finish(new Error(`HTTP ${response.statusCode}`)));
      ws.on('error', (error) => finish(error));
      ws.on('close', (code) => finish(new Error(`closed with ${code} before its count`)));
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    loops.delete(this);
    await this.done;
  }
}
