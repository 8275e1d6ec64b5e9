import assert from 'node:assert/strict';
import { parseServerFrame } from '../../shared/protocol/messages.js';
import { HeartbeatScanner, scanCount } from '../../tools/loadtest/frame-prefix.js';

const bytes = (text: string): Buffer => Buffer.from(text);

describe("the load test's frame fast path (tools/loadtest/frame-prefix.ts)", () => {
  it('reads the count of a canonical count frame, as the full decoder does', () => {
    for (const count of [0, 1, 9, 10, 12345, 999_999_999_999_999]) {
      const text = JSON.stringify({ count });
      assert.equal(scanCount(bytes(text)), count);
      assert.deepEqual(parseServerFrame(text), { type: 'count', count });
    }
  });

  const notCounts = ['{"count":}', '{"count":01}', '{"count":-1}', '{"count":1.5}', '{"count":1 }', '{"count":1,"x":2}', '{"count":"1"}', '{"count":1', 'count:1}', '{"ts":"x"}', '{"count":1234567890123456}'];
  for (const text of notCounts) {
    it(`leaves ${text} to the full decoder`, () => assert.equal(scanCount(bytes(text)), -1));
  }

  it('recognises a heartbeat, decodes each tick once and gives every socket the same string', () => {
    const scanner = new HeartbeatScanner();
    const ts = '2026-12-02T13:03:34.000Z';
    const first = scanner.scan(bytes(JSON.stringify({ ts })));
    assert.equal(first, ts);
    assert.equal(scanner.lastTickAt, Date.parse(ts));
    const again = scanner.scan(bytes(JSON.stringify({ ts })));
    assert.equal(again, first);
    const next = '2026-12-02T13:03:36.000Z';
    assert.equal(scanner.scan(bytes(JSON.stringify({ ts: next }))), next);
    assert.equal(scanner.lastTickAt, Date.parse(next));
  });

  const notHeartbeats = ['{"ts":"2026-12-02T13:03:34.000Z","x":1}', '{"ts":"2026-12-02T13:03:34.00Z"}', '{"count":1}', '{"ts":2026120213033400000000000}', '{"tz":"2026-12-02T13:03:34.000Z"}'];
  for (const text of notHeartbeats) {
    it(`does not take ${text} for a heartbeat`, () => assert.equal(new HeartbeatScanner().scan(bytes(text)), undefined));
  }

  it('gives a heartbeat whose ts is no date an instant of NaN (so it records no fan-out)', () => {
    const scanner = new HeartbeatScanner();
    assert.equal(scanner.scan(bytes('{"ts":"xxxxxxxxxxxxxxxxxxxxxxxx"}')), 'xxxxxxxxxxxxxxxxxxxxxxxx');
    assert.ok(Number.isNaN(scanner.lastTickAt));
  });
});
