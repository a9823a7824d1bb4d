// The same fixture model in headless Chromium: with COOP/COEP headers it runs on 2 workers over
// shared memory; without them it falls back to one thread in the page. Both must give Node's bits.
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { enginesHere, launchBrowser, waitForValue } from '../scripts/browsers.mjs';
import { loadModel } from '../src/index.js';
import { haveChromium, launchChromium } from './chromium.js';
import { FIXTURES, maxDiff, modelFixtures, readF32 } from './helpers.js';

const ROOT = path.join(FIXTURES, '../..');
const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
};
// CI installs Chromium (.ci/run); elsewhere the tests say they are skipped rather than failing a fresh machine.
const chromiumHere = haveChromium();

let server: Server,
  origin: string,
  ranges = 0;

beforeAll(async () => {
  // /coi/… is served cross-origin isolated (COOP + COEP), /plain/… without the headers.
  server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    const [, mode, ...rest] = url.pathname.split('/');
    const file = path.join(ROOT, ...rest);
    // misbehaving servers: a single-page app's index.html for every path; a body cut in half
    if (mode === 'html')
      return void res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>app</p>');
    if (mode === 'truncated' && existsSync(file)) {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, body.length >> 1));
      return void setImmediate(() => res.destroy());
    }
    if (!['coi', 'plain'].includes(mode) || !file.startsWith(ROOT) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' };
    if (mode === 'coi')
      Object.assign(headers, {
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-embedder-policy': 'require-corp',
      });
    const body = readFileSync(file);
    // The isolated page's server honours Range (the loader fetches 8 MiB windows); the plain one
    // ignores it, so the loader's fallback to one whole download is exercised too.
    const range = /^bytes=(\d+)-(\d+)$/.exec(String(req.headers.range ?? ''));
    if (range && mode === 'coi') {
      const [a, b] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
      ranges++;
      res
        .writeHead(206, { ...headers, 'content-range': `bytes ${a}-${b}/${body.length}` })
        .end(body.subarray(a, b + 1));
      return;
    }
    res.writeHead(200, headers).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

/**
 * Firefox ESR and WebKitGTK (scripts/browsers.mjs: puppeteer-core over WebDriver BiDi; WebKitWebDriver
 * and MiniBrowser on a private Xvfb): the same page, with and without COOP/COEP. In CI a browser that
 * is missing or cannot start fails the run with its error; elsewhere the engine is skipped, saying so.
 */
const OTHER_ENGINES = enginesHere().filter((e) => e !== 'chromium');

/** What a test page leaves on window.__result, in `engine` (scripts/browsers.mjs), its browser closed after. */
async function pageResult(engine: 'chromium' | 'firefox' | 'webkit', url: string): Promise<Record<string, unknown>> {
  const b = await launchBrowser(engine);
  try {
    await b.goto(url);
    return (await waitForValue(b, 'window.__result', 60000)) as Record<string, unknown>;
  } finally {
    await b.close();
  }
}

describe.each(OTHER_ENGINES)('headless %s', (engine) => {
  const f = modelFixtures().find((x) => x.name === 'h33-hf')!;
  test.each([
    ['coi', true],
    ['plain', false],
  ] as const)("%s page: Node's bits, and the runtime says truthfully what it got", async (mode, isolated) => {
    const res = await pageResult(
      engine,
      `${origin}/${mode}/tests/browser/page.html?model=${f.name}&batch=${f.batch}&threads=2`,
    );
    expect(res.error).toBeUndefined();
    const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
    expect(res.bits).toEqual(Array.from(new Uint32Array((await model.forward(f.input, f.batch)).buffer)));
    expect(res.top).toEqual(await model.classify(path.join(FIXTURES, 'images/chelsea.png'), { topK: 3 }));
    const jpegBits = res.jpegBits as Record<string, number[]>;
    for (const file of ['q75-420.jpg', 'progressive.jpg'])
      expect(jpegBits[file]).toEqual(
        Array.from(new Uint32Array((await model.pixels(path.join(FIXTURES, 'jpeg', file))).buffer)),
      );
    await model.dispose();
    // Firefox shares memory where the page is isolated; WebKitGTK has no SharedArrayBuffer at all
    const threads = engine === 'firefox' && isolated;
    const runtime = res.runtime as Record<string, unknown>;
    expect(runtime).toMatchObject({
      platform: 'browser',
      engine: engine === 'firefox' ? expect.stringMatching(/^Firefox \d+$/) : 'WebKitGTK',
      threads: threads ? 2 : 1,
      workers: threads,
      sharedMemory: threads,
      crossOriginIsolated: isolated,
      simd: 'simd',
    });
    if (threads) expect(runtime.fallback).toBeNull();
    else
      expect(runtime.fallback).toMatch(
        isolated ? /this browser has no SharedArrayBuffer/ : /^the page is not cross-origin isolated/,
      );
  });
});

describe.each(enginesHere())('zero-shot in headless %s', (engine) => {
  test.each([
    ['coi', 'CLIPModel', 'h40-clip-text'],
    ['plain', 'CLIPModel', 'h40-clip-text'],
    ['coi', 'SiglipModel', 'h40-siglip-text'],
  ] as const)("%s page: a %s's tokenizer and text tower give Node's bits and ranking", async (mode, _kind, name) => {
    const res = await pageResult(engine, `${origin}/${mode}/tests/browser/zero-shot.html?model=${name}`);
    expect(res.error).toBeUndefined();
    const runtime = res.runtime as { simd: 'simd' | 'relaxed' };
    const dir = path.join(FIXTURES, 'zero-shot', name);
    const exp = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    const model = await loadModel(dir, { threads: 1, simd: runtime.simd });
    const x = readF32(path.join(dir, 'input.f32')).subarray(0, 3 * 25 * 25);
    expect(res.textBits).toEqual(Array.from(new Uint32Array((await model.embedText(exp.prompts)).buffer)));
    expect(res.ranked).toEqual(
      await model.zeroShot(x, exp.labels, { template: ['a photo of a {}.', 'a sketch of a {}.'] }),
    );
    await model.dispose();
  });
});

/** Engines that run vit-wasm inside a page's own module worker (nested workers): Chromium and Firefox. */
const WORKER_ENGINES = [
  ...(chromiumHere ? (['chromium'] as const) : []),
  ...OTHER_ENGINES.filter((e) => e === 'firefox'),
];

describe.each(WORKER_ENGINES)("in a page's own module worker, %s", (engine) => {
  const f = modelFixtures().find((x) => x.name === 'h33-hf')!;
  test.each([
    ['coi', true],
    ['plain', false],
  ] as const)(
    "%s page: threads (nested workers) where isolated, one thread saying why where not; Node's bits",
    async (mode, isolated) => {
      const res = await pageResult(
        engine,
        `${origin}/${mode}/tests/browser/in-worker.html?model=${f.name}&batch=${f.batch}&threads=2`,
      );
      expect(res.error).toBeUndefined();
      const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
      expect(res.bits).toEqual(Array.from(new Uint32Array((await model.forward(f.input, f.batch)).buffer)));
      await model.dispose();
      expect(res.runtime).toMatchObject({
        platform: 'browser',
        threads: isolated ? 2 : 1,
        workers: isolated,
        sharedMemory: isolated,
        crossOriginIsolated: isolated,
      });
      if (!isolated) expect((res.runtime as { fallback: string }).fallback).toMatch(/not cross-origin isolated/);
    },
  );
});

describe.skipIf(!chromiumHere)('headless Chromium', () => {
  const f = modelFixtures().find((x) => x.name === 'h33-hf')!;

  async function open(url: string) {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const logs: string[] = [];
      page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
      await page.goto(url);
      await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result, null, {
        timeout: 30000,
      });
      const res = await page.evaluate(() => (window as unknown as { __result: Record<string, unknown> }).__result);
      return { res, logs };
    } finally {
      await browser.close();
    }
  }

  test.each([
    ['coi', 2, true],
    ['plain', 1, false],
  ] as const)('%s page', async (mode, wantThreads, wantIsolated) => {
    ranges = 0; // (this page's own Range requests: the other engines' pages ask too)
    const { res, logs } = await open(
      `${origin}/${mode}/tests/browser/page.html?model=${f.name}&batch=${f.batch}&threads=2`,
    );
    expect(res.error).toBeUndefined();
    expect(res.isolated).toBe(wantIsolated);
    expect(res.threads).toBe(wantThreads);
    const warnings = logs.filter((l) => l.includes('vit-wasm: threads are off'));
    expect(warnings).toHaveLength(wantIsolated ? 0 : 1);

    const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
    const node = await model.forward(f.input, f.batch);
    expect(res.bits).toEqual(Array.from(new Uint32Array(node.buffer)));
    // Range requests, not one per tensor (as before the 8 MiB read window of src/io/source.ts): per
    // open of the file, a size probe and one window that holds this small file
    if (mode === 'coi') expect(ranges).toBeGreaterThanOrEqual(2);
    if (mode === 'coi') expect(ranges).toBeLessThanOrEqual(4);
    // JPEGs decoded in the page (libjpeg-turbo in wasm) give Node's pixels, by URL and as bytes
    const jpegBits = res.jpegBits as Record<string, number[]>;
    for (const file of ['q75-420.jpg', 'progressive.jpg']) {
      const want = Array.from(new Uint32Array((await model.pixels(path.join(FIXTURES, 'jpeg', file))).buffer));
      expect(jpegBits[file]).toEqual(want);
      expect(jpegBits[`${file} bytes`]).toEqual(want);
    }
    const nodeTop = await model.classify(path.join(FIXTURES, 'images/chelsea.png'), { topK: 3 });
    expect(res.top).toEqual(nodeTop);
    await model.dispose();
    // Blob bytes go through our decoder: Node's result exactly. Elements are drawn to a canvas: same
    // labels, scores within the browser's colour handling (an untagged PNG: the same pixels here).
    const tops = res.tops as Record<string, typeof nodeTop>;
    expect(Object.keys(tops).sort()).toEqual(['bitmap', 'blob', 'canvas', 'imageData', 'img']);
    expect(tops.blob).toEqual(nodeTop);
    for (const [name, t] of Object.entries(tops)) {
      expect(
        t.map((p) => p.index),
        name,
      ).toEqual(nodeTop.map((p) => p.index));
      t.forEach((p, i) => expect(Math.abs(p.score - nodeTop[i].score), name).toBeLessThan(1e-3));
    }
    const runtime = res.runtime as Record<string, unknown>;
    expect(runtime).toMatchObject({
      platform: 'browser',
      threads: wantThreads,
      workers: wantIsolated,
      sharedMemory: wantIsolated,
      crossOriginIsolated: wantIsolated,
      simd: 'simd',
    });
    if (wantIsolated) expect(runtime.fallback).toBeNull();
    else expect(runtime.fallback).toMatch(/^the page is not cross-origin isolated: serve it with the headers/);
    expect(res.missing).toBe(
      `vit-wasm: ${origin}/${mode}/tests/fixtures/models/no-such-model/config.json: cannot fetch model file: HTTP 404 Not Found`,
    );
    const bad = res.bad as Record<string, string>;
    expect(bad.html).toBe(
      `vit-wasm: ${origin}/html/tests/fixtures/models/${f.name}/config.json: the server sent an HTML page (Content-Type text/html), not the model file: a wrong URL, or a server that answers missing files with a page`,
    );
    expect(bad.truncated).toMatch(
      new RegExp(
        `^vit-wasm: ${origin}/truncated/tests/fixtures/models/${f.name}/config\\.json: the model file download failed after [\\d,]+ of [\\d,]+ bytes`,
      ),
    );
  });

  test('workerUrl: the served worker file runs the pool (strict-CSP pages); a wrong URL is named in the error', async () => {
    const q = `model=${f.name}&batch=${f.batch}&threads=2`;
    const { res } = await open(`${origin}/coi/tests/browser/page.html?${q}&workerUrl=../../dist/worker.browser.js`);
    expect(res.error).toBeUndefined();
    expect(res.threads).toBe(2);
    const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
    expect(res.bits).toEqual(Array.from(new Uint32Array((await model.forward(f.input, f.batch)).buffer)));
    await model.dispose();
    const bad = await open(`${origin}/coi/tests/browser/page.html?${q}&workerUrl=../../dist/no-such-worker.js`);
    expect(bad.res.error).toContain(
      `vit-wasm: worker 0 failed: could not load or run ${origin}/coi/dist/no-such-worker.js`,
    );
  });

  test("data-parallel training runs in the browser: first loss equals PyTorch's, then it falls", async () => {
    const { res } = await open(`${origin}/coi/tests/browser/train.html`);
    expect(res.error).toBeUndefined();
    expect(res.threads).toBe(2);
    const losses = res.losses as number[],
      exp = JSON.parse(readFileSync(path.join(FIXTURES, 'train/t20/expected.json'), 'utf8'));
    expect(Math.abs(losses[0] - exp.loss)).toBeLessThanOrEqual(1e-4 * exp.loss);
    expect(losses[9]).toBeLessThan(losses[0]);
    expect(res.bytes).toBeGreaterThan(1000);
  });

  test('the default build in Chromium is relaxed SIMD (FMA), within the PyTorch bar', async () => {
    const { res } = await open(
      `${origin}/coi/tests/browser/page.html?model=${f.name}&batch=${f.batch}&threads=2&simd=auto`,
    );
    expect(res.error).toBeUndefined();
    expect(res.simd).toBe('relaxed');
    const { diff, scale } = maxDiff(res.logits as number[], f.logits);
    expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
  });
});
