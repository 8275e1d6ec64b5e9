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
import { repoRoot } from '../../tools/harness/repo-root.js';

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

  it('runs the make targets that .ci/run runs, on Node versions the project supports', () => {
    const targetsOf = (text: string): Set<string> => new Set([...text.matchAll(/^\s*(?:run: )?make ([\w-]+)\s*$/gm)].map((match) => match[1]!));
    const ciTargets = targetsOf(readFileSync(path.join(repoRoot, '.ci/run'), 'utf8'));
    const ciUserTargets = [...readFileSync(path.join(repoRoot, '.ci/run'), 'utf8').matchAll(/&& make ([\w-]+)'/g)].map((match) => match[1]!);
    for (const target of ciUserTargets) ciTargets.add(target);
    assert.deepEqual([...ciTargets].sort(), ['ci-stack', 'test', 'test-containers', 'test-mutation']);
    const workflowTargets = targetsOf(workflow);
    for (const target of ciTargets) assert.ok(workflowTargets.has(target), `the workflow runs make ${target}`);

    const nodeEnv = readFileSync(path.join(repoRoot, 'tools/stack/node.env'), 'utf8');
    const floor = Number(/^NODE_MIN_MAJOR=(\d+)$/m.exec(nodeEnv)![1]);
    const chosen = Number(/^NODE_VERSION=(\d+)\./m.exec(nodeEnv)![1]);
    const matrix = /node: \[([\d, ]+)\]/.exec(workflow)![1]!.split(',').map(Number);
    const pinned = [...workflow.matchAll(/node-version: (\d+)$/gm)].map((match) => Number(match[1]));
    assert.ok(matrix.includes(floor) && matrix.includes(chosen), `the matrix ${matrix.join(', ')} covers the floor ${floor} and Node ${chosen}`);
    assert.ok(pinned.length > 0 && pinned.every((major) => major === chosen), `the other jobs run Node ${chosen}: ${pinned.join(', ')}`);
  });

  it('pins every action by commit, with the release it is beside', () => {
    const uses = [...workflow.matchAll(/uses: (\S+)(.*)$/gm)];
    assert.ok(uses.length >= 3, `${uses.length} actions`);
    for (const [, action, rest] of uses) {
      assert.match(action!, /^[\w.-]+\/[\w.-]+@[0-9a-f]{40}$/, `${action}: a tag can be moved, a commit cannot`);
      assert.match(rest!, /^ # v\d+\.\d+\.\d+$/, `${action}: say which release the commit is`);
    }
  });
});

