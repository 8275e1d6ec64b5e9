/**
 * The page at GET / in a real browser: Debian's Chromium driven by playwright-core
 * (no browser download), through Nginx on the native stack. Send three messages and
 * see 1..3, reload and see the session resume at 4, run a promotion and see the
 * colour change while the count carries on. Saves a screenshot to reports/.
 *
 * Chromium is required: without it this test fails (with the command that installs
 * it) rather than skipping, so a CI machine without it cannot pass silently.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, requireChromium } from '../../tools/harness/chromium.js';
import { range } from '../../tools/harness/clients.js';
import { eventually, sleep } from '../../tools/harness/processes.js';
import { NativeStack, type ScriptRun } from '../support/stack.js';

const SCREENSHOT = 'reports/page-e2e.png';

/** The counts the page has logged, in order. */
async function loggedCounts(page: Page): Promise<number[]> {
  const texts = await page.locator('#log li[data-kind="count"] .text').allTextContents();
  return texts.map((text) => Number(/^count (\d+)/.exec(text)?.[1]));
}

async function logTexts(page: Page, kind: string): Promise<string[]> {
  return page.locator(`#log li[data-kind="${kind}"] .text`).allTextContents();
}

/** Types `text` into the message box and presses Enter, as a person would. */
async function send(page: Page, text: string): Promise<void> {
  await page.fill('#message', text);
  await page.press('#message', 'Enter');
}

async function waitForCounts(page: Page, n: number, timeoutMs = 10_000): Promise<number[]> {
  await eventually(async () => (await loggedCounts(page)).length >= n, `${n} counts on the page`, timeoutMs, 50);
  return loggedCounts(page);
}

describe('the page (GET /) in headless Chromium', function () {
  this.timeout(120_000);
  let stack: NativeStack | undefined;
  let context: BrowserContext | undefined;
  let profile: string | undefined;
  const problems: string[] = [];

  before(async () => {
    requireChromium();
    stack = await NativeStack.started({ replicas: 2, heartbeatIntervalMs: 1000 });
    profile = mkdtempSync(path.join(os.tmpdir(), 'wschat-chromium-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1100, height: 1000 },
      timeout: 30_000,
    });
  });

  after(async () => {
    await context?.close();
    if (profile !== undefined) rmSync(profile, { recursive: true, force: true });
    await stack?.destroy();
  });

  it('counts 1..3, resumes at 4 after a reload, and keeps counting across a blue/green release', async () => {
    const live = stack!;
    const page = context!.pages()[0] ?? (await context!.newPage());
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });

    const response = await page.goto(`${live.httpUrl}/`);
    assert.equal(response?.status(), 200);
    const headers = response.headers();
    assert.equal(headers['cache-control'], 'no-cache');
    assert.ok(headers.etag, 'the page has an ETag');
    assert.match(headers['content-security-policy'] ?? '', /script-src 'self'; style-src 'self'.*connect-src 'self'/);

    await page.waitForSelector('#state[data-state="open"]', { timeout: 10_000 });
    await eventually(async () => (await page.textContent('#colour')) === 'blue', 'the colour blue', 5000, 50);
    const session = (await page.textContent('#session')) ?? '';
    assert.match(session, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

    for (const text of ['one', 'two', 'three']) await send(page, text);
    assert.deepEqual(await waitForCounts(page, 3), [1, 2, 3]);
    assert.equal(await page.textContent('#count'), '3');
    await eventually(async () => (await logTexts(page, 'heartbeat')).length > 0, 'a heartbeat on the page', 5000, 50);

    // A reload resumes the session kept in localStorage.
    await page.reload();
    await page.waitForSelector('#state[data-state="open"]', { timeout: 10_000 });
    assert.equal(await page.textContent('#session'), session, 'the same session after a reload');
    await send(page, 'four');
    assert.deepEqual(await waitForCounts(page, 1), [4]);

    // A release while the page keeps sending: bye, reconnect, green, and the count goes on.
    let promotion: ScriptRun | undefined;
    const running = live.promote().then((run) => (promotion = run));
    let sent = 1;
    while (promotion === undefined) {
      await send(page, `during ${sent}`);
      sent += 1;
      await sleep(300);
    }
    await running;
    assert.equal(promotion.code, 0, promotion.output);
    await eventually(async () => (await page.textContent('#colour')) === 'green', 'the colour green on the page', 10_000, 50);
    await send(page, 'after');
    sent += 1;
    const counts = await waitForCounts(page, sent, 15_000);
    assert.deepEqual(counts, range(4, 3 + sent), 'the counts after the reload run on unbroken through the release');

    const log = async (kind: string): Promise<string> => (await logTexts(page, kind)).join('\n');
    assert.match(await log('bye'), /server says bye \(total \d+\)/);
    assert.match(await log('close'), /closed 1001 "server shutting down": reconnecting in \d+ ms/);
    assert.match(await log('open'), /reconnected \(connection 2\)/);
    assert.match(await log('colour'), /colour changed: blue → green/);
    assert.equal(await page.textContent('#session'), session, 'the same session after the release');

    mkdirSync('reports', { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    process.stdout.write(`      screenshot: ${SCREENSHOT}\n`);
    assert.deepEqual(
      problems.filter((problem) => !/WebSocket connection to .* failed/.test(problem)),
      [],
      'no script error or CSP violation in the browser',
    );
  });
});
