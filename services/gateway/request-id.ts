/**
 * Request ids: taken from the proxy's X-Request-Id (Nginx's $request_id) when it
 * looks like one, so a line in the Nginx log and the replica's lines share it;
 * generated otherwise. Anything else in the header is ignored rather than echoed
 * into logs.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { flattened } from './flat-string.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdFrom(headers: IncomingHttpHeaders): string {
  const header = headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : flattened(randomUUID());
}
