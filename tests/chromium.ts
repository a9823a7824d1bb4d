// Debian's Chromium, headless, for the browser tests: a fresh profile per launch (playwright passes
// it as --user-data-dir) and the flags that keep it from reaching the network by itself.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { CHROMIUM, launchChromium as launch } from '../scripts/chromium.mjs';

export { CHROMIUM };

/** Whether the browser tests can run; in CI a missing Chromium is an error (.ci/run installs it). */
export function haveChromium(): boolean {
  const have = existsSync(CHROMIUM);
  if (!have && process.env.CI) throw new Error(`${CHROMIUM} is missing: .ci/run should have installed it`);
  if (!have) console.warn(`browser tests skipped: no ${CHROMIUM} (apt-get install -y chromium)`);
  return have;
}

export async function launchChromium(
  opts: { viewport?: { width: number; height: number }; serviceWorkers?: 'allow' | 'block'; args?: string[] } = {},
): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(tmpdir(), 'vit-wasm-chromium-'));
  const context = await launch(profile, opts);
  // The profile (a few MB) goes with the browser: once close() has resolved, Chromium has exited
  // (its 'close' event comes earlier, while Chromium may still write there). Retried, and not an
  // error if it still fails: a leftover temp folder must not fail a browser test.
  const close = context.close.bind(context);
  context.close = async (...args: Parameters<BrowserContext['close']>) => {
    await close(...args);
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (e) {
      console.warn(`could not remove the Chromium profile ${profile}: ${(e as Error).message}`);
    }
  };
  return context;
}
