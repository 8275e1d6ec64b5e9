/**
 * Answers requests Node's HTTP parser rejects before any route sees them: garbage,
 * headers over Node's 16 KiB limit, headers that never finish (slowloris, cut at
 * HTTP_HEADERS_TIMEOUT_MS). Each gets its status and a JSON body, then the socket
 * is destroyed (raw-http-answer.ts); each is counted by kind. Nothing about the
 * parser reaches the client.
 */
import type { Duplex } from 'node:stream';
import type { ErrorKind, Metrics } from './metrics.js';
import { answerAndClose } from './raw-http-answer.js';

interface Answer {
  status: number;
  error: string;
  kind: ErrorKind;
}

const HEADERS_TOO_LARGE: Answer = {
  status: 431,
  error: 'headers_too_large',
  kind: 'http_headers_too_large',
};
const HEADERS_TIMEOUT: Answer = { status: 408, error: 'request_timeout', kind: 'http_headers_timeout' };
const BAD_REQUEST: Answer = { status: 400, error: 'bad_request', kind: 'http_client_error' };

function answerFor(error: Error & { code?: string }): Answer {
  if (error.code === 'HPE_HEADER_OVERFLOW') return HEADERS_TOO_LARGE;
  if (error.code === 'ERR_HTTP_REQUEST_TIMEOUT') return HEADERS_TIMEOUT;
  return BAD_REQUEST;
}

/** The http.Server 'clientError' listener. */
export function answerClientError(metrics: Metrics, error: Error & { code?: string }, socket: Duplex): void {
  const answer = answerFor(error);
  metrics.error(answer.kind);
  answerAndClose(socket, answer.status, { error: answer.error });
}
