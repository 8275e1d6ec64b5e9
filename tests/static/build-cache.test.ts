/**
 * tools/stack/stack-lib.sh's build_release, in a copy of the tree (the same node_modules)
 * with a run folder of its own: a release from unchanged sources reuses the compiled
 * code, an edit is compiled into the next release, a deleted source leaves nothing
 * behind, and the colour's node_modules is kept while the lock file is the same.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from '../../tools/harness/repo-root.js';


describe('build_release (the release build cache)', function () {
  this.timeout(180_000);
  let tree: string;
  const runDir = (): string => path.join(tree, '.run');
  const release = (colour: string, file: string): string => path.join(runDir(), 'releases', colour, file);

  before(() => {
    tree = mkdtempSync(path.join(os.tmpdir(), 'wschat-build-'));
    for (const entry of ['services', 'shared', 'tests', 'tools', 'package.json', 'package-lock.json', 'tsconfig.json']) {
      cpSync(path.join(repoRoot, entry), path.join(tree, entry), { recursive: true });
    }
    symlinkSync(path.join(repoRoot, 'node_modules'), path.join(tree, 'node_modules'));
    // A smoke file that the second test deletes: a stale one would still run in promote.sh's step 2.
    writeFileSync(path.join(tree, 'tests/smoke/build-cache-extra.smoke.ts'), 'export const EXTRA = 1;\n');
  });

  after(() => {
    if (tree !== undefined) rmSync(tree, { recursive: true, force: true });
  });

  /** build_release COLOUR in the copy; resolves with its output, rejects when it fails. */
  function buildRelease(colour: string): Promise<string> {
    const child = spawn('bash', ['-c', `set -euo pipefail; source tools/stack/stack-lib.sh; build_release ${colour}`], {
      cwd: tree,
      env: { ...process.env, RUN_DIR: runDir(), BUILD_CACHE: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    return new Promise((resolve, reject) => {
      child.on('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`build_release ${colour} exited ${code}:\n${output}`))));
    });
  }

  it('compiles once, then reuses the compiled code and the page while no source changed', async () => {
    const first = await buildRelease('blue');
    assert.match(first, /compiled the sources that changed since the last build/);
    assert.match(first, /built the page/);
    assert.ok(existsSync(release('blue', 'services/gateway/main.js')));
    assert.ok(existsSync(release('blue', 'page/services/gateway/public/app.js')));
    const again = await buildRelease('green');
    assert.match(again, /compiled code is current \(sources [0-9a-f]{16}\): reused/);
    assert.match(again, /page is current \(sources [0-9a-f]{16}\): reused/);
    assert.equal(readFileSync(release('green', 'services/gateway/main.js'), 'utf8'), readFileSync(release('blue', 'services/gateway/main.js'), 'utf8'));
  });

  it('compiles an edit into the next release, and prunes the output of a deleted source', async () => {
    const heartbeat = path.join(tree, 'services/gateway/heartbeat.ts');
    writeFileSync(heartbeat, `${readFileSync(heartbeat, 'utf8')}\nexport const BUILD_CACHE_TEST_MARK = 'edited';\n`);
    assert.ok(existsSync(release('blue', 'tests/smoke/build-cache-extra.smoke.js')), 'built from the first test');
    rmSync(path.join(tree, 'tests/smoke/build-cache-extra.smoke.ts'));
    const modulesBefore = statSync(release('blue', 'node_modules')).ino;
    const output = await buildRelease('blue');
    assert.match(output, /compiled the sources that changed since the last build/);
    assert.match(output, /page is current/, 'the page does not depend on heartbeat.ts');
    assert.match(readFileSync(release('blue', 'services/gateway/heartbeat.js'), 'utf8'), /BUILD_CACHE_TEST_MARK = 'edited'/);
    for (const gone of ['tests/smoke/build-cache-extra.smoke.js', 'tests/smoke/build-cache-extra.smoke.js.map']) {
      assert.ok(!existsSync(release('blue', gone)), `${gone} pruned`);
    }
    assert.ok(existsSync(release('blue', 'tests/smoke/release.smoke.js')), 'the other outputs stay');
    assert.equal(statSync(release('blue', 'node_modules')).ino, modulesBefore, "the colour's node_modules kept: same lock file");
  });
});
