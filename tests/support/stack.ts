/**
 * The native blue/green stack, driven through its own scripts (tools/dev-up.sh,
 * tools/promote.sh, tools/dev-down.sh) in a temporary run folder on free ports,
 * so a test exercises exactly what an operator runs.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { freePort } from './processes.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

export interface ScriptRun {
  code: number | null;
  output: string;
  durationMs: number;
}

export type Colour = 'blue' | 'green';

/** Starts `tools/SCRIPT` with `env` over this process's environment, without waiting for it. */
export function spawnScript(
  script: string,
  args: string[],
  env: Record<string, string>,
): ChildProcessByStdio<null, Readable, Readable> {
  return spawn('bash', [path.join(repoRoot, 'tools', script), ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Runs `tools/SCRIPT` to its end: exit code, stdout and stderr interleaved, duration. */
export function runScript(script: string, args: string[], env: Record<string, string>): Promise<ScriptRun> {
  return collect(spawnScript(script, args, env));
}

/** Waits for a script started by spawnScript to end, keeping all it printed. */
export function collect(child: ChildProcessByStdio<null, Readable, Readable>): Promise<ScriptRun> {
  const started = Date.now();
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve) => {
    child.on('exit', (code) => resolve({ code, output, durationMs: Date.now() - started }));
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
async function freePortBlock(count: number): Promise<number> {
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
  private constructor(
    readonly runDir: string,
    readonly env: Record<string, string>,
  ) {}

  /** `settings.env`: more stack settings (tools/stack-lib.sh names), e.g. NGINX_CONNECTIONS_PER_ADDRESS. */
  static async create(settings: StackSettings): Promise<NativeStack> {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-stack-'));
    const env = {
      RUN_DIR: runDir,
      STACK_PORT: String(await freePort()),
      NGINX_STATUS_PORT: String(await freePort()),
      PROMETHEUS_PORT: String(await freePort()),
      REDIS_PORT: String(await freePort()),
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

  replicaUrls(colour: Colour): string[] {
    const base = Number(colour === 'blue' ? this.env.BLUE_PORT_BASE : this.env.GREEN_PORT_BASE);
    return Array.from({ length: Number(this.env.REPLICAS) }, (_, index) => `http://127.0.0.1:${base + index + 1}`);
  }

  up(): Promise<ScriptRun> {
    return this.run('dev-up.sh');
  }

  promote(colour?: Colour): Promise<ScriptRun> {
    return this.run('promote.sh', colour === undefined ? [] : [colour]);
  }

  status(): Promise<ScriptRun> {
    return this.run('status.sh');
  }

  /** Stops everything and removes the run folder. */
  async destroy(): Promise<void> {
    await this.run('dev-down.sh');
    rmSync(this.runDir, { recursive: true, force: true });
  }

  /** Starts a script of tools/ with this stack's settings (and `extraEnv` over them), without waiting for it. */
  spawn(script: string, args: string[] = [], extraEnv: Record<string, string> = {}): ChildProcessByStdio<null, Readable, Readable> {
    return spawnScript(script, args, { ...this.env, ...extraEnv });
  }

  run(script: string, args: string[] = [], extraEnv: Record<string, string> = {}): Promise<ScriptRun> {
    return runScript(script, args, { ...this.env, ...extraEnv });
  }
}
