/**
 * What runs on the machine, seen from outside the processes: whether a pid runs (a
 * zombie does not count), pgrep by command line or process group, a process's children.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** True while `pid` runs (a zombie does not count). */
export function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return false;
  }
}

/** The session `pid` belongs to (the sixth field of /proc/PID/stat, after the parenthesised command). */
export function sessionOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3]);
}

/** Pids of running processes whose command line matches `needle` (pgrep -f), this process excluded. */
export function pgrep(needle: string): Promise<number[]> {
  return pgrepWith(['-f', '--', needle]);
}

/** Pids of the running processes of process group `pgid`. */
export function processGroup(pgid: number): Promise<number[]> {
  return pgrepWith(['-g', String(pgid)]);
}

async function pgrepWith(args: string[]): Promise<number[]> {
  const child = spawn('pgrep', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await new Promise((resolve) => child.on('exit', resolve));
  return output
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map(Number)
    .filter((pid) => pid !== process.pid && processRuns(pid));
}

/** Children of `parent` with their command lines (from /proc). */
export async function childrenOf(parent: number): Promise<Array<{ pid: number; command: string }>> {
  const child = spawn('ps', ['-o', 'pid=,args=', '--ppid', String(parent)], { stdio: ['ignore', 'pipe', 'ignore'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  await new Promise((resolve) => child.on('exit', resolve));
  return output
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(.*)$/.exec(line))
    .filter((match): match is RegExpExecArray => match !== null)
    .map((match) => ({ pid: Number(match[1]), command: match[2]! }));
}
