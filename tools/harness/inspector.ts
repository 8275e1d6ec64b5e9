/**
 * A Chrome DevTools protocol session with a Node process started with the V8
 * inspector on loopback (`--inspect=127.0.0.1:<port>`, e.g. through NODE_OPTIONS).
 * It forces full garbage collections and reads the process's memory from outside,
 * so nothing is added to the product for a measurement. Used by
 * tools/bench/memory-bench.ts and tests/integration/memory-cycles.test.ts.
 */
import WebSocket from 'ws';
import { textOf } from './clients.js';
import { eventually } from './processes.js';

export interface Memory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

interface Reply {
  id?: number;
  result?: unknown;
  error?: { message: string };
}

export class Inspector {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (result: unknown) => void; reject: (error: Error) => void }>();

  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const message = JSON.parse(textOf(data)) as Reply;
      if (message.id === undefined) return;
      const waiter = this.pending.get(message.id);
      this.pending.delete(message.id);
      if (message.error !== undefined) waiter?.reject(new Error(`inspector: ${message.error.message}`));
      else waiter?.resolve(message.result);
    });
    ws.on('close', () => {
      for (const waiter of this.pending.values()) waiter.reject(new Error('inspector connection closed'));
      this.pending.clear();
    });
  }

  static async connect(port: number): Promise<Inspector> {
    let url: string | undefined;
    await eventually(
      async () => {
        try {
          const targets = (await (await fetch(`http://127.0.0.1:${port}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
          url = targets[0]?.webSocketDebuggerUrl;
        } catch {
          // The inspector is not listening yet.
        }
        return url !== undefined;
      },
      `the inspector on port ${port}`,
      5000,
      50,
    );
    const ws = new WebSocket(url as string);
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
    return new Inspector(ws);
  }

  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    this.nextId += 1;
    const id = this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Evaluates `expression` in the process (global scope) and returns its JSON-serialisable value. */
  async evaluate<T>(expression: string): Promise<T> {
    const answer = (await this.call('Runtime.evaluate', {
      expression: `JSON.stringify(${expression})`,
      returnByValue: true,
      includeCommandLineAPI: true,
    })) as { result: { value?: string }; exceptionDetails?: { text: string } };
    if (answer.exceptionDetails !== undefined) throw new Error(`inspector evaluate: ${answer.exceptionDetails.text}`);
    return JSON.parse(answer.result.value ?? 'null') as T;
  }

  /** Memory after two full collections (the second frees what the first's finalizers released). */
  async memoryAfterGc(): Promise<Memory> {
    await this.call('HeapProfiler.collectGarbage');
    await this.call('HeapProfiler.collectGarbage');
    return this.evaluate<Memory>('process.memoryUsage()');
  }

  close(): void {
    this.ws.close();
  }
}
