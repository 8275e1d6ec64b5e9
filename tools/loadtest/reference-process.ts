/**
 * tools/loadtest/reference-server.ts as a child of the load test: forked with IPC on a
 * given port (0: any free one), so it reports its port once listening and answers
 * samples of its memory, CPU, open sockets and own heartbeat fan-out.
 */
import { fork, type ChildProcess } from 'node:child_process';
import type { ReferenceMessage, ServerSample } from './protocol.js';

/** How long a SIGTERMed ceiling may take to exit before it is SIGKILLed. */
const STOP_GRACE_MS = 5000;

export interface ReferenceProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  sample(): Promise<ServerSample>;
  /** SIGTERM, SIGKILL after STOP_GRACE_MS; resolves once the process has exited. */
  stop(): Promise<void>;
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null;

/** The next message of `type` from the child; rejects if it exits first. */
function next<T extends ReferenceMessage['type']>(child: ChildProcess, type: T): Promise<Extract<ReferenceMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ReferenceMessage): void => {
      if (message.type !== type) return;
      child.off('message', onMessage).off('exit', onExit);
      resolve(message as Extract<ReferenceMessage, { type: T }>);
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      child.off('message', onMessage);
      reject(new Error(`the reference server (pid ${child.pid}) exited (${code ?? signal})`));
    };
    child.on('message', onMessage).once('exit', onExit);
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (exited(child)) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Forks the reference server on 127.0.0.1:`port` with `args`, resolved once it listens.
 *
 * In a session of its own (setsid), as each of the dev stack's replicas is (start_process
 * in tools/stack/lib.sh) and as private-stack.ts starts its replica. It matters for a fair
 * comparison: with the kernel's autogroup scheduling (kernel.sched_autogroup_enabled) each
 * session is one scheduling group and busy groups share the cores equally, so a ceiling
 * left in the load test's session would share one group's turn with the load test's
 * workers while each replica has a turn of its own, and write its ticks far
 * slower than in a session of its own (docs/benchmarks.md, "The fair ceiling"). A
 * session leader still exits when the IPC channel closes (reference-server.ts), so a
 * load test killed outright leaves none.
 */
export async function startReference(port: number, args: string[]): Promise<ReferenceProcess> {
  const child = fork(new URL('./reference-server.js', import.meta.url), [String(port), ...args], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    detached: true,
  });
  let listening: number;
  try {
    ({ port: listening } = await next(child, 'listening'));
  } catch (error) {
    await stopChild(child);
    throw error;
  }
  return {
    url: `http://127.0.0.1:${listening}`,
    port: listening,
    pid: child.pid ?? -1,
    sample: async () => {
      const answer = next(child, 'sample');
      child.send({ type: 'sample' });
      return answer;
    },
    stop: () => stopChild(child),
  };
}
