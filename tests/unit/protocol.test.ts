import assert from 'node:assert/strict';
import { CLOSE, isPrivateCode, isPrivateReconnectCode } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';

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
});
