/**
 * CPU of processes the load test did not start and cannot ask (Nginx's workers),
 * read from /proc: user + system time of every child of a parent pid. Nginx's master
 * does no proxying; its workers, its children, do.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface ProcessesCpu {
  processes: number;
  cpuSeconds: number;
}

/** Fields of /proc/PID/stat after the command name (which may hold spaces): state is [0], ppid [1], utime [11], stime [12]. */
function statFields(pid: string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // exited meanwhile
  }
}

/** The children of `parentPid` that run now, with their CPU seconds summed. */
export function childrenCpu(parentPid: number): ProcessesCpu {
  const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
  let processes = 0;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (fields === undefined || Number(fields[1]) !== parentPid) continue;
    processes += 1;
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return { processes, cpuSeconds: ticks / ticksPerSecond };
}
