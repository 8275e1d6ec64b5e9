/**
 * The repository's root, for every test and tool that reads a file of the project or
 * runs one of its scripts. Computed from this module's place in dist/ (dist/tools/harness/),
 * so it holds from any working directory.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
