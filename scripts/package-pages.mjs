// The browser half of scripts/test-package.mjs: a static server for a built example (with or
// without COOP/COEP) and a headless Chromium page that reports what the example computed.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { launchChromium } from './chromium.mjs';

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.png': 'image/png',
  '.css': 'text/css',
};

/** A static file server for `dir`; `isolated` adds COOP/COEP. Resolves to its origin and a stop function. */
export async function serve(dir, isolated) {
  const server = createServer((req, res) => {
    const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    let file = path.join(dir, rel);
    if (!file.startsWith(dir)) {
      res.writeHead(403).end();
      return;
    }
    if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const headers = {
      'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream',
      'cache-control': 'no-store',
    };
    if (isolated)
      Object.assign(headers, {
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
    res.writeHead(200, headers).end(readFileSync(file));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { origin: `http://127.0.0.1:${server.address().port}`, stop: () => new Promise((r) => server.close(r)) };
}

/**
 * Opens `url` in a fresh headless Chromium (its profile under `work`) and waits for window.__result,
 * through the service worker's reload. Collects page errors, failed responses and requests to other
 * origins as `problems`; with `screenshots` and `shot`, saves a full-page screenshot there.
 */
export async function openPage(url, { work, screenshots, waitIsolated = false, shot = '' }) {
  const context = await launchChromium(mkdtempSync(path.join(work, 'chromium-')));
  const origin = new URL(url).origin,
    problems = [],
    logs = [];
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    context.on('request', (req) => {
      const u = req.url();
      if (!u.startsWith(origin) && !/^(data|blob):/.test(u)) problems.push(`request left the local server: ${u}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    context.on('response', (res) => {
      if (res.status() >= 400) problems.push(`HTTP ${res.status()} for ${res.url()}`);
    });
    page.on('console', (m) => {
      logs.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
    });
    await page.goto(url);
    let result;
    for (let tries = 0; tries < 60 && !result; tries++) {
      try {
        await page.waitForFunction(
          (iso) => window.__result && (!iso || self.crossOriginIsolated || window.__result.error),
          waitIsolated,
          { timeout: 60_000 },
        );
        result = await page.evaluate(() => window.__result);
      } catch (e) {
        if (!/context was destroyed|navigation/i.test(e.message)) throw e; // the service worker's reload: wait again
      }
    }
    const text = await page.textContent('#result');
    if (screenshots && shot) {
      mkdirSync(screenshots, { recursive: true });
      await page.screenshot({ path: path.join(screenshots, `${shot}.png`), fullPage: true });
    }
    return { result, text, problems, logs };
  } finally {
    await context.close();
  }
}
