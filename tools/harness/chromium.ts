/**
 * Debian's Chromium as the browser tests and tools/demo/record.ts drive it through
 * playwright-core: CHROMIUM_PATH or /usr/bin/chromium (no browser is ever downloaded),
 * with the flags that keep it off the network.
 */
import { accessSync, constants } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Flags that keep Chromium from reaching for the network on a closed machine (it hangs otherwise). */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Throws, naming how to install it, when there is no Chromium at CHROMIUM. */
export function requireChromium(): void {
  try {
    accessSync(CHROMIUM, constants.X_OK);
  } catch {
    throw new Error(`no Chromium at ${CHROMIUM}: install Debian's package (apt-get install chromium; .ci/run does) or set CHROMIUM_PATH`);
  }
}
