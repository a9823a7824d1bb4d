// The three engines Debian ships, headless, behind one small interface for bench probes and tests:
// Chromium through playwright-core (scripts/chromium.mjs), Firefox ESR through puppeteer-core's
// WebDriver BiDi (Firefox ≥ 129 speaks it natively; playwright needs its own patched Firefox), and
// WebKitGTK's MiniBrowser through WebKitWebDriver (classic WebDriver, via the `webdriver` client) on a
// private Xvfb display, since MiniBrowser has no headless mode. Each launch gets a fresh profile.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

export const ENGINES = ['chromium', 'firefox', 'webkit'];
export const FIREFOX = '/usr/bin/firefox-esr';
export const WEBKIT_DRIVER = '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

/** Polls `probe` until it returns a truthy value or `ms` pass; throws naming `what` on timeout. */
async function until(probe, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`browsers.mjs: timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `engine` headless on a fresh profile. Returns { name, goto(url), evaluate(expr),
 * screenshot(file), close() }: `evaluate` takes an expression's source and resolves to its
 * (JSON-able, awaited) value; `screenshot` writes the viewport as a PNG.
 */
export async function launchBrowser(engine) {
  const profile = mkdtempSync(path.join(os.tmpdir(), `vit-wasm-${engine}-`));
  const cleanup = [() => rmSync(profile, { recursive: true, force: true })];
  const close = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  };
  try {
    if (engine === 'chromium') {
      const ctx = await launchChromium(profile);
      cleanup.push(() => ctx.close());
      const page = await ctx.newPage();
      return {
        name: 'Chromium',
        goto: (url) => page.goto(url),
        evaluate: (expr) => page.evaluate(`(async () => (${expr}))()`),
        screenshot: (file) => page.screenshot({ path: file }),
        close,
      };
    }
    if (engine === 'firefox') {
      const { default: puppeteer } = await import('puppeteer-core');
      const browser = await puppeteer.launch({
        browser: 'firefox',
        executablePath: FIREFOX,
        headless: true,
        userDataDir: profile,
        // no network beyond 127.0.0.1: no updates, telemetry, captive-portal or remote settings
        extraPrefsFirefox: {
          'network.captive-portal-service.enabled': false,
          'network.connectivity-service.enabled': false,
          'app.update.enabled': false,
          'services.settings.server': 'http://127.0.0.1:9/',
          'toolkit.telemetry.enabled': false,
        },
      });
      cleanup.push(() => browser.close());
      const page = await browser.newPage();
      return {
        name: 'Firefox',
        goto: (url) => page.goto(url),
        evaluate: (expr) => page.evaluate(`(async () => (${expr}))()`),
        screenshot: (file) => page.screenshot({ path: file }),
        close,
      };
    }
    if (engine === 'webkit') {
      const { default: WebDriver } = await import('webdriver');
      const display = `:${100 + Math.floor(Math.random() * 800)}`;
      const xvfb = spawn('Xvfb', [display, '-nolisten', 'tcp', '-screen', '0', '1280x1024x24'], { stdio: 'ignore' });
      cleanup.push(() => xvfb.kill('SIGKILL'));
      const port = await freePort();
      const driver = spawn(WEBKIT_DRIVER, [`--port=${port}`], {
        stdio: 'ignore',
        env: { ...process.env, DISPLAY: display },
      });
      cleanup.push(() => driver.kill('SIGKILL'));
      await until(() => fetch(`http://127.0.0.1:${port}/status`).then((r) => r.ok), 10000, 'WebKitWebDriver');
      const client = await WebDriver.newSession({
        hostname: '127.0.0.1',
        port,
        logLevel: 'error',
        capabilities: { 'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] } },
      });
      cleanup.push(() => client.deleteSession());
      return {
        name: 'WebKit',
        goto: (url) => client.navigateTo(url),
        evaluate: (expr) =>
          client
            .executeAsyncScript(
              `const done = arguments[arguments.length - 1];
             (async () => (${expr}))().then((v) => done({ v }), (e) => done({ e: String(e) }));`,
              [],
            )
            .then((r) => {
              if (r.e) throw new Error(r.e);
              return r.v;
            }),
        screenshot: async (file) => writeFileSync(file, Buffer.from(await client.takeScreenshot(), 'base64')),
        close,
      };
    }
    throw new Error(`browsers.mjs: no engine "${engine}" (one of ${ENGINES.join(', ')})`);
  } catch (e) {
    await close();
    throw e;
  }
}

/** Polls `expr` in the page until it is truthy (every 200 ms, up to `ms`), then returns its value. */
export function waitForValue(b, expr, ms) {
  return until(() => b.evaluate(expr), ms, `${expr} in ${b.name}`);
}
