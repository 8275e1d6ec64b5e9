/**
 * The live page (GET /): one ChatClient on this origin's /ws/chat/, its session kept
 * in localStorage so a reload resumes the count, and a log of everything the client
 * sees, a release included (bye, close, back-off, reconnect, colour change).
 * No framework: a handful of elements found by id, text set with textContent only.
 */
import { ChatClient, ChatClientError, type ChatClientState } from '../../../shared/client/chat-client.js';
import { isValidSessionId, randomSessionId } from '../../../shared/protocol/session-id.js';

const SESSION_KEY = 'wschat.session';
const LOG_LIMIT = 300;
/** How often the live colour is asked for while connected (and once after every open). */
const COLOUR_POLL_MS = 5000;

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`the page has no #${id}`);
  return found;
}

const ui = {
  state: element('state', HTMLElement),
  colour: element('colour', HTMLElement),
  session: element('session', HTMLElement),
  count: element('count', HTMLOutputElement),
  heartbeats: element('heartbeats', HTMLElement),
  connect: element('connect', HTMLButtonElement),
  disconnect: element('disconnect', HTMLButtonElement),
  newSession: element('new-session', HTMLButtonElement),
  form: element('send-form', HTMLFormElement),
  message: element('message', HTMLInputElement),
  log: element('log', HTMLOListElement),
  clearLog: element('clear-log', HTMLButtonElement),
};

type LogKind = 'info' | 'send' | 'count' | 'heartbeat' | 'bye' | 'close' | 'reconnecting' | 'open' | 'colour' | 'error';

function log(kind: LogKind, text: string): void {
  const item = document.createElement('li');
  item.dataset.kind = kind;
  const time = document.createElement('time');
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = `${now.toTimeString().slice(0, 8)}.${String(now.getMilliseconds()).padStart(3, '0')}`;
  const label = document.createElement('span');
  label.className = 'kind';
  label.textContent = kind;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  item.append(time, label, body);
  const atBottom = ui.log.scrollTop + ui.log.clientHeight >= ui.log.scrollHeight - 4;
  ui.log.append(item);
  while (ui.log.childElementCount > LOG_LIMIT) ui.log.firstElementChild?.remove();
  if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}

/** The stored session, or a new one (stored) when there is none or it is not a valid id. */
function storedSession(): string {
  let session: string | null = null;
  try {
    session = localStorage.getItem(SESSION_KEY);
  } catch {
    // Storage may be disabled: the session then lasts as long as the page.
  }
  if (isValidSessionId(session)) return session;
  const fresh = randomSessionId();
  try {
    localStorage.setItem(SESSION_KEY, fresh);
  } catch {
    // As above.
  }
  return fresh;
}

const STATE_TEXT: Record<ChatClientState, string> = {
  idle: 'not connected',
  connecting: 'connecting…',
  open: 'connected',
  waiting: 'reconnecting…',
  closed: 'disconnected',
};

function showState(state: ChatClientState, detail?: string): void {
  ui.state.dataset.state = state;
  ui.state.textContent = detail ?? STATE_TEXT[state];
  const active = state !== 'idle' && state !== 'closed';
  ui.connect.disabled = active;
  ui.disconnect.disabled = !active;
}

let colour: string | undefined;
let colourTimer: ReturnType<typeof setInterval> | undefined;

/** Asks /version which colour answers now; logs a change. */
async function refreshColour(): Promise<void> {
  try {
    const response = await fetch('/version', { cache: 'no-store' });
    const body = (await response.json()) as { version?: unknown };
    if (typeof body.version !== 'string') return;
    if (colour !== undefined && colour !== body.version) log('colour', `colour changed: ${colour} → ${body.version}`);
    else if (colour === undefined) log('colour', `colour answering: ${body.version}`);
    colour = body.version;
    ui.colour.dataset.colour = colour;
    ui.colour.textContent = colour;
  } catch {
    // A release or a restart in progress: the next poll or open asks again.
  }
}

let heartbeatCount = 0;
let client: ChatClient;

function createClient(sessionId: string): ChatClient {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const next = new ChatClient({ url: `${scheme}//${location.host}/ws/chat/`, WebSocket, sessionId });
  ui.session.textContent = next.sessionId;
  next.on('open', ({ connection, resent }) => {
    showState('open');
    const what = connection === 1 ? 'connected' : `reconnected (connection ${connection})`;
    log('open', `${what}, session ${next.sessionId.slice(0, 8)}…${resent > 0 ? `, re-sent ${resent} message(s) that got no count` : ''}`);
    void refreshColour();
  });
  next.on('count', ({ count, text }) => {
    ui.count.value = String(count);
    log('count', text === undefined ? `count ${count}` : `count ${count} ← ${JSON.stringify(text)}`);
  });
  next.on('heartbeat', ({ ts }) => {
    heartbeatCount += 1;
    ui.heartbeats.textContent = `${heartbeatCount} received, last ${ts}`;
    log('heartbeat', `heartbeat ${ts}`);
  });
  next.on('bye', ({ total }) => log('bye', `server says bye (total ${total}): this replica is closing`));
  next.on('close', ({ code, reason, wasOpen, willReconnect, delayMs, unanswered }) => {
    const what = wasOpen ? `closed ${code}${reason === '' ? '' : ` "${reason}"`}` : `could not connect (${code})`;
    if (willReconnect) {
      const resend = unanswered > 0 ? `; ${unanswered} message(s) without a count will be re-sent` : '';
      showState('waiting', `reconnecting in ${delayMs} ms`);
      log('close', `${what}: reconnecting in ${delayMs} ms${resend}`);
    } else {
      showState('closed');
      log('close', `${what}: not reconnecting`);
    }
  });
  next.on('reconnecting', ({ attempt }) => {
    showState('connecting');
    log('reconnecting', `reconnecting (attempt ${attempt})`);
  });
  next.on('unknown', ({ text }) => log('error', `unexpected frame: ${text}`));
  return next;
}

function connect(): void {
  showState('connecting');
  log('info', `connecting to ${location.host}/ws/chat/`);
  client.connect().catch((error: unknown) => log('error', describe(error)));
  clearInterval(colourTimer);
  colourTimer = setInterval(() => void refreshColour(), COLOUR_POLL_MS);
}

async function disconnect(): Promise<void> {
  clearInterval(colourTimer);
  await client.close();
}

function describe(error: unknown): string {
  if (error instanceof ChatClientError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

ui.connect.addEventListener('click', connect);
ui.disconnect.addEventListener('click', () => void disconnect());
ui.newSession.addEventListener('click', () => {
  void (async () => {
    const wasActive = client.state !== 'idle' && client.state !== 'closed';
    await disconnect();
    const fresh = randomSessionId();
    try {
      localStorage.setItem(SESSION_KEY, fresh);
    } catch {
      // Storage disabled: the new session lasts as long as the page.
    }
    client = createClient(fresh);
    ui.count.value = '–';
    log('info', `new session ${fresh.slice(0, 8)}…: counting starts again at 1`);
    if (wasActive) connect();
    else showState('idle');
  })();
});
ui.form.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.message.value;
  if (text === '') return;
  log('send', `send ${JSON.stringify(text)}`);
  client.send(text).catch((error: unknown) => log('error', `${JSON.stringify(text)} got no count: ${describe(error)}`));
  ui.message.select();
});
ui.clearLog.addEventListener('click', () => ui.log.replaceChildren());

client = createClient(storedSession());
connect();
