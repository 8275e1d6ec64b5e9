/**
 * The sliced walk every walk over all sockets goes through: bounded slices by count
 * and by time, a yield between two of them, finish() and cancel(), and the real
 * setImmediate yield letting I/O run between slices.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { SlicedWalk, yieldToIo, FAN_OUT_SLICE } from '../../services/gateway/sliced-walk.js';
import { ManualYielder } from '../support/manual-yielder.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, index) => index);

describe('sliced walk (unit)', () => {
  it('visits at most maxItems a slice, in order, yielding between slices, and is done once after the last', () => {
    const yields = new ManualYielder();
    const visited: number[] = [];
    let done = 0;
    const walk = new SlicedWalk(range(5).values(), (item) => visited.push(item), yields.policy(2), () => (done += 1)).start();
    assert.deepEqual(visited, [0, 1], 'the first slice runs at start');
    assert.equal(walk.done, false);
    yields.runNext();
    assert.deepEqual(visited, [0, 1, 2, 3]);
    yields.runNext();
    assert.deepEqual(visited, [0, 1, 2, 3, 4]);
    assert.equal(walk.done, true);
    assert.equal(done, 1);
    assert.equal(yields.pending, 0, 'nothing scheduled after the last item');
  });

  it('a slice whose time budget is spent (clock read every 16 items) yields to I/O and goes on with the rest of its items', async () => {
    const yields = new ManualYielder();
    let time = 0;
    const visited: number[] = [];
    // Each visit takes 0.1 ms: a 2 ms budget is spent after 20 visits, seen at the 32nd.
    const policy = { maxItems: 50, budgetMs: 2, yielder: yields.yielder, now: () => time };
    new SlicedWalk(range(100).values(), (item) => {
      visited.push(item);
      time += 0.1;
    }, policy).start();
    assert.equal(visited.length, 32);
    assert.equal(yields.pending, 0, 'a budget spent yields to I/O, not to the walk’s own yield');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(visited.length, 50, 'the rest of the slice, after one turn of the loop');
    assert.equal(yields.pending, 1, 'then the walk’s own yield, before the next slice');
    yields.runNext();
    assert.equal(visited.length, 82);
  });

  it('finish() visits every item left now, cancels the waiting slice, and is done once', () => {
    const yields = new ManualYielder();
    const visited: number[] = [];
    let done = 0;
    const walk = new SlicedWalk(range(7).values(), (item) => visited.push(item), yields.policy(3), () => (done += 1)).start();
    walk.finish();
    assert.deepEqual(visited, range(7));
    assert.equal(done, 1);
    assert.equal(yields.pending, 0);
    walk.finish();
    assert.equal(done, 1, 'a second finish does nothing');
  });

  it('cancel() stops the walk: no more visits, never done', async () => {
    const yields = new ManualYielder();
    const visited: number[] = [];
    let done = 0;
    const walk = new SlicedWalk(range(7).values(), (item) => visited.push(item), yields.policy(3), () => (done += 1)).start();
    walk.cancel();
    assert.equal(yields.pending, 0);
    walk.finish();
    assert.deepEqual(visited, [0, 1, 2]);
    assert.equal(done, 0);
    const outcome = await Promise.race([walk.completed.then(() => 'completed'), new Promise((resolve) => setTimeout(resolve, 20, 'pending'))]);
    assert.equal(outcome, 'pending');
  });

  it('completed resolves after the last visit', async () => {
    const visited: number[] = [];
    await new SlicedWalk(range(10).values(), (item) => visited.push(item), { maxItems: 3, budgetMs: Infinity, yielder: yieldToIo }).start().completed;
    assert.deepEqual(visited, range(10));
  });

  it('yieldToIo lets data that arrived on a socket be read between two slices', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
    const client = net.connect(port, '127.0.0.1');
    const socket = await accepted;
    try {
      const readAt: number[] = [];
      let visited = 0;
      socket.on('data', () => readAt.push(visited));
      // A walk long enough to span many slices; the peer writes while its first slice runs.
      const busyUntil = (ms: number): void => {
        const end = performance.now() + ms;
        while (performance.now() < end);
      };
      // The peer writes during the first visit: on loopback the byte is readable at once.
      const walk = new SlicedWalk(range(200).values(), () => {
        if (visited === 0) client.write('x');
        visited += 1;
        busyUntil(0.05);
      }, FAN_OUT_SLICE);
      walk.start();
      assert.deepEqual(readAt, [], 'nothing is read during a slice');
      await walk.completed;
      assert.equal(readAt.length, 1);
      assert.ok(readAt[0]! > 0 && readAt[0]! < 200, `read between two slices (after ${readAt[0]} of 200 visits)`);
    } finally {
      client.destroy();
      socket.destroy();
      server.close();
    }
  });
});
