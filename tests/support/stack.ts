/**
 * The native blue/green stack, driven through its own scripts (tools/dev-up.sh,
 * tools/promote.sh, tools/dev-down.sh) in a temporary run folder on free ports,
 * so a test exercises exactly what an operator runs.
 */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { freePorts } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';


/**
 * Every script started and not yet exited, each the leader of a process group of its
 * own (its builds, its smoke run). A script a failed or timed-out test left running
 * holds the stack's lock, so dev-down would be refused and leave the whole stack
 * running: destroy() kills them first, and so does this process's exit.
 */
const runningScripts = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of runningScripts) killGroup(child);
});

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // The group is gone already.
  }
}

export interface ScriptRun {
  code: number | null;
  output: string;
  durationMs: number;
}

export type Colour = 'blue' | 'green';

export interface ScriptOptions {
  /** Settings over the stack's own. */
  env?: Record<string, string>;
  /** The tree whose tools/ to run (a SourceCopy's); the repository by default. */
  root?: string;
}

/**
 * Starts `ROOT/tools/SCRIPT` (SCRIPT a path under tools/: promote.sh, compose/compose-up.sh)
 * with `env` over this process's environment, without waiting for it, in a process
 * group of its own: a teardown (or the exit hook) can kill the script with everything
 * it started (setsid'd replicas aside).
 */
export function spawnScript(
  script: string,
  args: string[],
  env: Record<string, string>,
  root = repoRoot,
): ChildProcessByStdio<null, Readable, Readable> {
  const child = spawn('bash', [path.join(root, 'tools', script), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  runningScripts.add(child);
  child.once('exit', () => runningScripts.delete(child));
  return child;
}

/** Runs `tools/SCRIPT` to its end: exit code, stdout and stderr interleaved, duration. */
export function runScript(script: string, args: string[], env: Record<string, string>): Promise<ScriptRun> {
  return collect(spawnScript(script, args, env));
}

/** What a script started by spawnScript has printed so far, stdout and stderr interleaved, for a test that acts while it runs. */
export function outputOf(child: ChildProcessByStdio<null, Readable, Readable>): () => string {
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return () => output;
}

/** Waits for a script started by spawnScript to end, keeping all it printed. */
export function collect(child: ChildProcessByStdio<null, Readable, Readable>): Promise<ScriptRun> {
  const started = Date.now();
  const output = outputOf(child);
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve({ code, output: output(), durationMs: Date.now() - started }));
  });
}

async function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A base port B such that B+1..B+count are free (replica i listens on B+i). */
export async function freePortBlock(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20_000 + Math.floor(Math.random() * 20_000);
    const ports = Array.from({ length: count }, (_, index) => base + index + 1);
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) return base;
  }
  throw new Error('no free block of ports found');
}

export interface StackSettings {
  replicas: number;
  heartbeatIntervalMs: number;
  env?: Record<string, string>;
}

export class NativeStack {
  /** This stack's scripts still running (runningScripts holds every stack's, for the exit hook). */
  private readonly scripts = new Set<ChildProcess>();

  private constructor(
    readonly runDir: string,
    readonly env: Record<string, string>,
  ) {}

  /** `settings.env`: more stack settings (tools/stack/stack-lib.sh names), e.g. NGINX_CONNECTIONS_PER_ADDRESS. */
  static async create(settings: StackSettings): Promise<NativeStack> {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-stack-'));
    const [stackPort, nginxStatusPort, prometheusPort, redisPort, alertmanagerPort] = await freePorts(5);
    const env = {
      RUN_DIR: runDir,
      STACK_PORT: String(stackPort),
      NGINX_STATUS_PORT: String(nginxStatusPort),
      PROMETHEUS_PORT: String(prometheusPort),
      ALERTMANAGER_PORT: String(alertmanagerPort),
      REDIS_PORT: String(redisPort),
      REPLICAS: String(settings.replicas),
      BLUE_PORT_BASE: String(await freePortBlock(settings.replicas)),
      GREEN_PORT_BASE: String(await freePortBlock(settings.replicas)),
      HEARTBEAT_INTERVAL_MS: String(settings.heartbeatIntervalMs),
      ...settings.env,
    };
    return new NativeStack(runDir, env);
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.env.STACK_PORT}`;
  }

  /** A stack brought up with tools/dev-up.sh; throws with the script's output if it did not come up. */
  static async started(settings: StackSettings): Promise<NativeStack> {
    const stack = await NativeStack.create(settings);
    const up = await stack.up();
    if (up.code !== 0) {
      await stack.destroy();
      throw new Error(`tools/dev-up.sh exited with ${up.code}:\n${up.output}`);
    }
    return stack;
  }

  get prometheusUrl(): string {
    return `http://127.0.0.1:${this.env.PROMETHEUS_PORT}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.env.STACK_PORT}/ws/chat/`;
  }

  /** The version the public side serves (GET /version through Nginx, on a connection of its own): the live colour. */
  async publicVersion(): Promise<string> {
    const response = await fetch(`${this.httpUrl}/version`, { headers: { connection: 'close' } });
    return ((await response.json()) as { version: string }).version;
  }

  replicaUrls(colour: Colour): string[] {
    const base = Number(colour === 'blue' ? this.env.BLUE_PORT_BASE : this.env.GREEN_PORT_BASE);
    return Array.from({ length: Number(this.env.REPLICAS) }, (_, index) => `http://127.0.0.1:${base + index + 1}`);
  }

  up(): Promise<ScriptRun> {
    return this.run('dev-up.sh');
  }

  /** tools/promote.sh; `root`: the tree whose script (and so whose code) releases the colour, e.g. a SourceCopy. */
  promote(colour?: Colour, root = repoRoot): Promise<ScriptRun> {
    return this.run('promote.sh', colour === undefined ? [] : [colour], { root });
  }

  status(): Promise<ScriptRun> {
    return this.run('status.sh');
  }

  /**
   * Stops everything and removes the run folder. A script still running (the test
   * failed or timed out while it ran) is killed first, so dev-down can take the lock;
   * if dev-down still fails, the run folder (with its pidfiles) is kept and the error
   * names it, rather than leaving processes nothing records any more.
   */
  async destroy(): Promise<void> {
    const stuck = [...this.scripts].filter((child) => child.exitCode === null && child.signalCode === null);
    for (const child of stuck) {
      process.stdout.write(`      killing ${child.spawnargs.slice(1).join(' ')} (pid ${child.pid}), still running at teardown\n`);
      killGroup(child);
    }
    await Promise.all(stuck.map((child) => new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once('exit', resolve)))));
    const down = await this.run('dev-down.sh');
    if (down.code !== 0) throw new Error(`tools/dev-down.sh exited with ${down.code}; run folder kept: ${this.runDir}\n${down.output}`);
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /** Starts a script of tools/ (of `options.root`'s tree) with this stack's settings and `options.env` over them, without waiting for it. */
  spawn(script: string, args: string[] = [], options: ScriptOptions = {}): ChildProcessByStdio<null, Readable, Readable> {
    const child = spawnScript(script, args, { ...this.env, ...options.env }, options.root);
    this.scripts.add(child);
    child.once('exit', () => this.scripts.delete(child));
    return child;
  }

  run(script: string, args: string[] = [], options: ScriptOptions = {}): Promise<ScriptRun> {
    return collect(this.spawn(script, args, options));
  }
}
