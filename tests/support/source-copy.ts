/**
 * A copy of the source tree with one change made to it, for a stack script to build
 * a release from (tools/promote.sh compiles its own folder's tree into the release).
 * This is how a test ships a broken release without any fault switch in the product:
 * nothing a production config, an env var or a flag could set, because the fault
 * exists only in a copy of the code that never leaves the test's temporary folder.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../tools/harness/repo-root.js';

/** Build output, run folders and reports are not sources; node_modules is linked, not copied. */
const NOT_COPIED = new Set(['.git', 'node_modules', 'dist', '.run', 'reports', 'coverage']);

export interface SourceChange {
  /** A path relative to the repository root. */
  file: string;
  /** Text that must occur exactly once in the file (a change that no longer applies fails loudly). */
  find: string;
  replace: string;
}

export class SourceCopy {
  private constructor(readonly root: string) {}

  /** Copies the working tree (uncommitted edits included) and applies `change` to the copy. */
  static withChange(change: SourceChange): SourceCopy {
    const root = mkdtempSync(path.join(os.tmpdir(), 'wschat-source-'));
    cpSync(repoRoot, root, {
      recursive: true,
      filter: (source) => path.dirname(source) !== repoRoot || !NOT_COPIED.has(path.basename(source)),
    });
    // The release's own node_modules is a link of this one (stack-lib.sh's cp -al keeps a link a link).
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(root, 'node_modules'));
    const file = path.join(root, change.file);
    const text = readFileSync(file, 'utf8');
    const occurrences = text.split(change.find).length - 1;
    if (occurrences !== 1) throw new Error(`${change.file}: "${change.find}" occurs ${occurrences} times, not once`);
    writeFileSync(file, text.replace(change.find, change.replace));
    return new SourceCopy(root);
  }

  destroy(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
