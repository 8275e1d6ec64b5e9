import assert from 'node:assert/strict';
import { CLOSE, isPrivateCode, isPrivateReconnectCode } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';
import { parseServerFrame, toServerFrame } from '../../shared/protocol/messages.js';

describe('protocol', () => {
  describe('session ids', () => {
    it('accepts canonical lowercase version 4 uuids and the ids it generates', () => {
      assert.ok(isValidSessionId('3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c'));
      for (let i = 0; i < 100; i += 1) assert.ok(isValidSessionId(randomSessionId()));
    });

    const refused: Array<[string, unknown]> = [
      ['uppercase', '3F2A9C1E-7B4D-4E8A-9C3B-1D2E3F4A5B6C'],
      ['braces', '{3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c}'],
      ['no dashes', '3f2a9c1e7b4d4e8a9c3b1d2e3f4a5b6c'],
      ['nil uuid', '00000000-0000-0000-0000-000000000000'],
      ['version 1 (a clock and a node, guessable)', '00000000-0000-1000-8000-000000000000'],
      ['version 7 (a timestamp in its first 48 bits)', '017f22e2-79b0-7cc3-98c4-dc0c0c07398f'],
      ['bad variant', '3f2a9c1e-7b4d-4e8a-1c3b-1d2e3f4a5b6c'],
      ['trailing newline', '3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c\n'],
      ['huge', 'a'.repeat(100_000)],
      ['empty', ''],
      ['array', ['3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c']],
      ['number', 42],
    ];
    it('builds a version 4 uuid from getRandomValues where crypto.randomUUID is missing (a browser on plain http)', () => {
      Object.defineProperty(crypto, 'randomUUID', { value: undefined, configurable: true });
      try {
        const ids = Array.from({ length: 50 }, () => randomSessionId());
        for (const id of ids) assert.ok(isValidSessionId(id), id);
        assert.equal(new Set(ids).size, ids.length, 'a new id each time');
      } finally {
        Reflect.deleteProperty(crypto, 'randomUUID');
      }
      assert.equal(typeof crypto.randomUUID, 'function', 'the platform method is back');
    });

    for (const [name, value] of refused) {
      it(`refuses ${name}`, () => assert.equal(isValidSessionId(value), false));
    }
  });

  describe('close codes', () => {
    it('asks clients to reconnect only after a drain or a store outage', () => {
      const reconnecting = Object.values(CLOSE).filter((close) => close.reconnect).map((close) => close.code);
      assert.deepEqual(reconnecting.sort(), [1001, 1013]);
    });

    it('pins every code on the wire: RFC 6455 where it defines the case, one private code per other reason', () => {
      // Clients branch on these numbers: renumbering one is a protocol change, not a refactor.
      const codes = Object.fromEntries(Object.entries(CLOSE).map(([name, close]) => [name, close.code]));
      assert.deepEqual(codes, {
        shuttingDown: 1001,
        invalidSession: 4500,
        binaryFrame: 1003,
        messageTooBig: 1009,
        tooManyFragments: 4504,
        invalidUtf8: 1007,
        protocolError: 1002,
        tooManyInflight: 4501,
        rateLimited: 4502,
        slowConsumer: 4503,
        sessionTaken: 4505,
        invalidResume: 4506,
        sessionPerConnection: 4507,
        storeUnavailable: 1013,
      });
    });

    it('gives each reason its own code and its own error kind', () => {
      const closes = Object.values(CLOSE);
      assert.equal(new Set(closes.map((close) => close.code)).size, closes.length, 'codes');
      assert.equal(new Set(closes.map((close) => close.kind)).size, closes.length, 'kinds');
    });

    it('puts each private code in the half of 4000-4999 that says whether to reconnect', () => {
      for (const close of Object.values(CLOSE).filter((close) => isPrivateCode(close.code))) {
        assert.equal(isPrivateReconnectCode(close.code), close.reconnect, `${close.code} ${close.reason}`);
      }
      assert.deepEqual([3999, 4000, 4499, 4500, 4999, 5000].map(isPrivateCode), [false, true, true, true, true, false]);
      assert.deepEqual([3999, 4000, 4499, 4500, 4999, 5000].map(isPrivateReconnectCode), [false, true, true, false, false, false]);
    });
  });

  describe('server frames', () => {
    it('decodes a count, a heartbeat and a bye', () => {
      assert.deepEqual(parseServerFrame('{"count":0}'), { type: 'count', count: 0 });
      assert.deepEqual(parseServerFrame('{"count":42}'), { type: 'count', count: 42 });
      assert.deepEqual(parseServerFrame('{"ts":"2023-11-14T22:13:20.000Z"}'), { type: 'heartbeat', ts: '2023-11-14T22:13:20.000Z' });
      assert.deepEqual(parseServerFrame('{"bye":true,"total":0}'), { type: 'bye', total: 0 });
      assert.deepEqual(parseServerFrame('{"bye":true,"total":7}'), { type: 'bye', total: 7 });
      assert.deepEqual(toServerFrame({ count: 3, replay: true }), { type: 'count', count: 3 }, 'socket.io delivers it decoded');
    });

    it('takes a count or a total only as a whole number from 0 to 2^53 - 1', () => {
      for (const count of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN, Number.POSITIVE_INFINITY, '3', null, true]) {
        assert.equal(toServerFrame({ count }).type, 'unknown', `count ${String(count)}`);
        assert.equal(toServerFrame({ bye: true, total: count }).type, 'unknown', `total ${String(count)}`);
      }
      assert.deepEqual(toServerFrame({ count: Number.MAX_SAFE_INTEGER }), { type: 'count', count: Number.MAX_SAFE_INTEGER });
    });

    it('takes a heartbeat only with a string ts, and a bye only with bye: true', () => {
      assert.equal(toServerFrame({ ts: 1_700_000_000_000 }).type, 'unknown');
      assert.equal(toServerFrame({ bye: 'true', total: 3 }).type, 'unknown');
      assert.equal(toServerFrame({ bye: false, total: 3 }).type, 'unknown');
      assert.equal(toServerFrame({ total: 3 }).type, 'unknown');
    });

    it('keeps the text of anything else, and never throws', () => {
      assert.deepEqual(parseServerFrame('not json'), { type: 'unknown', text: 'not json' });
      assert.deepEqual(parseServerFrame('{"hello":1}'), { type: 'unknown', text: '{"hello":1}' });
      assert.deepEqual(parseServerFrame('null'), { type: 'unknown', text: 'null' });
      assert.deepEqual(toServerFrame({ hello: 1 }), { type: 'unknown', text: '{"hello":1}' });
      assert.deepEqual(toServerFrame(undefined), { type: 'unknown', text: 'undefined' });
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      assert.deepEqual(toServerFrame(circular), { type: 'unknown', text: '[object Object]' });
    });
  });
});
