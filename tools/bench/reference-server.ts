/**
 * The ceiling to compare the product against: the same plain-WebSocket counting
 * protocol with nothing else. Raw `ws`, a counter in memory per connection, no Redis,
 * no sessions, no heartbeat, no metrics, no drain.
 *
 *   node dist/tools/bench/reference-server.js [PORT]        (default 8900, 127.0.0.1; 0: any free port)
 *   node dist/tools/loadtest.js --reference ...       (forks it and runs the same scenario against it)
 *
 * When forked with an IPC channel (by the load test) it reports its port once
 * listening, and answers {type: 'sample'} with its memory, CPU and open sockets.
 */
import { WebSocketServer } from 'ws';
import type { ReferenceMessage } from './loadtest-protocol.js';

const port = Number(process.argv[2] ?? 8900);
let connections = 0;
const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws/chat/', perMessageDeflate: false, clientTracking: false });
server.on('connection', (ws) => {
  let count = 0;
  connections += 1;
  ws.on('message', () => {
    count += 1;
    ws.send(`{"count":${count}}`);
  });
  ws.on('close', () => (connections -= 1));
  ws.on('error', () => ws.terminate());
});

const report = (message: ReferenceMessage): void => void process.send?.(message);
server.on('listening', () => {
  const { port: listening } = server.address() as { port: number };
  process.stdout.write(`reference server on ws://127.0.0.1:${listening}/ws/chat/\n`);
  report({ type: 'listening', port: listening });
});
process.on('message', (message: { type: string }) => {
  if (message.type !== 'sample') return;
  const { user, system } = process.cpuUsage();
  report({ type: 'sample', processes: 1, rssBytes: process.memoryUsage.rss(), cpuSeconds: (user + system) / 1e6, connections });
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
