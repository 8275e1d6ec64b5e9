/**
 * The running native stack (tools/dev-up.sh) as its run folder describes it: the
 * settings dev-up saved (RUN_DIR/stack.env), the live colour (the active-colour.conf
 * Nginx includes), each colour's replica ports (tools/stack/stack-lib.sh's
 * replica_port), Nginx's master pid and the stack's lock file. Read only: changing the
 * stack is left to its own shell functions (colour-flip.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../harness/repo-root.js';

export type Colour = 'blue' | 'green';

export interface StackView {
  runDir: string;
  /** The public side, Nginx: http://STACK_ADDRESS:STACK_PORT (loopback when it listens on every interface). */
  url: string;
  redisUrl: string;
  heartbeatMs: number;
  replicas: number;
  liveColour: Colour;
  /** 127.0.0.1 ports of the colour's replicas, 1..REPLICAS (replica_port). */
  ports(colour: Colour): number[];
  /** The pid tools/dev-up.sh recorded for Nginx's master (pids/nginx.pid), if it runs. */
  nginxPid: number | undefined;
  /** tools/stack/stack-lib.sh's take_lock file: one change to the stack at a time. */
  lockFile: string;
}

export const otherColour = (colour: Colour): Colour => (colour === 'blue' ? 'green' : 'blue');

/** The run folder the stack scripts use: RUN_DIR, else the repository's .run (lib.sh). */
export function stackRunDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.RUN_DIR ?? path.join(repoRoot, '.run'));
}

/** The settings tools/dev-up.sh saved in `runDir` (stack.env), or undefined when no stack was brought up there. */
export function stackSettings(runDir = stackRunDir()): Map<string, string> | undefined {
  const file = path.join(runDir, 'stack.env');
  if (!existsSync(file)) return undefined;
  const settings = new Map<string, string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match !== null) settings.set(match[1]!, match[2]!);
  }
  return settings;
}

function readLiveColour(runDir: string): Colour {
  const file = path.join(runDir, 'nginx/conf/active-colour.conf');
  const colour = existsSync(file) ? /^set \$active_colour ([a-z]+);$/m.exec(readFileSync(file, 'utf8'))?.[1] : undefined;
  if (colour !== 'blue' && colour !== 'green') throw new Error(`no live colour in ${file}: is the stack up (tools/dev-up.sh)?`);
  return colour;
}

function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim().split(/\s+/)[0]);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

/** The stack in `runDir`; throws when no stack was brought up there. */
export function readStack(runDir = stackRunDir()): StackView {
  const settings = stackSettings(runDir);
  if (settings === undefined) throw new Error(`no stack in ${runDir} (no stack.env): start it with tools/dev-up.sh, or set RUN_DIR`);
  const setting = (name: string): string => {
    const value = settings.get(name);
    if (value === undefined) throw new Error(`${path.join(runDir, 'stack.env')} has no ${name}`);
    return value;
  };
  const address = setting('STACK_ADDRESS') === '0.0.0.0' ? '127.0.0.1' : setting('STACK_ADDRESS');
  const replicas = Number(setting('REPLICAS'));
  const bases: Record<Colour, number> = { blue: Number(setting('BLUE_PORT_BASE')), green: Number(setting('GREEN_PORT_BASE')) };
  return {
    runDir,
    url: `http://${address}:${setting('STACK_PORT')}`,
    redisUrl: `redis://127.0.0.1:${setting('REDIS_PORT')}`,
    heartbeatMs: Number(setting('HEARTBEAT_INTERVAL_MS')),
    replicas,
    liveColour: readLiveColour(runDir),
    ports: (colour) => Array.from({ length: replicas }, (_, index) => bases[colour] + index + 1),
    nginxPid: readPid(path.join(runDir, 'pids/nginx.pid')),
    lockFile: path.join(runDir, 'promote.lock'),
  };
}
