/**
 * The GitHub workflow must parse (against the Actions schema, with the
 * action-validator the project installs) and call only scripts and make targets
 * that exist: a workflow that breaks only on GitHub is found here first.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from '../tools/harness/repo-root.js';

const workflowPath = '.github/workflows/ci.yml';
const workflow = readFileSync(path.join(repoRoot, workflowPath), 'utf8');

describe('GitHub workflow', () => {
  it('validates against the Actions schema', async () => {
    const validator = path.join(repoRoot, 'node_modules/.bin/action-validator');
    await promisify(execFile)(validator, [workflowPath], { cwd: repoRoot });
  });

  it('runs only make targets and scripts that exist', () => {
    const makefile = readFileSync(path.join(repoRoot, 'Makefile'), 'utf8');
    const targets = [...workflow.matchAll(/run: make ([\w-]+)/g)].map((match) => match[1]!);
    assert.ok(targets.length >= 2, `make targets used: ${targets.join(', ')}`);
    for (const target of targets) assert.match(makefile, new RegExp(`^${target}:`, 'm'), `make ${target}`);
    const files = [...workflow.matchAll(/(?:bash |-f )((?:\.ci|tools|deploy)\/[\w./-]+)/g)].map((match) => match[1]!);
    assert.ok(files.includes('deploy/Dockerfile') && files.includes('deploy/compose.yml'));
    for (const file of files) assert.ok(existsSync(path.join(repoRoot, file)), file);
  });
});
