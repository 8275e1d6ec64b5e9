import assert from 'node:assert/strict';
import { sumSamples } from '../../tools/loadtest/ceiling-fleet.js';
import { Teardown } from '../../tools/loadtest/teardown.js';

describe("the load test's teardown (tools/loadtest/teardown.ts)", () => {
  it('runs the steps last added first, each once, and goes on past a failing one', async () => {
    const ran: string[] = [];
    const step = (name: string) => () => Promise.resolve(void ran.push(name));
    const teardown = new Teardown();
    teardown.add('lock', step('lock'));
    teardown.add('fleet', () => Promise.reject(new Error('gone')));
    teardown.add('colour', step('colour'));
    assert.deepEqual(await teardown.run(), ['fleet: gone']);
    assert.deepEqual(ran, ['colour', 'lock']);
    assert.deepEqual(await teardown.run(), [], 'nothing runs twice');
    assert.deepEqual(ran, ['colour', 'lock']);
  });

  it('skips a step removed once done, and a second run while one runs shares it', async () => {
    const ran: string[] = [];
    const teardown = new Teardown();
    let release = (): void => undefined;
    teardown.add('slow', () => new Promise<void>((resolve) => (release = () => resolve(void ran.push('slow')))));
    const forget = teardown.add('done already', () => Promise.resolve(void ran.push('done already')));
    forget();
    const first = teardown.run();
    const second = teardown.run();
    assert.equal(first, second);
    release();
    await first;
    assert.deepEqual(ran, ['slow']);
  });
});

describe("the ceiling fleet's samples (tools/loadtest/ceiling-fleet.ts)", () => {
  it('adds up the processes as one server: memory, CPU, sockets, and each tick of each process', () => {
    const histogram = (count: number, sum: number, under: number[]) => ({ count, sum, buckets: [0.5, 1, Number.POSITIVE_INFINITY].map((le, index) => ({ le, count: under[index]! })) });
    const total = sumSamples([
      { processes: 1, rssBytes: 100, cpuSeconds: 1.5, connections: 10, fanOut: histogram(2, 0.6, [1, 2, 2]) },
      { processes: 1, rssBytes: 50, cpuSeconds: 0.5, connections: 5, fanOut: histogram(2, 1.4, [0, 1, 2]) },
    ]);
    assert.deepEqual(total, { processes: 2, rssBytes: 150, cpuSeconds: 2, connections: 15, fanOut: histogram(4, 2, [1, 3, 4]) });
    assert.equal(sumSamples([{ processes: 1, rssBytes: 1, cpuSeconds: 1, connections: 1 }]).fanOut, undefined, 'no heartbeat, no fan-out');
  });
});
