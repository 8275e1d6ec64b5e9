/**
 * For the unit tier: reading a replica's own registry, and capturing what a module
 * writes to a socket that is a PassThrough stream instead of a TCP connection.
 */
import { PassThrough } from 'node:stream';
import type { Metrics } from '../../services/gateway/metrics.js';

/** The value of one series of `name` in the registry (undefined when absent). */
export async function metricValue(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const values = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.find((value) => Object.entries(labels).every(([key, wanted]) => value.labels[key] === wanted))?.value;
}

/** Runs `write` on a fresh socket; resolves once it closes with the status line, header lines and body written, and the socket. */
export async function rawAnswer(write: (socket: PassThrough) => void): Promise<{ status: string; headers: string[]; body: string; socket: PassThrough }> {
  const socket = new PassThrough();
  const written: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => written.push(chunk));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  write(socket);
  await closed;
  const [head = '', body = ''] = Buffer.concat(written).toString().split('\r\n\r\n');
  const [status = '', ...headers] = head.split('\r\n');
  return { status, headers, body, socket };
}
