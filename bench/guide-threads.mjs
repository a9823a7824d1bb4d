// The guide's threads panel in each engine: serves the guide (vit-wasm guide), presses "Compare
// thread counts" and prints the panel's medians (ms per forward of the bundled MNIST model at 1, 2 …
// workers) and whether the bits agreed; a screenshot of the panel per engine goes to OUT.
//   node bench/guide-threads.mjs [ENGINES] [OUT]   (after npm run build; ENGINES as in
//   bench/browser-threads.mjs; OUT defaults to /tmp/vit-wasm-guide-threads)
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ENGINES, launchBrowser, waitForValue } from '../scripts/browsers.mjs';

const engines = (process.argv[2] ?? ENGINES.join(',')).split(',');
const OUT = process.argv[3] ?? '/tmp/vit-wasm-guide-threads';
mkdirSync(OUT, { recursive: true });
const ROOT = path.resolve(new URL('..', import.meta.url).pathname);
const port = 20000 + Math.floor(Math.random() * 20000);
const server = spawn(process.execPath, [path.join(ROOT, 'bin/vit-wasm.js'), 'guide', '--port', String(port)], {
  stdio: 'ignore',
});
try {
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; ; i++) {
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    if (i > 100) throw new Error('guide-threads.mjs: the guide server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const engine of engines) {
    const b = await launchBrowser(engine);
    try {
      await b.goto(url);
      await waitForValue(b, 'window.__guide && window.__guide.probabilities', 120000);
      await b.evaluate("document.querySelector('#run-threads').click(), true");
      // without shared memory the panel says threads are off, and sets no result
      const t = await waitForValue(
        b,
        "window.__threads || (/^Threads are off/.test(document.querySelector('#thread-result').textContent) && { note: document.querySelector('#thread-result').textContent })",
        300000,
      );
      await b.evaluate("document.querySelector('#thread-chart').scrollIntoView({ block: 'center' }), true");
      await b.screenshot(path.join(OUT, `${engine}-threads.png`));
      const runtime = await b.evaluate('document.querySelector("#runtime")?.textContent ?? ""');
      const rows = (t.rows ?? []).map((r) => `${r.threads}: ${r.ms.toFixed(2)} ms`).join('   ');
      console.log(`${b.name.padEnd(8)} ${rows || t.note || JSON.stringify(t)}   same bits: ${t.same}   ${runtime}`);
    } finally {
      await b.close();
    }
  }
} finally {
  server.kill();
}
