/**
 * The checks tools/k8s/k8s-promote.sh runs inside the cluster, through the Services, from
 * a one-shot pod of the new colour's image. The compiled file is streamed to
 * `node --input-type=module - MODE COLOUR ACTIVE_URL PREVIEW_URL` on that pod's stdin,
 * so it may import only what the image has: Node's built-ins and `ws`.
 *
 *   smoke COLOUR  before the flip: PREVIEW_URL is ready and answers COLOUR at /version
 *                 on fresh connections (so on several pods), and a session started on
 *                 ACTIVE_URL (the live colour) carries on counting there: both colours
 *                 share the session store.
 *   live COLOUR   after the flip: ACTIVE_URL answers COLOUR five times in a row, on
 *                 fresh connections, within 30 s.
 *
 * Prints "check: ok" and exits 0, or prints the reason and exits 1.
 */
import WebSocket from 'ws';

const REPLY_TIMEOUT_MS = 5000;
const FLIP_TIMEOUT_MS = 30_000;
const FRESH_CONNECTIONS = 6;

interface Chat {
  session: string;
  counts: number[];
}

function fail(reason: string): never {
  process.stdout.write(`check failed: ${reason}\n`);
  process.exit(1);
}

/** GET on a connection of its own, so that consecutive calls can reach different pods. */
async function get(url: string): Promise<{ status: number; body: string }> {
  const response = await fetch(url, { headers: { connection: 'close' }, signal: AbortSignal.timeout(REPLY_TIMEOUT_MS) });
  return { status: response.status, body: await response.text() };
}

async function versionOf(baseUrl: string): Promise<string> {
  const { status, body } = await get(`${baseUrl}/version`);
  const parsed: unknown = JSON.parse(body);
  const version = typeof parsed === 'object' && parsed !== null && 'version' in parsed ? parsed.version : undefined;
  if (status !== 200 || typeof version !== 'string') fail(`${baseUrl}/version answered ${status} ${body}`);
  return version;
}

/** Sends `messages` texts on /ws/chat/ (resuming `session` if given) and collects their counts. */
function chat(baseUrl: string, session: string | undefined, messages: number): Promise<Chat> {
  const url = new URL('/ws/chat/', baseUrl.replace(/^http/, 'ws'));
  if (session !== undefined) url.searchParams.set('session', session);
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const counts: number[] = [];
    let id = session ?? '';
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`${url.href}: ${counts.length} of ${messages} counts within ${REPLY_TIMEOUT_MS} ms`));
    }, REPLY_TIMEOUT_MS);
    socket.on('upgrade', (response) => {
      const header = response.headers['x-session-id'];
      if (typeof header === 'string') id = header;
    });
    socket.on('open', () => {
      for (let i = 1; i <= messages; i++) socket.send(`k8s check ${i}`);
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary || !Buffer.isBuffer(data)) return;
      const frame: unknown = JSON.parse(data.toString('utf8'));
      // Heartbeats ({"ts": ...}) may arrive at any time: only counts are collected.
      if (typeof frame !== 'object' || frame === null || !('count' in frame) || typeof frame.count !== 'number') return;
      counts.push(frame.count);
      if (counts.length === messages) {
        clearTimeout(timer);
        socket.close();
        resolve({ session: id, counts });
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    // After a resolve this rejects nothing: a promise settles once.
    socket.on('close', (code, reason) => {
      clearTimeout(timer);
      reject(new Error(`${url.href} closed with ${code} ${reason.toString()} after ${counts.length} of ${messages} counts`));
    });
  });
}

async function smoke(colour: string, activeUrl: string, previewUrl: string): Promise<void> {
  const ready = await get(`${previewUrl}/readyz`);
  if (ready.status !== 200) fail(`${previewUrl}/readyz answered ${ready.status} ${ready.body}`);
  for (let i = 0; i < FRESH_CONNECTIONS; i++) {
    const version = await versionOf(previewUrl);
    if (version !== colour) fail(`${previewUrl}/version answered ${version}, expected ${colour}`);
  }
  const started = await chat(activeUrl, undefined, 2);
  if (started.session === '' || started.counts.join() !== '1,2') fail(`a new session on ${activeUrl} counted ${started.counts.join()}`);
  const resumed = await chat(previewUrl, started.session, 1);
  if (resumed.counts.join() !== '3') fail(`the session resumed on ${previewUrl} counted ${resumed.counts.join()}, expected 3`);
}

async function live(colour: string, activeUrl: string): Promise<void> {
  const deadline = Date.now() + FLIP_TIMEOUT_MS;
  let inARow = 0;
  let last = '';
  while (inARow < 5) {
    if (Date.now() > deadline) fail(`${activeUrl}/version still answers ${last}, not ${colour}`);
    last = await versionOf(activeUrl);
    inARow = last === colour ? inARow + 1 : 0;
    if (inARow === 0) await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function main(): Promise<void> {
  const [mode, colour, activeUrl, previewUrl] = process.argv.slice(2);
  if (colour === undefined || activeUrl === undefined || previewUrl === undefined) {
    fail('usage: MODE COLOUR ACTIVE_URL PREVIEW_URL');
  }
  if (mode === 'smoke') await smoke(colour, activeUrl, previewUrl);
  else if (mode === 'live') await live(colour, activeUrl);
  else fail(`unknown mode ${mode}`);
  process.stdout.write('check: ok\n');
}

main().catch((error: unknown) => fail(error instanceof Error ? error.message : String(error)));
