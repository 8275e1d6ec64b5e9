/**
 * Round-trip latency: measured on a plain connection, and summarised by percentile
 * (the fault tests compare latency before and after a fault; the release tests report it).
 */
import WebSocket from 'ws';
import { randomSessionId } from '../../shared/protocol/session-id.js';
import { textOf } from '../../tools/harness/clients.js';

/** p-th percentile (0-100) of `values`, nearest rank; NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** Milliseconds of each of `n` sequential round trips on one new plain connection. */
export async function roundTrips(wsUrl: string, n: number): Promise<number[]> {
  const ws = new WebSocket(`${wsUrl}?session=${randomSessionId()}`);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let answered: (() => void) | undefined;
  let failed: ((error: Error) => void) | undefined;
  ws.on('message', (data) => {
    if (textOf(data).startsWith('{"count":')) answered?.();
  });
  ws.on('close', (code) => failed?.(new Error(`closed with ${code} during a round trip`)));
  const times: number[] = [];
  try {
    for (let i = 0; i < n; i += 1) {
      const started = performance.now();
      await new Promise<void>((resolve, reject) => {
        answered = resolve;
        failed = reject;
        ws.send('ping');
      });
      times.push(performance.now() - started);
    }
  } finally {
    ws.close();
  }
  return times;
}
