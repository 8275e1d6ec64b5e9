/**
 * A native stack (tests/support/stack.ts) from its run folder: its pidfiles, its
 * process logs, its shell helpers (tools/stack/stack-lib.sh) run with its settings, and
 * what a failed test left running from it.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { LogLine } from '../../tools/harness/processes.js';
import { repoRoot } from '../../tools/harness/repo-root.js';
import { pgrep } from './process-table.js';
import type { NativeStack, ScriptRun } from './stack.js';

/** The pid in `<run dir>/pids/<name>.pid`, or undefined when there is no pidfile. */
export function stackPid(stack: NativeStack, name: string): number | undefined {
  try {
    const pid = Number(readFileSync(path.join(stack.runDir, 'pids', `${name}.pid`), 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The JSON lines of one of the stack's process logs (`<run dir>/logs/<name>.log`). */
export function stackLog(stack: NativeStack, name: string): LogLine[] {
  const lines: LogLine[] = [];
  let text: string;
  try {
    text = readFileSync(path.join(stack.runDir, 'logs', `${name}.log`), 'utf8');
  } catch {
    return lines;
  }
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      // A line being written right now.
    }
  }
  return lines;
}

/** Runs `snippet` in bash with tools/stack/stack-lib.sh sourced and the stack's settings loaded (its helpers). */
export function stackShell(stack: NativeStack, snippet: string): Promise<ScriptRun> {
  const started = Date.now();
  const child = spawn('bash', ['-c', `set -euo pipefail; source tools/stack/stack-lib.sh; load_stack_settings; ${snippet}`], {
    cwd: repoRoot,
    env: { ...process.env, ...stack.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, output, durationMs: Date.now() - started })));
}

/**
 * After a stack's dev-down: SIGKILLs whatever still runs from its run folder (only a
 * failed test leaves anything: a process whose pidfile was lost) and says so.
 */
export async function killStackLeftovers(runDir: string): Promise<void> {
  const leftovers = await pgrep(`${runDir}/`);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Gone meanwhile.
    }
  }
  if (leftovers.length > 0) process.stdout.write(`      killed ${leftovers.length} process(es) left running from ${runDir}\n`);
}
