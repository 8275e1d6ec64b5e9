/**
 * Films the walkthrough of docs/demo.md against a running native stack: headless
 * Chromium (playwright-core, as tests/stack/page.e2e.test.ts drives it) on the page, which
 * keeps sending while tools/promote.sh releases the other colour, then Prometheus's own
 * graph of the message rate. Every frame is a screenshot taken with the DevTools
 * Protocol (Page.captureScreenshot), laid out with its caption by a second page, and
 * written as DIR/frame-NNN.png with DIR/frames.txt, an ffmpeg concat list that says how
 * long each frame shows (tools/demo.sh stitches them).
 *
 *   node dist/tools/demo/record.js DIR
 *
 * Reads DEMO_STACK_URL (the page through Nginx), DEMO_PROMETHEUS_URL and DEMO_ACTIVE_COLOUR_URL
 * (Nginx's internal /active-colour); promote.sh runs with this process's environment
 * (RUN_DIR and the stack's ports). Fails, with what it saw, when the counts the page
 * received are not 1..N in order or the colour does not change.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type CDPSession, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, requireChromium } from '../harness/chromium.js';
import { eventually, sleep } from '../harness/processes.js';
import { repoRoot } from '../harness/repo-root.js';

const FRAME_WIDTH = 900;
const FRAME_HEIGHT = 650;
const HEADER_HEIGHT = 72;
/** How often the page sends while the film runs: slow enough that a release's lines stay readable in its log. */
const SEND_INTERVAL_MS = 700;
/** How much faster than it was filmed the page plays (the pauses between its screenshots shortened as much). */
const SPEED = 2;
/** The rate Prometheus's graph shows, by colour (the colour is a target label of the replicas). */
const RATE_EXPR = 'sum by (colour) (rate(wschat_messages_total{job="wschat"}[20s]))';

function setting(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is not set (tools/demo.sh sets it)`);
  return value;
}

function say(text: string): void {
  process.stderr.write(`demo: ${text}\n`);
}

interface Caption {
  title: string;
  subtitle: string;
}

/**
 * The page every frame is laid out in: a caption bar, then the screenshots, stacked and
 * centred, and a terminal over the right half of the first when there is output to
 * show (the newest lines: the older ones scroll off its top).
 */
const LAYOUT = `<!doctype html><html><head><style>
  * { box-sizing: border-box; }
  body { margin: 0; width: ${FRAME_WIDTH}px; height: ${FRAME_HEIGHT}px; overflow: hidden; background: #f6f8fa;
         font-family: 'DejaVu Sans', sans-serif; position: relative; }
  header { height: ${HEADER_HEIGHT}px; background: #0f172a; color: #f8fafc; padding: 12px 18px; position: relative; }
  #title { font-size: 21px; font-weight: bold; white-space: nowrap; }
  #subtitle { font-size: 14px; color: #cbd5e1; margin-top: 6px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 660px; }
  #badge { position: absolute; right: 18px; top: 18px; font: 14px 'DejaVu Sans Mono', monospace; padding: 8px 12px;
           border-radius: 6px; background: #334155; color: #f8fafc; }
  #badge[data-colour="blue"] { background: #1d4ed8; }
  #badge[data-colour="green"] { background: #15803d; }
  #shots { height: ${FRAME_HEIGHT - HEADER_HEIGHT}px; display: flex; flex-direction: column; align-items: center;
           justify-content: flex-start; gap: 6px; overflow: hidden; }
  #shots img { display: block; flex: none; }
  #term { position: absolute; right: 8px; top: ${HEADER_HEIGHT + 8}px; width: 452px; max-height: 216px; margin: 0; padding: 10px 12px;
          background: rgba(15, 23, 42, 0.95); border-radius: 8px; color: #e2e8f0; font: 12px/1.45 'DejaVu Sans Mono', monospace;
          white-space: pre-wrap; overflow: hidden; display: flex; flex-direction: column; justify-content: flex-end; }
  #term[hidden] { display: none; }
  #card { position: absolute; inset: 0; background: #0f172a; color: #f8fafc; display: flex; flex-direction: column;
          justify-content: center; padding: 0 64px; }
  #card h1 { font-size: 40px; margin: 0 0 18px; }
  #card p { font-size: 19px; line-height: 1.5; color: #cbd5e1; margin: 0; white-space: pre-line; }
  #card[hidden] { display: none; }
</style></head><body>
  <header><div id="title"></div><div id="subtitle"></div><div id="badge"></div></header>
  <div id="shots"></div>
  <div id="term" hidden><div id="term-text"></div></div>
  <div id="card" hidden><h1></h1><p></p></div>
  <script>
    // render(FrameContent): lays out one frame; resolves once its screenshots are decoded.
    async function render(frame) {
      const byId = (id) => document.getElementById(id);
      byId('title').textContent = frame.caption.title;
      byId('subtitle').textContent = frame.caption.subtitle;
      const badge = byId('badge');
      badge.textContent = frame.colour === undefined ? '' : '/active-colour: ' + frame.colour;
      badge.dataset.colour = frame.colour ?? '';
      badge.hidden = frame.colour === undefined;
      byId('term').hidden = frame.terminal === undefined;
      byId('term-text').textContent = (frame.terminal ?? []).join('\\n');
      const card = byId('card');
      card.hidden = frame.card === undefined;
      card.querySelector('h1').textContent = frame.card?.heading ?? '';
      card.querySelector('p').textContent = frame.card?.text ?? '';
      const images = (frame.shots ?? []).map((shot) => {
        const image = new Image();
        image.src = 'data:image/png;base64,' + shot.png;
        image.width = shot.width;
        return image;
      });
      await Promise.all(images.map((image) => image.decode()));
      byId('shots').replaceChildren(...images);
    }
  </script>
</body></html>`;

/** A screenshot (PNG, base64) and the width it shows at in the frame. */
interface Shot {
  png: string;
  width: number;
}

interface FrameContent {
  caption: Caption;
  /** The live colour as /active-colour says it, for the badge. */
  colour?: string;
  /** Screenshots under the caption, top to bottom. */
  shots?: Shot[];
  /** Lines for the terminal. */
  terminal?: string[];
  /** A title card instead of screenshots. */
  card?: { heading: string; text: string };
}

/** The frames written so far and how long each shows, as ffmpeg's concat demuxer reads them. */
class Film {
  private readonly frames: Array<{ file: string; seconds: number }> = [];

  constructor(
    private readonly dir: string,
    private readonly layout: Page,
    private readonly layoutCdp: CDPSession,
  ) {}

  async add(content: FrameContent, seconds: number): Promise<void> {
    await this.layout.evaluate(`render(${JSON.stringify(content)})`);
    const { data } = await this.layoutCdp.send('Page.captureScreenshot', {
      format: 'png',
      clip: { x: 0, y: 0, width: FRAME_WIDTH, height: FRAME_HEIGHT, scale: 1 },
    });
    const file = `frame-${String(this.frames.length).padStart(3, '0')}.png`;
    writeFileSync(path.join(this.dir, file), Buffer.from(data, 'base64'));
    this.frames.push({ file, seconds });
  }

  /** Sets how long the last frame shows (a frame's duration is known only once the next is due). */
  hold(seconds: number): void {
    const last = this.frames.at(-1);
    if (last !== undefined) last.seconds = seconds;
  }

  get count(): number {
    return this.frames.length;
  }

  get seconds(): number {
    return this.frames.reduce((sum, frame) => sum + frame.seconds, 0);
  }

  /** frames.txt; the last frame is named twice, as the concat demuxer needs for its duration to count. */
  writeList(): void {
    const lines = ['ffconcat version 1.0'];
    for (const { file, seconds } of this.frames) lines.push(`file ${file}`, `duration ${seconds.toFixed(3)}`);
    const last = this.frames.at(-1);
    if (last !== undefined) lines.push(`file ${last.file}`);
    writeFileSync(path.join(this.dir, 'frames.txt'), `${lines.join('\n')}\n`);
  }
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** The box, in page coordinates, from the top of FROM to the bottom of TO (CSS selectors of `page`). */
async function boxOf(page: Page, from: string, to: string): Promise<Box> {
  return page.evaluate<Box>(`(() => {
    const top = document.querySelector(${JSON.stringify(from)}).getBoundingClientRect();
    const bottom = document.querySelector(${JSON.stringify(to)}).getBoundingClientRect();
    const scrolled = document.documentElement.scrollTop;
    return { x: top.x, y: top.y + scrolled, width: top.width, height: bottom.bottom - top.y };
  })()`);
}

/** A screenshot of `box`, through the DevTools Protocol, at `scale`. */
async function shotOf(cdp: CDPSession, box: Box, scale: number): Promise<Shot> {
  const { data } = await cdp.send('Page.captureScreenshot', {
    format: 'png',
    clip: { ...box, scale },
  });
  return { png: data, width: Math.round(box.width * scale) };
}

/**
 * The page in two screenshots at the frame's width: its panels down to the last count
 * (state, live colour, session, count; the message being typed), and the log of what
 * happens, whose newest lines the frame keeps.
 */
async function pageShots(page: Page, cdp: CDPSession): Promise<Shot[]> {
  const panels = await boxOf(page, 'main', 'dl.facts > div:nth-child(4)');
  const scale = FRAME_WIDTH / panels.width;
  const log = await boxOf(page, '#log', '#log');
  return [await shotOf(cdp, { ...panels, height: panels.height + 4 }, scale), await shotOf(cdp, log, scale)];
}

/** Prometheus's graph page from its expression to the graph's legend, scaled to fit under the caption. */
async function graphShot(page: Page, cdp: CDPSession): Promise<Shot> {
  const box = await boxOf(page, 'textarea.expression_input', '.legend');
  const margin = 8;
  const padded = { x: box.x - margin, y: box.y - margin, width: box.width + 2 * margin, height: box.height + 2 * margin };
  return shotOf(cdp, padded, Math.min(FRAME_WIDTH / padded.width, (FRAME_HEIGHT - HEADER_HEIGHT) / padded.height));
}

async function activeColour(url: string): Promise<string> {
  const response = await fetch(url, { headers: { connection: 'close' } });
  return ((await response.json()) as { colour: string }).colour;
}

/** The sum of the message rate per colour Prometheus has now (empty until it has scraped enough). */
async function rateByColour(prometheusUrl: string): Promise<Map<string, number>> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?query=${encodeURIComponent(RATE_EXPR)}`);
  const body = (await response.json()) as { data?: { result?: Array<{ metric: Record<string, string>; value: [number, string] }> } };
  return new Map((body.data?.result ?? []).map(({ metric, value }) => [metric.colour ?? '?', Number(value[1])]));
}

/** The page's sender: one message every SEND_INTERVAL_MS, typed and sent with Enter, until stopped. */
class Sender {
  sent = 0;
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(private readonly page: Page) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.sent += 1;
      await this.page.fill('#message', `message ${this.sent}`);
      await this.page.press('#message', 'Enter');
      await sleep(SEND_INTERVAL_MS);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error('usage: node dist/tools/demo/record.js DIR');
  const stackUrl = setting('DEMO_STACK_URL');
  const prometheusUrl = setting('DEMO_PROMETHEUS_URL');
  const activeColourUrl = setting('DEMO_ACTIVE_COLOUR_URL');
  mkdirSync(dir, { recursive: true });
  requireChromium();

  let browser: Browser | undefined;
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_FLAGS, timeout: 30_000 });
    const context = await browser.newContext({ viewport: { width: 1000, height: 1100 } });
    const layout = await context.newPage();
    await layout.setViewportSize({ width: FRAME_WIDTH, height: FRAME_HEIGHT });
    await layout.setContent(LAYOUT);
    const film = new Film(dir, layout, await context.newCDPSession(layout));

    const page = await context.newPage();
    const pageCdp = await context.newCDPSession(page);
    const counts: number[] = [];
    page.on('websocket', (socket) => {
      socket.on('framereceived', ({ payload }) => {
        if (typeof payload !== 'string') return;
        try {
          const count = (JSON.parse(payload) as { count?: unknown }).count;
          if (typeof count === 'number') counts.push(count);
        } catch {
          // Not JSON: not a count.
        }
      });
    });

    await film.add(
      {
        caption: { title: 'wschat', subtitle: 'a Redis-backed WebSocket tier behind Nginx, two colours' },
        card: {
          heading: 'A release under traffic',
          text: `The page counts every message it sends.\nmake promote moves it from blue to green while it keeps sending.\nThe count carries on; Prometheus shows the traffic move.\n(Played at ${SPEED}× the speed it was filmed at.)`,
        },
      },
      3.5,
    );

    say(`opening ${stackUrl}/`);
    await page.goto(`${stackUrl}/`);
    await page.waitForSelector('#state[data-state="open"]', { timeout: 15_000 });
    await eventually(async () => (await page.textContent('#colour')) === 'blue', 'the colour blue on the page', 10_000, 50);
    const sender = new Sender(page);

    // Scene 1: the page counting.
    const counting: Caption = { title: '1 · The page counts', subtitle: 'every message gets its session’s count back, kept in Redis; the live colour is blue' };
    // A live frame shows until the next is taken, at SPEED times the pace it was filmed at;
    // the first of a scene leaves the frame before it (held on purpose) as it is.
    let last: number | undefined;
    const capture = async (caption: Caption, terminal?: string[]): Promise<void> => {
      const colour = await activeColour(activeColourUrl);
      const shots = await pageShots(page, pageCdp);
      if (last !== undefined) film.hold((Date.now() - last) / 1000 / SPEED);
      last = Date.now();
      await film.add({ caption, colour, shots, ...(terminal === undefined ? {} : { terminal }) }, 1);
    };
    for (let index = 0; index < 10; index += 1) {
      await capture(counting);
      await sleep(300);
    }
    film.hold(1.5);
    last = undefined;

    // Prometheus needs a few scrapes of blue traffic before the release, for the graph to show the move.
    say('waiting for Prometheus to see the blue traffic');
    await eventually(async () => ((await rateByColour(prometheusUrl)).get('blue') ?? 0) > 0.5, 'a blue message rate in Prometheus', 60_000, 1000);
    await sleep(10_000);

    // Scene 2: make promote while the page keeps sending.
    say('running tools/promote.sh');
    const output: string[] = [];
    let partial = '';
    promotion = spawn('bash', [path.join(repoRoot, 'tools/promote.sh')], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const onOutput = (chunk: Buffer): void => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      output.push(...lines.filter((line) => line.trim() !== ''));
    };
    promotion.stdout!.on('data', onOutput);
    promotion.stderr!.on('data', onOutput);
    const exited = new Promise<number | null>((resolve) => promotion!.once('exit', resolve));
    let exitCode: number | null | undefined;
    void exited.then((code) => (exitCode = code));
    const promoting: Caption = { title: '2 · make promote, while the page keeps sending', subtitle: 'green is built, started and smoke-tested; Nginx flips to it; blue says bye and exits' };
    const terminal = (): string[] => ['$ tools/promote.sh', ...output.slice(-12)];
    while (exitCode === undefined) {
      await capture(promoting, terminal());
      await sleep(200);
    }
    await capture(promoting, terminal());
    film.hold(3);
    last = undefined;
    if (exitCode !== 0) throw new Error(`tools/promote.sh exited with ${exitCode}:\n${output.join('\n')}`);

    // Scene 3: green is live and the count carries on.
    await eventually(async () => (await page.textContent('#colour')) === 'green', 'the colour green on the page', 15_000, 50);
    const carrying: Caption = { title: '3 · Green is live: the count carries on', subtitle: 'bye, reconnect through Nginx to green, same session: no count missing, none twice' };
    for (let index = 0; index < 6; index += 1) {
      await capture(carrying);
      await sleep(300);
    }
    film.hold(2.5);

    // Scene 4: Prometheus's graph of the message rate.
    say('waiting for Prometheus to see the green traffic');
    await eventually(async () => ((await rateByColour(prometheusUrl)).get('green') ?? 0) > 0.5, 'a green message rate in Prometheus', 60_000, 1000);
    const graph = await context.newPage();
    await graph.setViewportSize({ width: FRAME_WIDTH, height: 1100 });
    const graphCdp = await context.newCDPSession(graph);
    const graphUrl = `${prometheusUrl}/graph?g0.expr=${encodeURIComponent(RATE_EXPR)}&g0.tab=0&g0.stacked=0&g0.range_input=2m&g0.show_exemplars=0`;
    const metrics: Caption = { title: '4 · The metrics move with it', subtitle: `Prometheus /graph: ${RATE_EXPR}` };
    for (let index = 0; index < 4; index += 1) {
      await graph.goto(graphUrl);
      await graph.waitForSelector('.legend .line', { timeout: 15_000 });
      await sleep(500);
      const colour = await activeColour(activeColourUrl);
      await film.add({ caption: metrics, colour, shots: [await graphShot(graph, graphCdp)] }, 1.2);
      await sleep(2500);
    }
    film.hold(3);

    await sender.stop();
    await eventually(() => Promise.resolve(counts.length >= sender.sent), `${sender.sent} counts`, 15_000, 50);
    const expected = Array.from({ length: sender.sent }, (_, index) => index + 1);
    if (JSON.stringify(counts) !== JSON.stringify(expected)) {
      throw new Error(`the counts are not 1..${sender.sent} in order: ${counts.join(' ')}`);
    }
    await film.add(
      {
        caption: { title: 'wschat', subtitle: 'tools/demo.sh films this from a stack of its own: make demo' },
        card: {
          heading: `${sender.sent} messages, counts 1..${sender.sent}`,
          text: 'None missing, none twice, across the release from blue to green.\nSee docs/demo.md.',
        },
      },
      3.5,
    );
    film.writeList();
    say(`${film.count} frames, ${film.seconds.toFixed(1)} s; ${sender.sent} messages counted 1..${sender.sent}`);
  } finally {
    stopPromotion();
    await browser?.close();
  }
}

/**
 * The promotion this process started, in a process group of its own: stopped with
 * everything it started when this process ends early (an error, or tools/demo.sh's
 * SIGTERM), so that the stack's lock is free for dev-down.
 */
let promotion: ChildProcess | undefined;

function stopPromotion(): void {
  if (promotion === undefined || promotion.exitCode !== null || promotion.signalCode !== null) return;
  try {
    process.kill(-promotion.pid!, 'SIGTERM');
  } catch {
    // The group is gone already.
  }
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    stopPromotion();
    process.exit(signal === 'SIGTERM' ? 143 : 130);
  });
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
