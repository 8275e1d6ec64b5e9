/**
 * The replica's phase machine in-process: the steps it allows, and that every
 * other change throws and leaves the phase as it was.
 */
import assert from 'node:assert/strict';
import { Lifecycle, type Phase } from '../../services/gateway/lifecycle.js';

const PHASES: readonly Phase[] = ['starting', 'running', 'draining', 'stopped'];

/** A lifecycle moved along `path` from starting. */
function at(...path: Phase[]): Lifecycle {
  const lifecycle = new Lifecycle();
  for (const phase of path) lifecycle.enter(phase);
  return lifecycle;
}

describe('replica lifecycle', () => {
  it('starts in starting, not draining', () => {
    const lifecycle = new Lifecycle();
    assert.equal(lifecycle.phase, 'starting');
    assert.equal(lifecycle.draining, false);
  });

  it('runs starting -> running -> draining -> stopped, draining from the drain on', () => {
    const lifecycle = new Lifecycle();
    const seen: Array<[Phase, boolean]> = [];
    for (const phase of ['running', 'draining', 'stopped'] as const) {
      lifecycle.enter(phase);
      seen.push([lifecycle.phase, lifecycle.draining]);
    }
    assert.deepEqual(seen, [
      ['running', false],
      ['draining', true],
      ['stopped', true],
    ]);
  });

  it('drains straight from starting (a signal while listening)', () => {
    const lifecycle = at('draining');
    assert.equal(lifecycle.draining, true);
    lifecycle.enter('stopped');
    assert.equal(lifecycle.phase, 'stopped');
  });

  const allowed: Record<Phase, readonly Phase[]> = {
    starting: ['running', 'draining'],
    running: ['draining'],
    draining: ['stopped'],
    stopped: [],
  };
  const reach: Record<Phase, Phase[]> = { starting: [], running: ['running'], draining: ['running', 'draining'], stopped: ['running', 'draining', 'stopped'] };
  for (const from of PHASES) {
    for (const to of PHASES.filter((phase) => !allowed[from].includes(phase))) {
      it(`refuses ${from} -> ${to}: throws and stays ${from}`, () => {
        const lifecycle = at(...reach[from]);
        assert.throws(() => lifecycle.enter(to), { message: `phase change ${from} -> ${to} is not allowed` });
        assert.equal(lifecycle.phase, from);
      });
    }
  }
});
