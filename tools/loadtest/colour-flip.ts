/**
 * Makes a colour live on the stack's Nginx with the stack's own set_live_colour
 * (tools/stack/stack-lib.sh: active-colour.conf written and renamed, nginx -t, a
 * reload), then waits until the public side answers as that colour does on fresh
 * connections. What answers is given by the caller: a replica says
 * {"version":"<colour>"} at /version; the ceiling's ws server answers any plain
 * request 426. The caller holds the stack's lock (stack-lock.ts).
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from '../harness/repo-root.js';
import type { Colour, StackView } from './stack-view.js';

/** Answers in a row on fresh connections before the flip counts as done (stack-lib.sh's wait_for_live_colour uses 5). */
const IN_A_ROW = 5;
const FLIP_TIMEOUT_MS = 15_000;

/** What GET /version through Nginx answers once the flip is done. */
export type PublicAnswer = (status: number, body: string) => boolean;

export const replicaAnswer =
  (colour: Colour): PublicAnswer =>
  (status, body) =>
    status === 200 && body === `{"version":"${colour}"}`;

/** ws's HTTP server answers a request that is not an upgrade 426 Upgrade Required. */
export const ceilingAnswer: PublicAnswer = (status) => status === 426;

function runSetLiveColour(stack: StackView, colour: Colour): Promise<void> {
  const lib = path.join(repoRoot, 'tools/stack/stack-lib.sh');
  const child = spawn('bash', ['-c', 'set -euo pipefail; source "$1"; load_stack_settings; set_live_colour "$2"', 'flip', lib, colour], {
    env: { ...process.env, RUN_DIR: stack.runDir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`set_live_colour ${colour} exited ${code}: ${stderr.trim()}`))));
  });
}

async function answersInARow(url: string, answer: PublicAnswer): Promise<boolean> {
  for (let index = 0; index < IN_A_ROW; index += 1) {
    try {
      const response = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(2000) });
      if (!answer(response.status, await response.text())) return false;
    } catch {
      return false;
    }
  }
  return true;
}

/** Flips the stack's Nginx to `colour` and waits until `/version` through it gives `answer`. */
export async function flipLiveColour(stack: StackView, colour: Colour, answer: PublicAnswer): Promise<void> {
  await runSetLiveColour(stack, colour);
  const deadline = Date.now() + FLIP_TIMEOUT_MS;
  while (!(await answersInARow(`${stack.url}/version`, answer))) {
    if (Date.now() > deadline) throw new Error(`Nginx did not serve the ${colour} colour within ${FLIP_TIMEOUT_MS} ms of the flip`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
