/**
 * CPU of processes read from /proc: user + system time of one pid (a server the bench
 * started), or of every child of a parent pid (Nginx's workers, which the load test
 * did not start and cannot ask: Nginx's master does no proxying, its workers do).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessesCpu {
  processes: number;
  cpuSeconds: number;
}

/** The unit of /proc's CPU times (CLK_TCK), asked once. */
const TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** Fields of /proc/PID/stat after the command name (which may hold spaces): state is [0], ppid [1], utime [11], stime [12]. */
function statFields(pid: number | string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

const cpuTicks = (fields: string[]): number => Number(fields[11]) + Number(fields[12]);

/** user + system CPU seconds of `pid`; throws when it does not run. */
export function processCpuSeconds(pid: number): number {
  const fields = statFields(pid);
  if (fields === undefined) throw new Error(`no process ${pid}`);
  return cpuTicks(fields) / TICKS_PER_SECOND;
}

/** The children of `parentPid` that run now, with their CPU seconds summed. */
export function childrenCpu(parentPid: number): ProcessesCpu {
  let processes = 0;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined || Number(fields[1]) !== parentPid) continue;
    processes += 1;
    ticks += cpuTicks(fields);
  }
  return { processes, cpuSeconds: ticks / TICKS_PER_SECOND };
}
