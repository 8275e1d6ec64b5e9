/**
 * The ceiling to compare the product against: the same plain-WebSocket counting
 * protocol with nothing else. Raw `ws`, a counter in memory per connection, no Redis,
 * no sessions, no heartbeat, no metrics, no drain.
 *
 *   node dist/tools/reference-server.js [PORT]        (default 8900, 127.0.0.1)
 *   node dist/tools/loadtest.js --url http://127.0.0.1:8900 --heartbeat-ms 0 --socketio 0 ...
 */
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 8900);
const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/ws/chat/', perMessageDeflate: false, clientTracking: false });
server.on('connection', (ws) => {
  let count = 0;
  ws.on('message', () => {
    count += 1;
    ws.send(`{"count":${count}}`);
  });
  ws.on('error', () => ws.terminate());
});
server.on('listening', () => process.stdout.write(`reference server on ws://127.0.0.1:${port}/ws/chat/\n`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
