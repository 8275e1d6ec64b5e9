/**
 * The Compose stack, driven through its own scripts (tools/compose/compose-up.sh,
 * compose-promote.sh, compose-down.sh) with whichever engine tools/compose/compose-lib.sh
 * finds (Docker, or podman here), Nginx published on a free loopback port, so a
 * test exercises exactly what an operator runs. Container names are the stack's
 * own (nginx_proxy, project wschat): one Compose stack per machine at a time.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../tools/harness/processes.js';
import { collect, runScript, spawnScript, type Colour, type ScriptRun } from './stack.js';
import { repoRoot } from '../../tools/harness/repo-root.js';
import { sessionKey, STORED_COUNTS_LUA } from '../../tools/harness/session-keys.js';

const COMPOSE_LIB = path.join(repoRoot, 'tools/compose/compose-lib.sh');
/** The stack's secrets (tools/compose/compose-secrets.sh writes it on the first up). */
export const COMPOSE_SECRETS_FILE = path.join(repoRoot, 'deploy/.env');

/** KEY=value lines of an env file, comments skipped. */
export function readEnvFile(file: string): Map<string, string> {
  const entries = readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]);
  return new Map(entries);
}

export class ComposeStack {
  private constructor(
    readonly runDir: string,
    readonly env: Record<string, string>,
  ) {}

  static async create(env: Record<string, string> = {}): Promise<ComposeStack> {
    const runDir = mkdtempSync(path.join(os.tmpdir(), 'wschat-compose-'));
    return new ComposeStack(runDir, { RUN_DIR: runDir, STACK_PORT: String(await freePort()), ...env });
  }

  get httpUrl(): string {
    return `http://127.0.0.1:${this.env.STACK_PORT}`;
  }

  get wsUrl(): string {
    return `ws://127.0.0.1:${this.env.STACK_PORT}/ws/chat/`;
  }

  up(): Promise<ScriptRun> {
    return runScript('compose/compose-up.sh', [], this.env);
  }

  /** tools/compose/compose-promote.sh; `env` adds settings for this run only (WSCHAT_TAG). */
  promote(args: string[] = [], env: Record<string, string> = {}): Promise<ScriptRun> {
    return runScript('compose/compose-promote.sh', args, { ...this.env, ...env });
  }

  spawnPromote(args: string[] = []): ReturnType<typeof spawnScript> {
    return spawnScript('compose/compose-promote.sh', args, this.env);
  }

  down(): Promise<ScriptRun> {
    return runScript('compose/compose-down.sh', [], this.env);
  }

  /** The engine's own CLI, as tools/compose/compose-lib.sh chose it (docker or podman). */
  engine(args: string[]): Promise<ScriptRun> {
    return this.lib('engine', args);
  }

  /** A function of tools/compose/compose-lib.sh, after its engine detection. */
  lib(fn: string, args: string[]): Promise<ScriptRun> {
    const script = 'source "$0"; engine_detect; "$@"';
    return collect(
      spawn('bash', ['-c', script, COMPOSE_LIB, fn, ...args], {
        cwd: repoRoot,
        env: { ...process.env, ...this.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
  }

  /** The engine's CLI for a command that must succeed; its stdout and stderr, trimmed. */
  async engineOk(args: string[]): Promise<string> {
    const result = await this.engine(args);
    if (result.code !== 0) throw new Error(`engine ${args.join(' ')} exited with ${result.code}: ${result.output}`);
    return result.output.trim();
  }

  /** Ids of a service's containers: running ones, or all of them. */
  async containers(service: string, which: 'running' | 'all' = 'running'): Promise<string[]> {
    const output = await this.engineOk([
      'ps',
      ...(which === 'all' ? ['-a'] : []),
      '-q',
      '--filter',
      'label=com.docker.compose.project=wschat',
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ]);
    return output.split('\n').filter((line) => line !== '');
  }

  /** A secret of the running stack from its secrets file; throws when it is not there. */
  secret(name: 'WSCHAT_REDIS_PASSWORD' | 'WSCHAT_SESSION_KEY_SECRET'): string {
    const value = readEnvFile(COMPOSE_SECRETS_FILE).get(name);
    if (value === undefined || value === '') throw new Error(`${name} is not in ${COMPOSE_SECRETS_FILE}`);
    return value;
  }

  /**
   * redis-cli inside the container `id` (Redis is not published). `as: 'wschat'` logs
   * in as the replicas' user with the password of the container's environment
   * (REDIS_PASSWORD, which only the Redis container has), never on a command line;
   * `as: 'nobody'` sends the command without authenticating.
   */
  redisCli(id: string, args: string[], as: 'wschat' | 'nobody', host = '127.0.0.1'): Promise<ScriptRun> {
    const login = as === 'wschat' ? 'REDISCLI_AUTH="$REDIS_PASSWORD" exec redis-cli --user wschat "$@"' : 'unset REDISCLI_AUTH; exec redis-cli "$@"';
    return this.engine(['exec', id, 'sh', '-c', login, 'redis-cli', '-h', host, ...args]);
  }

  /** What the stack's Redis holds for each session, read as the user wschat; keys named with the stack's SESSION_KEY_SECRET. */
  async storedCounts(sessionIds: string[]): Promise<Array<number | undefined>> {
    const [redis] = await this.containers('redis');
    if (redis === undefined) throw new Error('no running Redis container');
    const secret = this.secret('WSCHAT_SESSION_KEY_SECRET');
    const keys = sessionIds.map((id) => sessionKey(id, 'wschat:', secret));
    const result = await this.redisCli(redis, ['--no-raw', 'EVAL', STORED_COUNTS_LUA, String(keys.length), ...keys], 'wschat');
    if (result.code !== 0) throw new Error(`redis-cli EVAL exited with ${result.code}: ${result.output}`);
    // --no-raw: `1) "12"` per value, `(nil)` for a missing key.
    return result.output
      .trim()
      .split('\n')
      .map((line) => {
        const value = /"(.*)"$/.exec(line)?.[1];
        return value === undefined ? undefined : Number(value);
      });
  }

  async liveColour(): Promise<Colour> {
    const body = await (await fetch(`${this.httpUrl}/version`, { signal: AbortSignal.timeout(2000) })).text();
    return (JSON.parse(body) as { version: Colour }).version;
  }

  /** Removes the stack whole and the run folder; the down's own result. */
  async destroy(): Promise<ScriptRun> {
    const result = await this.down();
    rmSync(this.runDir, { recursive: true, force: true });
    return result;
  }
}
