/**
 * The few commands of the tests that need root (iptables, for the network faults),
 * for a run as root or as a user with passwordless sudo (what a hosted CI runner is):
 * as root the tool runs itself, otherwise through `sudo -n`, which never prompts and
 * fails at once instead. Neither, or no such tool: one error that names what is needed.
 * The tool is named by its absolute path, so sudo's secure_path cannot pick another.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

/** Debian installs iptables under sbin, which is not on a regular user's PATH. */
const SEARCH_PATH = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin'].filter((dir) => dir !== '');

/** What decides how a tool runs as root: who this is, and whether `sudo -n` answers. */
export interface Privilege {
  uid: number;
  /** Undefined when `sudo -n true` succeeded; otherwise why it did not. */
  sudoRefusal: string | undefined;
}

/** The file and arguments that run `toolPath args` as root under `privilege`; throws the one clear error when nothing can. */
export function rootArgv(toolPath: string, args: readonly string[], privilege: Privilege, purpose: string): [string, string[]] {
  if (privilege.uid === 0) return [toolPath, [...args]];
  if (privilege.sudoRefusal === undefined) return ['sudo', ['-n', toolPath, ...args]];
  throw new Error(
    `${purpose} run ${path.basename(toolPath)} as root: run them as root or as a user with passwordless sudo ` +
      `(uid ${privilege.uid}, and sudo -n refused: ${privilege.sudoRefusal})`,
  );
}

/** The absolute path of `tool` on PATH or under sbin, or undefined. */
export function findTool(tool: string): string | undefined {
  for (const dir of SEARCH_PATH) {
    const candidate = path.join(dir, tool);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not in this folder
    }
  }
  return undefined;
}

let privilege: Privilege | undefined;

/** This process's privilege, probed once (`sudo -n true` only when not root). */
function ownPrivilege(): Privilege {
  if (privilege !== undefined) return privilege;
  const uid = process.getuid?.() ?? -1;
  let sudoRefusal: string | undefined;
  if (uid !== 0) {
    try {
      execFileSync('sudo', ['-n', 'true'], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    } catch (error) {
      const { code, stderr } = error as NodeJS.ErrnoException & { stderr?: string };
      sudoRefusal = code === 'ENOENT' ? 'sudo is not installed' : (stderr ?? '').trim() || (error as Error).message;
    }
  }
  privilege = { uid, sudoRefusal };
  return privilege;
}

/**
 * The file and arguments that run `tool args` as root here. Throws naming the tool when
 * it is not installed (make test-deps installs it), or naming root and sudo when
 * neither is to be had.
 */
export function asRoot(tool: string, args: readonly string[], purpose: string): [string, string[]] {
  const toolPath = findTool(tool);
  if (toolPath === undefined) throw new Error(`${purpose} need ${tool}, which is not installed (make test-deps installs it)`);
  return rootArgv(toolPath, args, ownPrivilege(), purpose);
}
