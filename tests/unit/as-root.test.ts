import assert from 'node:assert/strict';
import { rootArgv } from '../support/as-root.js';

describe('a command that needs root, for the fault tests', () => {
  const purpose = 'the network-fault tests';

  it('runs itself as root', () => {
    assert.deepEqual(rootArgv('/usr/sbin/iptables', ['-S', 'INPUT'], { uid: 0, sudoRefusal: undefined }, purpose), ['/usr/sbin/iptables', ['-S', 'INPUT']]);
  });

  it('runs through sudo -n, never prompting, as a user with passwordless sudo', () => {
    assert.deepEqual(rootArgv('/usr/sbin/iptables', ['-S', 'INPUT'], { uid: 1001, sudoRefusal: undefined }, purpose), [
      'sudo',
      ['-n', '/usr/sbin/iptables', '-S', 'INPUT'],
    ]);
  });

  it('fails with one error naming root, sudo and the tool when it has neither', () => {
    assert.throws(
      () => rootArgv('/usr/sbin/iptables', ['-S', 'INPUT'], { uid: 1001, sudoRefusal: 'sudo: a password is required' }, purpose),
      /^Error: the network-fault tests run iptables as root: run them as root or as a user with passwordless sudo \(uid 1001, and sudo -n refused: sudo: a password is required\)$/,
    );
  });
});
