// The three engines Debian ships, headless, behind one small interface for bench probes and tests:
// Chromium through playwright-core (scripts/chromium.mjs), Firefox ESR through puppeteer-core's
// WebDriver BiDi (Firefox ≥ 129 speaks it natively; playwright needs its own patched Firefox), and
// WebKitGTK's MiniBrowser through WebKitWebDriver (classic WebDriver, via the `webdriver` client) on a
// private Xvfb display, since MiniBrowser has no headless mode. Each launch gets a fresh profile.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { CHROMIUM, launchChromium } from './chromium.mjs';

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
 * Every resource the page loaded from another origin than its own (data: and blob: aside), read from
 * its Resource Timing entries: the one check of "no request left the local server" that works in all
 * three engines (WebKit's classic WebDriver reports no network events). Workers' own fetches are not in
 * the page's timeline; Chromium and Firefox also report those through the driver.
 */
const FOREIGN_RESOURCES = `performance.getEntriesByType('resource').map((e) => e.name)
  .filter((u) => !/^(data|blob):/.test(u) && new URL(u).origin !== location.origin)`;

/**
 * A playwright (Chromium) or puppeteer (Firefox) page behind the common interface: the two share
 * page.goto, page.evaluate, page.screenshot, page.mouse and the page's events, which `note` records.
 */
function pageDriver(name, page, note) {
  page.on('request', (r) => note.request(r.url()));
  page.on('response', (r) => r.status() >= 400 && note.problem(`HTTP ${r.status()} for ${r.url()}`));
  page.on('pageerror', (e) => note.problem(`page error: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && note.problem(`console error: ${m.text()}`));
  return {
    name,
    // a page that reloads itself while loading (coi-serviceworker.js, on its first visit) aborts the
    // first navigation: not an error, the reloaded page is what the caller then polls
    goto: (url) =>
      page.goto(url).catch((e) => {
        if (!/NS_BINDING_ABORTED|ERR_ABORTED|interrupted by another navigation/.test(e.message)) throw e;
      }),
    evaluate: (expr) => page.evaluate(`(async () => (${expr}))()`),
    screenshot: (file) => page.screenshot({ path: file }),
    drag: async ([first, ...rest]) => {
      await page.mouse.move(...first);
      await page.mouse.down();
      for (const p of rest) await page.mouse.move(...p);
      await page.mouse.up();
    },
  };
}

async function startChromium(profile, { width, height }, cleanup, note) {
  const ctx = await launchChromium(profile, { viewport: { width, height } });
  cleanup.push(() => ctx.close());
  return pageDriver('Chromium', ctx.pages()[0] ?? (await ctx.newPage()), note);
}

async function startFirefox(profile, { width, height }, cleanup, note) {
  const { default: puppeteer } = await import('puppeteer-core');
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: FIREFOX,
    headless: true,
    userDataDir: profile,
    defaultViewport: { width, height },
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
  return pageDriver('Firefox', (await browser.pages())[0] ?? (await browser.newPage()), note);
}

/** MiniBrowser through WebKitWebDriver on a private Xvfb display (it has no headless mode). */
async function startWebKit(_profile, { width, height }, cleanup) {
  process.env.WDIO_LOG_LEVEL ??= 'error'; // its loggers read this when first imported
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
  await client.setWindowRect(0, 0, width, height);
  const at = ([x, y]) => ({ type: 'pointerMove', x: Math.round(x), y: Math.round(y), origin: 'viewport' });
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
    drag: async ([first, ...rest]) => {
      const actions = [
        at(first),
        { type: 'pointerDown', button: 0 },
        ...rest.map(at),
        { type: 'pointerUp', button: 0 },
      ];
      await client.performActions([{ type: 'pointer', id: 'mouse', parameters: { pointerType: 'mouse' }, actions }]);
      await client.releaseActions();
    },
  };
}

const START = { chromium: startChromium, firefox: startFirefox, webkit: startWebKit };

/**
 * Starts `engine` headless on a fresh profile, its viewport (WebKit: its window) `width` × `height`.
 * Returns { name, goto(url), evaluate(expr), screenshot(file), drag(points), problems(), close() }:
 * `evaluate` takes an expression's source and resolves to its (JSON-able, awaited) value;
 * `screenshot` writes the viewport as a PNG; `drag` presses the mouse at the first [x, y] (viewport
 * pixels), moves through the others and releases; `problems` resolves to what went wrong so far —
 * page errors, console errors, HTTP errors and requests to other origins as Chromium and Firefox
 * report them, and in every engine the page's resources from another origin.
 */
export async function launchBrowser(engine, { width = 1100, height = 900 } = {}) {
  if (!START[engine]) throw new Error(`browsers.mjs: no engine "${engine}" (one of ${ENGINES.join(', ')})`);
  const profile = mkdtempSync(path.join(os.tmpdir(), `vit-wasm-${engine}-`));
  const cleanup = [() => rmSync(profile, { recursive: true, force: true })];
  const close = async () => {
    for (const f of cleanup.reverse()) await Promise.resolve(f()).catch(() => {});
  };
  const seen = [];
  let origin = '';
  const note = {
    problem: (p) => seen.push(p),
    request: (u) => {
      if (origin && !u.startsWith(origin) && !/^(data|blob):/.test(u)) seen.push(`request left the local server: ${u}`);
    },
  };
  try {
    const b = await START[engine](profile, { width, height }, cleanup, note);
    return {
      ...b,
      goto: (url) => {
        origin = new URL(url).origin;
        return b.goto(url);
      },
      problems: async () => [
        ...seen,
        ...((await b.evaluate(FOREIGN_RESOURCES).catch(() => [])) ?? []).map((u) => `loaded from another origin: ${u}`),
      ],
      close,
    };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * The engines this machine can run, for tests: all three where their binaries are installed. In CI
 * (env CI set) a missing browser throws, naming the Debian package .ci/run should have installed;
 * elsewhere the engine is left out with a warning.
 */
export function enginesHere() {
  return ENGINES.filter((engine) => {
    const need = { chromium: [CHROMIUM], firefox: [FIREFOX], webkit: [WEBKIT_DRIVER, MINIBROWSER, '/usr/bin/Xvfb'] }[
      engine
    ];
    const missing = need.filter((f) => !existsSync(f));
    const pkgs = { chromium: 'chromium', firefox: 'firefox-esr', webkit: 'webkit2gtk-driver and xvfb' }[engine];
    if (missing.length && process.env.CI)
      throw new Error(`${missing.join(', ')} missing: .ci/run should have installed ${pkgs}`);
    if (missing.length) console.warn(`${engine} skipped: no ${missing.join(', ')} (apt-get install -y ${pkgs})`);
    return !missing.length;
  });
}

/** Polls `expr` in the page until it is truthy (every 200 ms, up to `ms`), then returns its value. */
export function waitForValue(b, expr, ms) {
  return until(() => b.evaluate(expr), ms, `${expr} in ${b.name}`);
}
