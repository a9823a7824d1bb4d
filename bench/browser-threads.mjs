// Forward latency at 1, 2 … N threads in headless Chromium, Firefox ESR and WebKitGTK (cross-origin
// isolated, so the pool's workers run), for the bundled MNIST model and random deit-tiny-shaped
// weights, next to the count loadModel picks when none is given; Node's numbers beside them.
//   node bench/browser-threads.mjs [RUNS] [ENGINES]   (after npm run build; ENGINES: a comma list of
//   chromium, firefox, webkit — default all three; scripts/browsers.mjs says what each needs)
// The counts' runs are interleaved, so each sees the same machine state; medians and minima.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { loadModel } from '../dist/index.js';
import { PRESETS, randomModelFiles } from '../dist/presets.js';
import { ENGINES, launchBrowser, waitForValue } from '../scripts/browsers.mjs';

const RUNS = Number(process.argv[2] ?? 50);
const engines = (process.argv[3] ?? ENGINES.join(',')).split(',');
const ROOT = path.resolve(new URL('..', import.meta.url).pathname);
const deit = randomModelFiles(PRESETS['deit-tiny'], 1);
const TYPES = { '.js': 'text/javascript', '.html': 'text/html', '.json': 'application/json' };
const PAGE = `<!doctype html><script type="module">
const lib = '/dist/vit-wasm.browser.js'; // the page's own import (served below), not this script's
const { loadModel } = await import(lib);
const out = {};
for (const [name, url] of [['mnist', '/assets/mnist-vit/'], ['deit-tiny', '/deit/']]) {
  const keys = ['1', '2', 'default'], ms = [];
  out.isolated = self.crossOriginIsolated;
  for (const k of keys) ms.push(await loadModel(url, k === 'default' ? {} : { threads: Number(k) }));
  const x = new Float32Array(ms[0].inputSize).map((_, i) => Math.sin(i));
  for (const m of ms) for (let i = 0; i < 5; i++) await m.forward(x, 1);
  const t = keys.map(() => []);
  // interleaved: every count sees the same machine state
  for (let i = 0; i < ${RUNS}; i++) for (const [j, m] of ms.entries()) { const t0 = performance.now(); await m.forward(x, 1); t[j].push(performance.now() - t0); }
  const row = {};
  keys.forEach((k, j) => { t[j].sort((a, b) => a - b); row[k] = { threads: ms[j].threads, median: t[j][t[j].length >> 1], min: t[j][0] }; });
  for (const m of ms) await m.dispose();
  out[name] = row;
}
window.__result = out;
</script>`;
const server = createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const headers = { 'cross-origin-opener-policy': 'same-origin', 'cross-origin-embedder-policy': 'require-corp' };
  if (url.pathname === '/') return void res.writeHead(200, { ...headers, 'content-type': 'text/html' }).end(PAGE);
  if (url.pathname.startsWith('/deit/')) {
    const f = deit[url.pathname.slice(6)];
    if (f === undefined) return void res.writeHead(404).end();
    return void res.writeHead(200, headers).end(typeof f === 'string' ? f : Buffer.from(f));
  }
  const file = path.join(ROOT, url.pathname);
  if (!file.startsWith(ROOT)) return void res.writeHead(404).end();
  try {
    const body = readFileSync(file);
    res
      .writeHead(200, { ...headers, 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' })
      .end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const results = [];
try {
  for (const engine of engines) {
    const b = await launchBrowser(engine);
    try {
      await b.goto(`http://127.0.0.1:${server.address().port}/`);
      const r = await waitForValue(b, 'window.__result', 600000);
      if (!r.isolated) console.log(`${b.name}: not cross-origin isolated: its pool runs one thread`);
      delete r.isolated;
      results.push([b.name, r]);
    } finally {
      await b.close();
    }
  }
} finally {
  server.close();
}
// Node, the same way
const node = {};
for (const [name, where] of [
  ['mnist', path.join(ROOT, 'assets/mnist-vit')],
  ['deit-tiny', deit],
]) {
  const keys = ['1', '2', 'default'],
    ms = [];
  for (const k of keys) ms.push(await loadModel(where, k === 'default' ? {} : { threads: Number(k) }));
  const x = new Float32Array(ms[0].inputSize).map((_, i) => Math.sin(i));
  for (const m of ms) for (let i = 0; i < 5; i++) await m.forward(x, 1);
  const t = keys.map(() => []);
  for (let i = 0; i < RUNS; i++)
    for (const [j, m] of ms.entries()) {
      const t0 = performance.now();
      await m.forward(x, 1);
      t[j].push(performance.now() - t0);
    }
  const row = {};
  keys.forEach((k, j) => {
    t[j].sort((a, b) => a - b);
    row[k] = { threads: ms[j].threads, median: t[j][t[j].length >> 1], min: t[j][0] };
  });
  for (const m of ms) await m.dispose();
  node[name] = row;
}
for (const [where, r] of [...results, ['Node', node]])
  for (const [name, row] of Object.entries(r)) {
    const cells = Object.entries(row).map(
      ([k, v]) =>
        `${k === 'default' ? `default (${v.threads})` : `${k} thread${k === '1' ? '' : 's'}`}: ${v.median.toFixed(2)} ms (min ${v.min.toFixed(2)})`,
    );
    console.log(`${where.padEnd(8)} ${name.padEnd(9)} ${cells.join('   ')}`);
  }
