/**
 * Network faults on loopback, as iptables rules that DROP (no reset, no FIN: a
 * blackhole, what a partition looks like to both ends). Every rule carries a comment
 * naming the test process that made it, so that:
 * - heal() removes exactly this run's rules, and so does this process's exit;
 * - a rule left by an earlier run that died without cleaning up (SIGKILL, a crash)
 *   is removed by the next run's create(), since the process it names is gone,
 *   while rules of another run still going are left alone.
 * Loopback packets cross INPUT once each, whichever process sent them, so one chain
 * holds every rule. Needs root, or passwordless sudo (tests/support/as-root.ts). Synchronous (a few ms per rule): the moment a cut or
 * a heal took effect is the moment the call returns.
 */
import { execFileSync } from 'node:child_process';
import { asRoot } from './as-root.js';

const CHAIN = 'INPUT';
const TAG = 'wschat-netfault';
const PURPOSE = 'the network-fault tests';

/** Runs `iptables args` as root, synchronously; its output when `output`. */
function iptables(args: string[], output: boolean): string {
  const [file, argv] = asRoot('iptables', args, PURPOSE);
  return execFileSync(file, argv, { encoding: 'utf8', stdio: ['ignore', output ? 'pipe' : 'ignore', 'pipe'] });
}

/** Which packets of a TCP link between a client and a server port to drop. */
export type Direction = 'both' | 'to-server' | 'from-server';

/** A link: the server's address and port (a Redis alias address, a replica's port). */
export interface Link {
  /** The server's address; undefined: any (every connection to the port). */
  address?: string;
  port: number;
}

/** Whether `pid` names a running process. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `iptables -S` words of one rule, with the quotes of its comment removed. */
function words(rule: string): string[] {
  return [...rule.matchAll(/"([^"]*)"|(\S+)/g)].map((match) => match[1] ?? match[2]!);
}

/** Every rule of CHAIN that carries TAG, as `iptables -S` prints it, with the pid it names. */
function taggedRules(): Array<{ spec: string[]; pid: number }> {
  let listing: string;
  try {
    listing = iptables(['-S', CHAIN], true);
  } catch (error) {
    throw new Error(`iptables -S ${CHAIN} failed: ${PURPOSE} need iptables, as root or through passwordless sudo (${(error as Error).message})`, {
      cause: error,
    });
  }
  return listing
    .split('\n')
    .filter((line) => line.startsWith(`-A ${CHAIN} `) && line.includes(`${TAG} pid=`))
    .map((line) => ({ spec: words(line).slice(2), pid: Number(/pid=(\d+)/.exec(line)![1]) }));
}

function remove(spec: string[]): void {
  iptables(['-D', CHAIN, ...spec], false);
}

/** Removes this process's rules; synchronous so that an exit handler can run it. */
function removeOwn(): number {
  const own = taggedRules().filter((rule) => rule.pid === process.pid);
  for (const rule of own) remove(rule.spec);
  return own.length;
}

let exitHookInstalled = false;

export class LoopbackFaults {
  private constructor() {}

  /** Checks iptables answers and removes rules that dead runs left behind. */
  static create(): LoopbackFaults {
    const leftovers = taggedRules().filter((rule) => !alive(rule.pid));
    for (const rule of leftovers) remove(rule.spec);
    if (leftovers.length > 0) process.stdout.write(`      removed ${leftovers.length} iptables rule(s) a dead run left behind\n`);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => removeOwn());
    }
    return new LoopbackFaults();
  }

  /**
   * Drops the packets of every TCP connection to `link` in `direction`: towards the
   * server, from it, or both. The connections stay open at both ends; what either
   * end sends is lost and retransmitted until heal() or TCP gives up.
   */
  blackhole(link: Link, direction: Direction): void {
    const comment = ['-m', 'comment', '--comment', `${TAG} pid=${process.pid}`, '-j', 'DROP'];
    const toServer = ['-p', 'tcp', ...(link.address === undefined ? [] : ['-d', link.address]), '--dport', String(link.port)];
    const fromServer = ['-p', 'tcp', ...(link.address === undefined ? [] : ['-s', link.address]), '--sport', String(link.port)];
    const rules = direction === 'both' ? [toServer, fromServer] : direction === 'to-server' ? [toServer] : [fromServer];
    for (const rule of rules) iptables(['-I', CHAIN, ...rule, ...comment], false);
  }

  /** Removes every rule this run made: the links carry packets again. */
  heal(): number {
    return removeOwn();
  }

  /** How many rules of this run are in place (0 once healed). */
  rules(): number {
    return taggedRules().filter((rule) => rule.pid === process.pid).length;
  }
}
