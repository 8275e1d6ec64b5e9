// The Compose promotion's smoke check, run inside each new replica container
// (`node -e`, cwd /app, so `ws` resolves from the image's node_modules): the replica
// itself, not Nginx, answers /readyz and /version, and counts a message on /ws/chat/.
// Prints one line per check; exits 1 on the first that fails.
const WebSocket = require('ws');
const colour = process.argv[1];
const base = 'http://127.0.0.1:' + (process.env.PORT || 8000);

function check(name, ok, detail) {
  console.log((ok ? 'ok   ' : 'FAIL ') + name + ': ' + detail);
  if (!ok) process.exit(1);
}

async function main() {
  const ready = await fetch(base + '/readyz', { signal: AbortSignal.timeout(2000) });
  check('readyz', ready.status === 200, ready.status + ' ' + (await ready.text()));
  const version = await (await fetch(base + '/version', { signal: AbortSignal.timeout(2000) })).text();
  check('version', version === JSON.stringify({ version: colour }), version);
  const reply = await new Promise((resolve, reject) => {
    const socket = new WebSocket(base.replace('http', 'ws') + '/ws/chat/');
    const timer = setTimeout(() => reject(new Error('no reply in 3 s')), 3000);
    socket.on('open', () => socket.send('smoke'));
    socket.on('message', (data) => {
      clearTimeout(timer);
      socket.close(1000);
      resolve(String(data));
    });
    socket.on('error', reject);
  });
  check('count', reply === '{"count":1}', reply);
}

main().catch((error) => check('smoke', false, error.message));
