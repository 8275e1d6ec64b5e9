/** The answers to requests Node's HTTP parser refuses, on PassThrough sockets. */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { answerClientError } from '../../services/gateway/http-client-error.js';
import { Metrics } from '../../services/gateway/metrics.js';
import { metricValue, rawAnswer } from '../support/in-process.js';

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
