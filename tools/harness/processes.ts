/**
 * Real processes for the tests: redis-server and replicas, on free loopback
 * ports, each tracked so that a failing test still leaves nothing behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Redis, type RedisOptions } from 'ioredis';
import { scrape, valueOf } from './prometheus-text.js';
import { repoRoot } from './repo-root.js';

export const REPLICA_MAIN = path.join(repoRoot, 'dist/services/gateway/main.js');

/** Every child still running; killed on process exit if a test forgot (or failed before) cleanup. */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** One free loopback port. Several at once: freePorts, or two calls may get the same one. */
export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port!;
}

/**
 * `count` distinct free loopback ports. Every listener is held until all are
 * bound: closing each before asking for the next lets the kernel hand out the
 * same port twice (a Sentinel set once started its sentinel on its replica's port).
 */
export async function freePorts(count: number): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    for (let index = 0; index < count; index += 1) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  }
}

/** Whether something accepts TCP connections on 127.0.0.1:`port` (a port a server still holds). */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Waits for `condition` to hold, checking every `intervalMs`; fails naming `what` after `timeoutMs`. */
export async function eventually(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 5000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** One PING on a fresh connection (`options`: where, and TLS if any): true on PONG, false on anything else. */
export async function answersPing(options: RedisOptions): Promise<boolean> {
  const probe = new Redis({ lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** SIGKILLs every child still running and resolves once all of them have exited. */
export async function killAll(children: ChildProcess[]): Promise<void> {
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** `promise`, or a rejection naming `what` once `timeoutMs` passed without it settling. */
export async function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

function track(child: ChildProcess): Promise<Exit> {
  running.add(child);
  return new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    });
  });
}

export interface RedisServerOptions {
  /**
   * Allows DEBUG (e.g. DEBUG SLEEP to make Redis slow) from loopback clients; Redis 7
   * refuses it by default. Off unless a test asks for it.
   */
  enableDebugCommand?: boolean;
  /**
   * `always` (the default here) so a SIGKILL loses no count a client saw; benchmarks
   * pass the shipped redis/redis.conf's `everysec`.
   */
  appendfsync?: 'always' | 'everysec';
  /**
   * Loopback addresses to listen on besides 127.0.0.1 (e.g. 127.0.0.11): a replica
   * given one of them as its Redis address has links of its own, which a fault test
   * can cut by address without touching the other replicas'.
   */
  extraAddresses?: string[];
}

/** A redis-server of the test's own: its port, its data dir, AOF on so a restart keeps the counts. */
export class RedisServer {
  private child: ChildProcess | undefined;
  private exited: Promise<Exit> | undefined;
  private readonly dir = mkdtempSync(path.join(os.tmpdir(), 'wschat-redis-'));

  private constructor(
    readonly port: number,
    private readonly options: RedisServerOptions,
  ) {}

  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), options);
    await server.resume();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts (again) on the same port and data dir. */
  async resume(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port', String(this.port),
        '--bind', ['127.0.0.1', ...(this.options.extraAddresses ?? [])].join(' '),
        '--dir', this.dir,
        '--save', '',
        '--appendonly', 'yes',
        '--appendfsync', this.options.appendfsync ?? 'always',
        '--daemonize', 'no',
        '--loglevel', 'warning',
        ...(this.options.enableDebugCommand === true ? ['--enable-debug-command', 'local'] : []),
      ],
      { stdio: 'ignore' },
    );
    this.child = child;
    this.exited = track(child);
    const probe = new Redis(this.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await eventually(
        async () => {
          try {
            if (probe.status !== 'ready') await probe.connect();
            return (await probe.ping()) === 'PONG';
          } catch {
            probe.disconnect();
            return false;
          }
        },
        `redis-server on port ${this.port}`,
        5000,
        25,
      );
    } finally {
      probe.disconnect();
    }
  }

  /** Graceful stop (SIGTERM: Redis fsyncs the AOF and exits). */
  async stop(): Promise<void> {
    if (this.child === undefined || this.exited === undefined) return;
    this.child.kill('SIGTERM');
    await this.exited;
    this.child = undefined;
  }

  /** SIGKILL, no chance to flush or say goodbye (the AOF is fsynced before every reply: appendfsync always). */
  async kill(): Promise<void> {
    if (this.child === undefined || this.exited === undefined) return;
    this.child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.resume();
  }

  /** A client for inspecting what the replicas stored. Disconnect it when done. */
  client(): Redis {
    return new Redis(this.url, { maxRetriesPerRequest: 1 });
  }

  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One JSON log line of a replica. */
export type LogLine = Record<string, unknown> & { event?: string; message?: string };

export interface SpawnOptions {
  /**
   * A session of its own (setsid), as the dev stack's replicas have: what a benchmark's
   * replica needs to be scheduled as the stack's are (tools/loadtest/reference-process.ts).
   */
  ownSession?: boolean;
}

/** A replica process (the compiled entry point, as `npm start` runs it). */
export class ReplicaProcess {
  readonly logs: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;

  private constructor(
    readonly port: number,
    private readonly child: ChildProcess,
  ) {
    this.exited = track(child);
    let pending = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') this.logs.push(JSON.parse(line) as LogLine);
    });
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
  }

  /** Starts a replica and waits until /readyz answers 200. */
  static async start(redis: RedisServer, env: Record<string, string> = {}, options: SpawnOptions = {}): Promise<ReplicaProcess> {
    const replica = ReplicaProcess.spawn({ REDIS_URL: redis.url, ...env }, await freePort(), [], options);
    await replica.waitReady();
    return replica;
  }

  /** Spawns without waiting; `env` is all the configuration it gets besides PORT and HOST. */
  static spawn(env: Record<string, string>, port = 0, args: string[] = [], { ownSession = false }: SpawnOptions = {}): ReplicaProcess {
    const child = spawn(process.execPath, [REPLICA_MAIN, ...args], {
      detached: ownSession,
      env: {
        PATH: process.env.PATH ?? '',
        PORT: String(port),
        HOST: '127.0.0.1',
        HEARTBEAT_INTERVAL_MS: '3600000',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return new ReplicaProcess(port, child);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.port}/ws/chat/`;
  }

  /** Waits for /readyz 200; fails at once, with its stderr, if the replica exits instead. */
  async waitReady(timeoutMs = 5000): Promise<void> {
    await eventually(
      async () => {
        if (this.child.exitCode !== null) throw new Error(`replica exited with ${this.child.exitCode}: ${this.stderr}`);
        return (await this.probe('/readyz')) === 200;
      },
      `replica :${this.port} ready`,
      timeoutMs,
      25,
    );
  }

  /** HTTP status of GET `path`, or 0 when nothing answers. */
  async probe(path: string): Promise<number> {
    try {
      const response = await fetch(`${this.httpUrl}${path}`);
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  }

  /** The value of one metric series from /metrics: the first that carries `labels` (0 when absent). */
  async metric(name: string, labels: Record<string, string> = {}): Promise<number> {
    return valueOf((await scrape(`${this.httpUrl}/metrics`)).samples, name, labels) ?? 0;
  }

  events(event: string): LogLine[] {
    return this.logs.filter((line) => line.event === event);
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** SIGTERM and wait for the exit; SIGKILL if it overruns `timeoutMs`. */
  async stop(timeoutMs = 10_000): Promise<Exit> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}
