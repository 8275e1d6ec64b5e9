/**
 * The replica's small policies, in-process: the message rate limit (its clock
 * injected), the origin check, and the answers to requests Node's HTTP parser refuses.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { answerClientError } from '../../services/gateway/http-client-error.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { originAllowed } from '../../services/gateway/origin-policy.js';
import { FULL_BUCKET, takeToken } from '../../services/gateway/token-bucket.js';
import { metricValue, rawAnswer } from '../support/in-process.js';

/** A bucket as a connection keeps it (one number), taken from at the instants a test gives. */
function bucket(perSecond: number, burst: number): (now: number) => boolean {
  let fullAt = FULL_BUCKET;
  return (now) => {
    const next = takeToken(fullAt, now, perSecond, burst);
    if (next === undefined) return false;
    fullAt = next;
    return true;
  };
}

describe('token bucket (MAX_MESSAGES_PER_SECOND)', () => {
  it('allows a full burst at once, then refuses until time refills a token', () => {
    const take = bucket(10, 3);
    assert.deepEqual([take(0), take(0), take(0), take(0)], [true, true, true, false]);
    assert.equal(take(99), false, '0.99 of a token after 99 ms at 10/s');
    assert.equal(take(100), true, 'one token after 100 ms');
    assert.equal(take(100), false);
  });

  it('never holds more than its burst, however long the connection was idle', () => {
    const take = bucket(10, 2);
    const taken = [1, 2, 3].map(() => take(3_600_000));
    assert.deepEqual(taken, [true, true, false]);
  });

  it('sustains exactly the rate: 50 messages at 100/s over 0.5 s after the burst is spent', () => {
    const take = bucket(100, 1);
    assert.equal(take(0), true);
    const accepted = Array.from({ length: 100 }, (_, index) => take((index + 1) * 5)).filter(Boolean).length;
    assert.equal(accepted, 50);
  });

  it('refills continuously: a part-spent burst gets back what the elapsed time gave, never more than the burst', () => {
    const take = bucket(10, 4);
    assert.deepEqual([take(0), take(0), take(0)], [true, true, true], 'one token left');
    // 250 ms later: 1 + 2.5 tokens, so three messages pass and the fourth does not.
    assert.deepEqual([take(250), take(250), take(250), take(250)], [true, true, true, false]);
    // A refusal takes nothing: 50 ms later the half token left has become one.
    assert.equal(take(300), true);
  });
});

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

describe('answers to requests the HTTP parser refuses', () => {
  const errors = (metrics: Metrics, kind: string): Promise<number | undefined> => metricValue(metrics, 'wschat_errors_total', { kind });

  for (const [code, status, error, kind] of [
    ['HPE_HEADER_OVERFLOW', '431 Request Header Fields Too Large', 'headers_too_large', 'http_headers_too_large'],
    ['ERR_HTTP_REQUEST_TIMEOUT', '408 Request Timeout', 'request_timeout', 'http_headers_timeout'],
    ['HPE_INVALID_METHOD', '400 Bad Request', 'bad_request', 'http_client_error'],
    [undefined, '400 Bad Request', 'bad_request', 'http_client_error'],
  ] as const) {
    it(`${code ?? 'an error without a code'}: ${status} with a JSON body, counted as ${kind}, socket destroyed`, async () => {
      const metrics = new Metrics();
      const parseError = Object.assign(new Error('parse error'), code === undefined ? {} : { code });
      const answer = await rawAnswer((socket) => answerClientError(metrics, parseError, socket));
      assert.equal(answer.status, `HTTP/1.1 ${status}`);
      assert.ok(answer.headers.includes('Content-Type: application/json'), answer.headers.join('\n'));
      assert.ok(answer.headers.includes(`Content-Length: ${Buffer.byteLength(answer.body)}`), answer.headers.join('\n'));
      assert.ok(answer.headers.includes('Connection: close'), answer.headers.join('\n'));
      assert.deepEqual(JSON.parse(answer.body), { error });
      assert.equal(answer.socket.destroyed, true);
      assert.equal(await errors(metrics, kind), 1);
    });
  }

  it('destroys a socket it can no longer write to, and still counts the error', async () => {
    const metrics = new Metrics();
    const socket = new PassThrough();
    socket.end();
    answerClientError(metrics, Object.assign(new Error('parse error'), { code: 'HPE_HEADER_OVERFLOW' }), socket);
    assert.equal(socket.destroyed, true);
    assert.equal(await errors(metrics, 'http_headers_too_large'), 1);
  });
});
