/**
 * The shutdown ledger's own rules, over a Redis list kept in memory (its LTRIM and
 * LPOP as Redis defines them): each record is one JSON line appended and trimmed to
 * the newest MAX_ENTRIES in one transaction, a collect takes at most COLLECT_BATCH
 * entries oldest first, and malformed entries are taken off the list but never
 * returned. The round trip through a real Redis is tests/integration/shutdown.test.ts's.
 */
import assert from 'node:assert/strict';
import {
  COLLECT_BATCH,
  MAX_ENTRIES,
  ShutdownLedger,
  type LedgerRedis,
  type LedgerTransaction,
  type ShutdownRecord,
} from '../../services/gateway/store/shutdown-ledger.js';

const KEY = 'unit:shutdowns';

/** Redis lists in memory; every command is also recorded, transactions as one entry. */
class MemoryLists implements LedgerRedis {
  readonly lists = new Map<string, string[]>();
  /** Each exec'd transaction's commands, and each LPOP, in order. */
  readonly sent: unknown[][] = [];

  list(key: string): string[] {
    return this.lists.get(key) ?? [];
  }

  lpop(key: string, count: number): Promise<string[] | null> {
    this.sent.push(['lpop', key, count]);
    const list = this.list(key);
    // As Redis: LPOP with a count on a missing (empty) key answers nil.
    if (list.length === 0) return Promise.resolve(null);
    const taken = list.splice(0, count);
    return Promise.resolve(taken);
  }

  multi(): LedgerTransaction {
    const queued: Array<() => void> = [];
    const commands: unknown[][] = [];
    const transaction: LedgerTransaction = {
      rpush: (key, value) => {
        commands.push(['rpush', key, value]);
        queued.push(() => this.lists.set(key, [...this.list(key), value]));
        return transaction;
      },
      ltrim: (key, start, stop) => {
        commands.push(['ltrim', key, start, stop]);
        queued.push(() => this.lists.set(key, ltrim(this.list(key), start, stop)));
        return transaction;
      },
      exec: () => {
        this.sent.push(commands);
        for (const run of queued) run();
        return Promise.resolve(queued.map(() => [null, 'OK']));
      },
    };
    return transaction;
  }
}

/** LTRIM as Redis defines it: inclusive, negative indexes from the end, out-of-range clamped. */
function ltrim(list: string[], start: number, stop: number): string[] {
  const from = Math.max(0, start < 0 ? list.length + start : start);
  const to = Math.min(list.length - 1, stop < 0 ? list.length + stop : stop);
  return from > to ? [] : list.slice(from, to + 1);
}

const entry = (seconds: number): ShutdownRecord => ({ replica: `r${seconds}`, version: 'blue', seconds, at: '2026-12-02T07:00:00.000Z' });

function ledger(): { redis: MemoryLists; ledger: ShutdownLedger } {
  const redis = new MemoryLists();
  return { redis, ledger: new ShutdownLedger(redis, 'unit:') };
}

describe('ShutdownLedger (unit)', () => {
  it('records one JSON line under <prefix>shutdowns, appended and trimmed to the newest MAX_ENTRIES in one transaction', async () => {
    const { redis, ledger: shutdowns } = ledger();
    await shutdowns.record(entry(1.5));
    assert.deepEqual(redis.sent, [[['rpush', KEY, JSON.stringify(entry(1.5))], ['ltrim', KEY, -MAX_ENTRIES, -1]]]);
  });

  it('keeps the newest MAX_ENTRIES, oldest first, when nobody collects', async () => {
    const { redis, ledger: shutdowns } = ledger();
    for (let n = 0; n < MAX_ENTRIES + 5; n += 1) await shutdowns.record(entry(n));
    const kept = redis.list(KEY).map((line) => (JSON.parse(line) as ShutdownRecord).seconds);
    assert.equal(kept.length, MAX_ENTRIES);
    assert.deepEqual([kept[0], kept.at(-1)], [5, MAX_ENTRIES + 4], 'the five oldest were trimmed, the newest kept');
  });

  it('gives back what was recorded, field for field', async () => {
    const { ledger: shutdowns } = ledger();
    const record: ShutdownRecord = { replica: 'blue-1', version: 'green', seconds: 0.8125, at: '2026-12-02T07:01:02.345Z' };
    await shutdowns.record(record);
    assert.deepEqual(await shutdowns.collect(), [record]);
  });

  it('takes at most COLLECT_BATCH entries a call, oldest first; an empty list gives none', async () => {
    const { redis, ledger: shutdowns } = ledger();
    const total = 2 * COLLECT_BATCH + 50;
    for (let n = 0; n < total; n += 1) await shutdowns.record(entry(n));
    const batches: number[][] = [];
    for (let call = 0; call < 4; call += 1) batches.push((await shutdowns.collect()).map(({ seconds }) => seconds));
    assert.deepEqual(batches.map((batch) => batch.length), [COLLECT_BATCH, COLLECT_BATCH, 50, 0]);
    assert.deepEqual(batches.flat(), [...Array(total).keys()], 'every entry once, in the order recorded');
    assert.ok(redis.sent.filter((command) => command[0] === 'lpop').every((command) => command[2] === COLLECT_BATCH));
  });

  describe('a malformed entry is taken off the list and dropped', () => {
    for (const [label, line] of [
      ['not JSON', '{"seconds": 1'],
      ['JSON null', 'null'],
      ['a bare number', '1.5'],
      ['an array', '[1.5]'],
      ['no seconds', JSON.stringify({ replica: 'r', version: 'blue', at: 'now' })],
      ['seconds as a string', JSON.stringify({ ...entry(1), seconds: '1.5' })],
      ['negative seconds', JSON.stringify({ ...entry(1), seconds: -0.5 })],
      // JSON cannot carry Infinity, but a number too large for a double parses to it.
      ['seconds that parse to Infinity', '{"replica":"r","version":"blue","seconds":1e999,"at":"now"}'],
      ['seconds null', JSON.stringify({ ...entry(1), seconds: null })],
    ] as const) {
      it(`${label}: the entries around it still come back`, async () => {
        const { redis, ledger: shutdowns } = ledger();
        redis.lists.set(KEY, [JSON.stringify(entry(1)), line, JSON.stringify(entry(2))]);
        assert.deepEqual(await shutdowns.collect(), [entry(1), entry(2)]);
        assert.deepEqual(redis.list(KEY), [], 'the malformed entry is gone from the list too');
      });
    }
  });

  it('keeps a drain of 0 seconds (a replica with nothing to drain)', async () => {
    const { redis, ledger: shutdowns } = ledger();
    redis.lists.set(KEY, [JSON.stringify(entry(0))]);
    assert.deepEqual(await shutdowns.collect(), [entry(0)]);
  });
});
