/**
 * A complete HTTP response written straight to a socket that no express route
 * owns (a refused upgrade, a request Node's parser rejected): status, JSON body,
 * `Connection: close`, then the socket is destroyed once the response is flushed.
 * end() alone would only half-close it, and a client that never closes its side
 * would keep it open for as long as it likes. A socket that can no longer be
 * written to is destroyed at once.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

export function answerAndClose(socket: Duplex, status: number, body: object, headers: Record<string, string> = {}): void {
  if (!socket.writable) return void socket.destroy();
  const json = JSON.stringify(body);
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}`,
    'Connection: close',
    'Content-Type: application/json',
    `Content-Length: ${Buffer.byteLength(json)}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  socket.once('finish', () => socket.destroy());
  socket.end(`${lines.join('\r\n')}\r\n\r\n${json}`);
}
