/**
 * The repository's root, for every test and tool that reads a file of the project or
 * runs one of its scripts. Computed from this module's place, compiled in dist/tools/harness/
 * or run from its source in tools/harness/ (the unit tier), so it holds from any working
 * directory.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

export const repoRoot = path.resolve(here, path.basename(path.resolve(here, '../..')) === 'dist' ? '../../..' : '../..');
