// The browser half of scripts/test-package.mjs: a static server for a built example (with or
// without COOP/COEP) and a headless page, in any of the three engines, reporting what it computed.

import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { launchBrowser, waitForValue } from './browsers.mjs';

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
 * Opens `url` in a fresh headless `engine` (scripts/browsers.mjs) and waits for window.__result,
 * through the service worker's reload (with `waitIsolated`, until the page is cross-origin isolated
 * or reports an error). Returns the result, #result's text and the browser's `problems` (page errors,
 * failed responses, requests to other origins); with `screenshots` and `shot`, saves the viewport
 * there as `<shot>-<engine>.png`.
 */
export async function openPage(url, { engine = 'chromium', screenshots, waitIsolated = false, shot = '' }) {
  const b = await launchBrowser(engine, { width: 900, height: 500 });
  try {
    await b.goto(url);
    const result = await waitForValue(
      b,
      `window.__result && (!${waitIsolated} || self.crossOriginIsolated || window.__result.error) && window.__result`,
      120_000,
    );
    const text = await b.evaluate(`document.querySelector('#result')?.textContent ?? ''`);
    if (screenshots && shot) {
      mkdirSync(screenshots, { recursive: true });
      await b.screenshot(path.join(screenshots, `${shot}-${engine}.png`));
    }
    return { result, text, problems: await b.problems() };
  } finally {
    await b.close();
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const ENGINE_NAME = { chromium: /^Chrome \d+$/, firefox: /^Firefox \d+$/, webkit: /^WebKitGTK$/ };

/**
 * The example read the digit as a 7 with Node's score to the bit (`node`, for the build it ran), with no page
 * error and nothing loaded from elsewhere, and its runtime says truthfully what it got: threads
 * where the page is isolated (WebKitGTK has no SharedArrayBuffer at all: one thread, saying so).
 */
export function expectDigit(r, { engine, isolated, node }) {
  assert(r.result && !r.result.error, `page error: ${r.result?.error}`);
  assert(r.problems.length === 0, r.problems.join('; '));
  assert(r.result.label === '7', `read the digit as ${r.result.label}`);
  const rt = r.result.runtime;
  assert(ENGINE_NAME[engine].test(rt.engine), `runtime.engine is ${rt.engine}`);
  assert(r.result.score === node, `score ${r.result.score}, Node's (${rt.simd} build) ${node}`);
  if (isolated && engine !== 'webkit')
    assert(
      // a pool over shared memory (the digit model's default is one worker: loadModel's autoThreads)
      rt.workers && rt.sharedMemory && rt.crossOriginIsolated && rt.fallback === null,
      `expected threads: ${JSON.stringify(rt)}`,
    );
  else {
    const why = isolated ? 'this browser has no SharedArrayBuffer' : 'the page is not cross-origin isolated';
    assert(
      !rt.workers && rt.threads === 1 && rt.simd === 'simd' && rt.fallback.startsWith(why),
      `expected the one-thread fallback (${why}): ${JSON.stringify(rt)}`,
    );
    assert(r.text.includes(`threads are off because ${why}`), `page text: ${r.text}`);
  }
}

/**
 * Vite's dev server for the installed example in `dir` on a free port; resolves once it prints its
 * "Local: http://127.0.0.1:PORT/" line (or rejects with its output), to its URL and a stop().
 */
export async function startViteDev(dir) {
  const port = await new Promise((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
  const child = spawn(
    process.execPath,
    ['node_modules/vite/bin/vite.js', '--host', '127.0.0.1', '--port', String(port), '--strictPort'],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  await new Promise((resolve, reject) => {
    // (Vite colours its output when CI is set: the port is matched with the colour codes removed)
    const onData = (d) => {
      output += d;
      // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI colour codes start with ESC
      if (output.replace(/\x1b\[[0-9;]*m/g, '').includes(`:${port}/`)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`the dev server exited (${code}):\n${output}`)));
    setTimeout(() => reject(new Error(`the dev server printed no start line within 60 s:\n${output}`)), 60_000).unref();
  }).catch((e) => {
    process.kill(-child.pid, 'SIGTERM');
    throw e;
  });
  return { url: `http://127.0.0.1:${port}/`, stop: () => process.kill(-child.pid, 'SIGTERM') };
}
