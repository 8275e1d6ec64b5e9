/**
 * `make dev-up` and `make promote` check the replicas' configuration
 * (`main.js --check-config`) before starting a colour, and a bad variable stops
 * them there: exit 1, the variable named, no replica started, the live colour
 * untouched. The scripts run for real, in a run folder of their own.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { NativeStack } from '../support/stack.js';

/** Below MAX_MESSAGE_BYTES's minimum (1): services/gateway/config.ts refuses it. */
const BAD = { MAX_MESSAGE_BYTES: '0' };
const NAMED = /configuration is invalid, none started: config error: MAX_MESSAGE_BYTES must be/;

describe('stack scripts refuse a bad replica configuration', function () {
  this.timeout(120_000);
  let stack: NativeStack;

  before(async () => {
    stack = await NativeStack.create({ replicas: 1, heartbeatIntervalMs: 30_000 });
  });

  after(async () => {
    await stack?.destroy();
  });

  const replicaLog = (colour: string): string => path.join(stack.runDir, 'logs', `replica-${colour}-1.log`);

  it('dev-up stops before starting a replica, naming the variable', async () => {
    const up = await stack.run('dev-up.sh', [], { env: BAD });
    assert.notEqual(up.code, 0, up.output);
    assert.match(up.output, NAMED);
    assert.equal(existsSync(replicaLog('blue')), false, 'a replica was started');
  });

  it('promote stops before starting the new colour, naming the variable, and the live colour stays', async () => {
    const up = await stack.up();
    assert.equal(up.code, 0, up.output);
    const promote = await stack.run('promote.sh', [], { env: BAD });
    assert.equal(promote.code, 1, promote.output);
    assert.match(promote.output, NAMED);
    assert.match(promote.output, /blue is still live/);
    assert.equal(existsSync(replicaLog('green')), false, 'a green replica was started');
    const version = await fetch(`${stack.httpUrl}/version`);
    assert.deepEqual(await version.json(), { version: 'blue' });
  });
});
