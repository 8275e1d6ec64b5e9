/**
 * The native stack's lock (tools/stack/stack-lib.sh take_lock: flock on
 * RUN_DIR/promote.lock), held by a Node process. Node has no flock, so a child holds
 * it: `flock -n FILE` running `cat` on a pipe from this process. Closing the pipe
 * releases it, and so does this process dying in any way (the pipe closes, cat
 * ends): a killed load test never leaves the stack locked.
 */
import { spawn } from 'node:child_process';

export interface StackLock {
  release(): Promise<void>;
}

/** Takes the lock or fails at once (a promotion, dev-up or dev-down holds it). */
export function takeStackLock(file: string): Promise<StackLock> {
  const child = spawn('flock', ['-n', file, 'sh', '-c', 'echo locked; exec cat >/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the stack's lock ${file} is held (a promotion, dev-up or dev-down is running; flock exited ${code}) ${stderr}`.trim())));
    child.stdout.setEncoding('utf8').once('data', () =>
      resolve({
        release: async () => {
          child.stdin.end();
          await exited;
        },
      }),
    );
  });
}
