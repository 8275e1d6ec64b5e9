/**
 * Two promises tools/promote.sh makes that a promotion of a good release cannot show:
 * - a release that starts and is ready but answers wrong counts is refused by the
 *   smoke step: non-zero, the failing check named, the live colour untouched, the new
 *   colour's processes gone. The broken release is built from a SourceCopy with the
 *   fault in its increment script, so the product carries no fault switch at all.
 * - when promote.sh returns, the old colour has exited: no process of it is left, and
 *   its "stopped" lines come before "promotion ... complete". Each old replica holds a
 *   socket.io peer that never answers its close (a raw engine.io socket that reads
 *   nothing), so its drain lasts until the replica's shutdown deadline (seconds): a
 *   promote.sh that did not wait would return with the old colour still running. (A
 *   silent plain socket would not do: the liveness sweep drops it after one heartbeat
 *   interval, 1 s here, long before the retire; engine.io's own ping gives up after 45 s.)
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { sendTextFrame, silentWebSocket } from '../support/raw-websocket.js';
import { pgrep } from '../support/process-table.js';
import { eventually } from '../../tools/harness/processes.js';
import { metricSum } from '../../tools/harness/prometheus-text.js';
import { SourceCopy } from '../support/source-copy.js';
import { NativeStack, type Colour } from '../support/stack.js';

/** The smoke check a release that counts wrong fails, as tests/smoke/release.smoke.ts names it. */
const FAILING_CHECK = 'counts messages in order';

describe('promote.sh checks', function () {
  this.timeout(150_000);
  let stack: NativeStack;
  let broken: SourceCopy | undefined;
  const stubborn: net.Socket[] = [];

  before(async () => {
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 1000 });
  });

  after(async () => {
    for (const socket of stubborn) socket.destroy();
    broken?.destroy();
    await stack?.destroy();
  });

  async function liveColour(): Promise<{ public: string; internal: string }> {
    const version = (await (await fetch(`${stack.httpUrl}/version`, { headers: { connection: 'close' } })).json()) as { version: string };
    const active = (await (await fetch(`http://127.0.0.1:${stack.env.NGINX_STATUS_PORT}/active-colour`)).json()) as { colour: string };
    return { public: version.version, internal: active.colour };
  }

  /** Pids of the processes running from `colour`'s release (pgrep -f on the run folder's path). */
  function releaseProcesses(colour: Colour): Promise<number[]> {
    return pgrep(`${stack.runDir}/releases/${colour}/services/`);
  }

  function pidfile(name: string): string {
    return path.join(stack.runDir, 'pids', `${name}.pid`);
  }

  it('refuses a release that is ready but counts wrong: non-zero, the check named, blue still live, green gone', async () => {
    // Every unleased increment adds 2: the replica starts, answers /readyz 200 and counts 2, 4, 6.
    broken = SourceCopy.withChange({
      file: 'services/gateway/store/session-store.ts',
      find: 'this.redis.incr(key).then(',
      replace: 'this.redis.incrby(key, 2).then(',
    });
    const run = await stack.promote('green', broken.root);

    assert.notEqual(run.code, 0, `promote.sh must refuse a release that counts wrong; it exited ${run.code}:\n${run.output}`);
    assert.match(run.output, /replica-green-1 ready/, `the broken release did start and become ready:\n${run.output}`);
    assert.ok(run.output.includes(FAILING_CHECK), `the output names the failing smoke check "${FAILING_CHECK}":\n${run.output}`);
    assert.match(run.output, /blue is still live/, run.output);
    assert.doesNotMatch(run.output, /step 3\/4/, 'no flip was attempted');
    assert.deepEqual(await liveColour(), { public: 'blue', internal: 'blue' }, 'the live colour is unchanged');
    assert.deepEqual(await releaseProcesses('green'), [], "no process of green's release is left running");
    for (const i of [1, 2]) assert.ok(!existsSync(pidfile(`replica-green-${i}`)), `replica-green-${i}.pid removed`);
    for (const url of stack.replicaUrls('blue')) assert.equal((await fetch(`${url}/readyz`)).status, 200, `${url} (blue) still ready`);
  });

  it('returns only once the old colour has exited: no blue process left, its "stopped" lines before "complete"', async () => {
    assert.deepEqual(await liveColour(), { public: 'blue', internal: 'blue' }, 'blue is live before the promotion');
    for (const url of stack.replicaUrls('blue')) {
      const socket = await silentWebSocket(Number(new URL(url).port), '/socket.io/?EIO=4&transport=websocket');
      sendTextFrame(socket, '40'); // socket.io's CONNECT packet: the replica opens a session for it
      stubborn.push(socket);
      await eventually(async () => (await metricSum(`${url}/metrics`, 'wschat_connections_active')) === 1, `the silent peer's session on ${url}`);
    }

    const run = await stack.promote('green');
    // Read before anything else: the question is what runs at the instant promote.sh returned.
    const left = await releaseProcesses('blue');
    assert.equal(run.code, 0, run.output);
    assert.deepEqual(left, [], `blue's processes still running when promote.sh returned:\n${run.output}`);

    const lines = run.output.split('\n');
    const complete = lines.findIndex((line) => /promotion to green complete/.test(line));
    assert.ok(complete >= 0, run.output);
    for (const i of [1, 2]) {
      const stopped = lines.findIndex((line) => new RegExp(`stopped replica-blue-${i} \\(pid \\d+\\)`).test(line));
      assert.ok(stopped >= 0 && stopped < complete, `"stopped replica-blue-${i}" comes before "promotion to green complete":\n${run.output}`);
      assert.ok(!existsSync(pidfile(`replica-blue-${i}`)), `replica-blue-${i}.pid removed`);
    }
    assert.deepEqual(await liveColour(), { public: 'green', internal: 'green' });
  });
});
