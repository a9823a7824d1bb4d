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
  opts: { viewport?: { width: number; height: number }; serviceWorkers?: 'allow' | 'block' } = {},
): Promise<BrowserContext> {
  const profile = mkdtempSync(path.join(tmpdir(), 'vit-wasm-chromium-'));
  const context = await launch(profile, opts);
  // the profile (a few MB) goes with the browser
  context.on('close', () => rmSync(profile, { recursive: true, force: true, maxRetries: 3 }));
  return context;
}
