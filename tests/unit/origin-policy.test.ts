/** Which browser pages may open a socket (ALLOWED_ORIGINS). */
import assert from 'node:assert/strict';
import { originAllowed } from '../../services/gateway/origin-policy.js';

describe('origin policy (ALLOWED_ORIGINS)', () => {
  it('lets every client without an Origin through, under every policy', () => {
    for (const policy of [{ kind: 'same-host' }, { kind: 'any' }, { kind: 'list', origins: [] }] as const) {
      assert.equal(originAllowed(policy, { host: 'chat.example' }), true, policy.kind);
    }
  });

  it('same-host: the page served by this origin exactly (scheme, host and port); not another, not "null", not garbage', () => {
    const policy = { kind: 'same-host' } as const;
    assert.equal(originAllowed(policy, { origin: 'http://chat.example:8000', host: 'chat.example:8000' }), true);
    assert.equal(originAllowed(policy, { origin: 'https://chat.example', host: 'chat.example', 'x-forwarded-proto': 'https' }), true);
    assert.equal(originAllowed(policy, { origin: 'https://chat.example', host: 'chat.example:443', 'x-forwarded-proto': 'https' }), true, 'default port');
    assert.equal(originAllowed(policy, { origin: 'http://chat.example:9999', host: 'chat.example:8000' }), false, 'another port');
    assert.equal(originAllowed(policy, { origin: 'http://chat.example', host: 'chat.example', 'x-forwarded-proto': 'https' }), false, 'another scheme');
    assert.equal(originAllowed(policy, { origin: 'https://chat.example', host: 'chat.example' }), false, 'https page, plain handshake');
    assert.equal(originAllowed(policy, { origin: 'https://evil.example', host: 'chat.example', 'x-forwarded-proto': 'https' }), false);
    assert.equal(originAllowed(policy, { origin: 'https://chat.example.evil.example', host: 'chat.example' }), false);
    assert.equal(originAllowed(policy, { origin: 'null', host: 'chat.example' }), false);
    assert.equal(originAllowed(policy, { origin: 'not a url', host: 'chat.example' }), false);
    assert.equal(originAllowed(policy, { origin: 'https://chat.example' }), false, 'no Host to compare with');
  });

  it('any: every browser origin', () => {
    assert.equal(originAllowed({ kind: 'any' }, { origin: 'https://evil.example', host: 'chat.example' }), true);
  });

  it('list: exactly the origins named, scheme and port included', () => {
    const policy = { kind: 'list', origins: ['https://chat.example'] } as const;
    assert.equal(originAllowed(policy, { origin: 'https://chat.example' }), true);
    assert.equal(originAllowed(policy, { origin: 'http://chat.example' }), false);
    assert.equal(originAllowed(policy, { origin: 'https://chat.example:444' }), false);
  });
});
