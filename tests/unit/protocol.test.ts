import assert from 'node:assert/strict';
import { CLOSE } from '../../shared/protocol/closes.js';
import { isValidSessionId, randomSessionId } from '../../shared/protocol/session-id.js';

describe('protocol', () => {
  describe('session ids', () => {
    it('accepts canonical lowercase uuids and the ids it generates', () => {
      assert.ok(isValidSessionId('3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c'));
      assert.ok(isValidSessionId('017f22e2-79b0-7cc3-98c4-dc0c0c07398f'), 'uuid v7');
      for (let i = 0; i < 100; i += 1) assert.ok(isValidSessionId(randomSessionId()));
    });

    const refused: Array<[string, unknown]> = [
      ['uppercase', '3F2A9C1E-7B4D-4E8A-9C3B-1D2E3F4A5B6C'],
      ['braces', '{3f2a9c1e-7b4d-4e8a-9c3b-1d2e3f4a5b6c}'],
      ['no dashes', '3f2a9c1e7b4d4e8a9c3b1d2e3f4a5b6c'],
      ['nil uuid', '00000000-0000-0000-0000-000000000000'],
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
  });
});
