// The live guide (guide/, served by `vit-wasm guide`) in headless Chromium: it loads with no page
// error and no request leaving the local server; every step's picture is drawn; the probabilities
// it shows for a held-out digit equal Node's bit for bit; drawing on the pad changes the prediction;
// without COOP/COEP it runs on one thread. A screenshot of each step goes to test-results/guide/.
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encode } from 'fast-png';
import { strFromU8, unzipSync } from 'fflate';
import type { Page } from 'playwright-core';
import { afterAll, describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { haveChromium, launchChromium } from './chromium.js';
import { serveGuide as serve, stopGuides } from './guide-server.js';
import { FIXTURES } from './helpers.js';
import { tempDir } from './tmp.js';

const ROOT = path.join(FIXTURES, '../..');
const SHOTS = path.join(ROOT, 'test-results', 'guide');
/** The guide's whole download (dist/guide/, built by npm run build), in KB: the README states it. */
const BUDGET_KB = 1675;
const chromiumHere = haveChromium();

afterAll(stopGuides);

/**
 * Starts step 14's training, waits for step `n`'s status, clicks Pause, and checks the page handled
 * that click during training (not after its last step: a frozen page would) and stopped within one step.
 */
async function trainAndPause(page: Page, n: number) {
  await page.click('#train');
  await page.waitForFunction(
    (k) => (document.querySelector('#train-status')?.textContent ?? '').startsWith(`step ${k} `),
    n,
    {
      timeout: 60000,
    },
  );
  await page.click('#train'); // pause
  await page.waitForFunction(() => (window as unknown as { __training?: unknown }).__training, null, {
    timeout: 60000,
  });
  const training = await page.evaluate(() => {
    const w = window as unknown as { __training: { steps: number; losses: number[] }; __pauseClickedAt: number };
    return { ...w.__training, clickedAt: w.__pauseClickedAt };
  });
  const total = Number(/of (\d+)/.exec((await page.textContent('#train-status')) ?? '')?.[1]);
  expect(training.steps).toBeGreaterThanOrEqual(n);
  expect(training.clickedAt).toBeLessThan(total);
  expect(training.steps - training.clickedAt).toBeLessThanOrEqual(1);
  expect(await page.textContent('#train')).toBe('Resume');
  return training;
}

async function open(url: string, width = 1100, serviceWorkers: 'allow' | 'block' = 'allow', args: string[] = []) {
  const context = await launchChromium({ viewport: { width, height: 900 }, serviceWorkers, args });
  const page = context.pages()[0] ?? (await context.newPage());
  const problems: string[] = [];
  const origin = new URL(url).origin;
  context.on('request', (r) => {
    if (!r.url().startsWith(origin) && !/^(data|blob):/.test(r.url()))
      problems.push(`request left the server: ${r.url()}`);
  });
  context.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction(() => (window as unknown as { __guide?: unknown }).__guide, null, { timeout: 30000 });
  return { context, page, problems };
}

type Guide = {
  error?: string;
  probabilities: number[];
  runtime: {
    threads: number;
    workers: boolean;
    sharedMemory: boolean;
    crossOriginIsolated: boolean | null;
    simd: 'relaxed' | 'simd';
  };
  drawn: () => Record<string, boolean>;
};
const state = (page: import('playwright-core').Page) =>
  page.evaluate(() => {
    const g = (window as unknown as { __guide: Guide }).__guide;
    return { ...g, drawn: g.error ? {} : g.drawn() };
  });

test('the guide folder is within its download budget', () => {
  const dir = path.join(ROOT, 'dist/guide');
  const bytes = readdirSync(dir, { recursive: true })
    .map((f) => path.join(dir, String(f)))
    .filter((f) => statSync(f).isFile() && !f.endsWith('coi-serviceworker.js'))
    .reduce((n, f) => n + statSync(f).size, 0);
  console.log(`dist/guide: ${(bytes / 1024).toFixed(0)} KB (budget ${BUDGET_KB} KB)`);
  expect(bytes / 1024).toBeLessThanOrEqual(BUDGET_KB);
});

describe.skipIf(!chromiumHere)('the guide in headless Chromium', () => {
  test("every step drawn; the probabilities equal Node's to the bit; drawing changes the prediction", async () => {
    const { context, page, problems } = await open(await serve());
    try {
      let g = await state(page);
      expect(g.error).toBeUndefined();
      // the digit model is small enough that loadModel's default is one worker (docs/library.md)
      expect(g.runtime).toMatchObject({ threads: 1, workers: true, sharedMemory: true });
      const notDrawn = Object.entries(g.drawn).filter(([, d]) => !d);
      expect(Object.keys(g.drawn).length).toBeGreaterThan(20);
      expect(notDrawn).toEqual([]);
      // the page starts on held-out digit 07 (a 7): Node's trace of the same PNG, same build
      const model = await loadModel(path.join(ROOT, 'assets/mnist-vit'), { threads: 2, simd: 'relaxed' });
      const png = readFileSync(path.join(ROOT, 'assets/digits/digit-07-label-7.png'));
      const node = await model.trace(await model.pixels(new Uint8Array(png)));
      expect(g.probabilities).toEqual(Array.from(new Uint32Array(node.probabilities.data.buffer)));
      await model.dispose();
      // a screenshot of each step
      mkdirSync(SHOTS, { recursive: true });
      for (const id of await page.$$eval('section.step', (s) => s.map((x) => x.id))) {
        await page.locator(`#${id}`).screenshot({ path: path.join(SHOTS, `${id}.png`) });
      }
      // the keyboard chooses a token on the attention picture: Home is cls, arrows move over the patches
      await page.focus('#overlay');
      await page.keyboard.press('ArrowRight');
      expect(await page.inputValue('#token')).toBe('1');
      await page.keyboard.press('ArrowDown');
      expect(await page.inputValue('#token')).toBe(String(1 + 28 / 7));
      await page.keyboard.press('Home');
      expect(await page.inputValue('#token')).toBe('0');
      expect(await page.$$eval('#all-heads canvas', (c) => c.length)).toBe(4);
      // draw: clear, then a stroke down the middle (a 1); the prediction moves
      const before = g.probabilities;
      await page.click('#clear');
      const pad = await page.locator('#pad').boundingBox();
      await page.mouse.move(pad!.x + pad!.width * 0.5, pad!.y + pad!.height * 0.15);
      await page.mouse.down();
      for (let k = 1; k <= 10; k++)
        await page.mouse.move(pad!.x + pad!.width * 0.5, pad!.y + pad!.height * (0.15 + 0.07 * k));
      await page.mouse.up();
      await page.waitForFunction(
        (b) => JSON.stringify((window as unknown as { __guide: Guide }).__guide.probabilities) !== JSON.stringify(b),
        before,
      );
      g = await state(page);
      const probs = new Float32Array(Uint32Array.from(g.probabilities).buffer);
      expect(probs.indexOf(Math.max(...probs))).toBe(1);
      await page.screenshot({ path: path.join(SHOTS, 'drawn-one.png') });
      // the threads panel: 1 and 2 workers, the same bits
      await page.click('#run-threads');
      await page.waitForFunction(() => (window as unknown as { __threads?: unknown }).__threads, null, {
        timeout: 60000,
      });
      const threads = await page.evaluate(
        () => (window as unknown as { __threads: { same: boolean; rows: { threads: number }[] } }).__threads,
      );
      expect(threads.same).toBe(true);
      expect(threads.rows.map((r) => r.threads)).toEqual([1, 2]);
      await page.locator('#threads').screenshot({ path: path.join(SHOTS, 'threads.png') });
      // step 14: a few dozen training steps in the page lower the loss; pause stops it
      const training = await trainAndPause(page, 50);
      const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
      expect(mean(training.losses.slice(-10))).toBeLessThan(mean(training.losses.slice(0, 10)));
      expect(await page.textContent('#train-status')).toMatch(/^step \d+ of \d+/);
      await page.locator('#step-14').screenshot({ path: path.join(SHOTS, 'step-14.png') });
      // "Use this model above": the pad traces with the trained model from then on, and drawing still updates it
      const changed = (b: number[]) =>
        page.waitForFunction(
          (p) => JSON.stringify((window as unknown as { __guide: Guide }).__guide.probabilities) !== JSON.stringify(p),
          b,
        );
      const bundled = (await state(page)).probabilities;
      await page.click('#use-trained');
      await changed(bundled);
      expect(await page.textContent('#train-status')).toContain('the story above now runs this model');
      const swapped = await state(page);
      await page.click('#clear');
      await page.mouse.move(pad!.x + pad!.width * 0.15, pad!.y + pad!.height * 0.5);
      await page.mouse.down();
      for (let k = 1; k <= 10; k++)
        await page.mouse.move(pad!.x + pad!.width * (0.15 + 0.07 * k), pad!.y + pad!.height * 0.5);
      await page.mouse.up();
      await changed(swapped.probabilities);
      g = await state(page);
      expect(g.error).toBeUndefined();
      expect(Object.entries(g.drawn).filter(([, d]) => !d)).toEqual([]);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('step 15 teaches classes drawn on the pad: curves, a held-back accuracy, a try on the pad, a zip of the model', async () => {
    const { context, page, problems } = await open(await serve());
    try {
      // a stroke on the pad from (x0, y0) to (x1, y1), in fractions of its size; resolves once it is traced
      const stroke = async (x0: number, y0: number, x1: number, y1: number) => {
        await page.click('#clear');
        const box = (await page.locator('#pad').boundingBox())!; // where it is now: the pad's bar is sticky
        await page.mouse.move(box.x + box.width * x0, box.y + box.height * y0);
        await page.mouse.down();
        for (let k = 1; k <= 8; k++)
          await page.mouse.move(
            box.x + box.width * (x0 + ((x1 - x0) * k) / 8),
            box.y + box.height * (y0 + ((y1 - y0) * k) / 8),
          );
        await page.mouse.up();
        await page.waitForFunction(() => (window as unknown as { __padIdle: () => boolean }).__padIdle());
      };
      const [rowA, rowB] = [page.locator('#teach-classes p').nth(0), page.locator('#teach-classes p').nth(1)];
      await rowA.locator('input:not([type])').fill('across');
      await rowB.locator('input:not([type])').fill('down');
      // four strokes across and four down, at different heights and places: one of each held back
      for (const f of [0.3, 0.45, 0.6, 0.75]) {
        await stroke(0.15, f, 0.85, f);
        await rowA.getByRole('button', { name: 'Add the pad' }).click();
        await stroke(f, 0.15, f, 0.85);
        await rowB.getByRole('button', { name: 'Add the pad' }).click();
      }
      expect(await rowA.textContent()).toContain('4 pictures');
      await page.click('#teach-train');
      await page.waitForFunction(
        () => (document.querySelector('#teach-status')?.textContent ?? '').includes('done'),
        null,
        {
          timeout: 120000,
        },
      );
      const status = (await page.textContent('#teach-status'))!;
      expect(status).toMatch(/^epoch 30 of 30: .*held back \d+% — done$/);
      expect(await page.evaluate(() => (window as unknown as { __teach: unknown }).__teach)).toEqual({
        labels: ['across', 'down'],
        held: 2,
        epochs: 30,
      });
      // a new stroke across, between the taught ones: the taught model reads it as "across"
      await stroke(0.2, 0.52, 0.8, 0.52);
      await page.click('#teach-try');
      await page.waitForFunction(() => (document.querySelector('#teach-result-text')?.textContent ?? '').includes(':'));
      expect(await page.textContent('#teach-result-text')).toBe('the pad, to the taught model: across');
      // the story above runs the taught model: the guide's prediction is one of its two classes
      await page.click('#teach-use');
      await page.waitForFunction(() =>
        (document.querySelector('#teach-status')?.textContent ?? '').includes('now runs the taught model'),
      );
      await page.waitForFunction(() => (window as unknown as { __padIdle: () => boolean }).__padIdle());
      expect((await state(page)).probabilities).toHaveLength(2);
      // the download: a zip of an ordinary model folder
      const zip = await page.evaluate(async () => {
        const a = document.querySelector<HTMLAnchorElement>('#teach-download')!;
        const b = new Uint8Array(await (await fetch(a.href)).arrayBuffer());
        return { hidden: a.hidden, head: String.fromCharCode(b[0], b[1]), text: new TextDecoder().decode(b) };
      });
      expect(zip.hidden).toBe(false);
      expect(zip.head).toBe('PK');
      for (const f of ['my-vit/config.json', 'my-vit/model.safetensors', 'my-vit/preprocessor_config.json'])
        expect(zip.text).toContain(f);
      mkdirSync(SHOTS, { recursive: true });
      // (the pad's sticky bar would cover the section's top in the picture)
      await page.evaluate(() => {
        for (const e of document.querySelectorAll<HTMLElement>('.input, .layer-controls'))
          e.style.setProperty('position', 'static');
      });
      await page.locator('#step-15').screenshot({ path: path.join(SHOTS, 'step-15.png') });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test("step 15 from a folder of class folders, a camera photo, another model's folder, and a try on a picture", async () => {
    // bars across and down, 28×28 grey PNGs: the ImageFolder layout the folder input takes
    const root = tempDir('vit-wasm-teach-'),
      shapes = path.join(root, 'shapes');
    const bar = (down: boolean, at: number) => {
      const px = new Uint8Array(28 * 28);
      for (let i = 4; i < 24; i++) for (let w = 0; w < 3; w++) px[down ? i * 28 + at + w : (at + w) * 28 + i] = 255;
      return encode({ width: 28, height: 28, data: px, channels: 1, depth: 8 });
    };
    for (const [cls, down] of [
      ['across', false],
      ['down', true],
    ] as const) {
      mkdirSync(path.join(shapes, cls), { recursive: true });
      for (const at of [6, 10, 14, 18]) writeFileSync(path.join(shapes, cls, `${at}.png`), bar(down, at));
    }
    writeFileSync(path.join(root, 'try.png'), bar(true, 12));
    const { context, page, problems } = await open(await serve(), 1100, 'allow', [
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
    ]);
    try {
      await page.setInputFiles('#teach-folder', shapes);
      await page.waitForFunction(() =>
        (document.querySelector('#teach-status')?.textContent ?? '').includes('from the folder'),
      );
      expect(await page.textContent('#teach-status')).toBe('8 pictures in 2 classes from the folder');
      const rows = page.locator('#teach-classes p');
      expect(await rows.nth(0).locator('input:not([type])').inputValue()).toBe('across');
      expect(await rows.nth(1).textContent()).toContain('4 pictures');
      // the camera (Chromium's fake one): a photo is a picture of its class
      await page.click('#teach-camera-on');
      await page.waitForFunction(
        () => (document.querySelector<HTMLVideoElement>('#teach-camera')?.videoWidth ?? 0) > 0,
      );
      await rows
        .nth(2 - 2)
        .getByRole('button', { name: 'Add a photo' })
        .click();
      expect(await rows.nth(0).textContent()).toContain('5 pictures');
      // another model: the DeiT fixture's folder, taught (a linear probe) with the folder's pictures
      await page.setInputFiles('#teach-model', path.join(FIXTURES, 'train-families', 'deit'));
      await page.waitForFunction(() =>
        (document.querySelector('#teach-model-name')?.textContent ?? '').includes('deit'),
      );
      expect(await page.textContent('#teach-model-name')).toBe('deit (deit, 12×12 px)');
      await page.click('#teach-train');
      await page.waitForFunction(
        () => (document.querySelector('#teach-status')?.textContent ?? '').includes('done'),
        null,
        {
          timeout: 60000,
        },
      );
      expect(await page.textContent('#teach-status')).toMatch(/^epoch 30 of 30: .*held back \d+% — done$/);
      // the pad draws for the guide's model, not this one: a picture instead
      await page.click('#teach-try');
      expect(await page.textContent('#teach-result-text')).toBe(
        'The pad draws for the model above: try a picture instead.',
      );
      await page.setInputFiles('#teach-try-file', path.join(root, 'try.png'));
      await page.waitForFunction(() =>
        (document.querySelector('#teach-result-text')?.textContent ?? '').includes('try.png'),
      );
      expect(await page.textContent('#teach-result-text')).toMatch(/^try\.png, to the taught model: (across|down)$/);
      const bytes = await page.evaluate(async () =>
        Array.from(
          new Uint8Array(
            await (await fetch(document.querySelector<HTMLAnchorElement>('#teach-download')!.href)).arrayBuffer(),
          ),
        ),
      );
      const zip = unzipSync(Uint8Array.from(bytes));
      expect(JSON.parse(strFromU8(zip['my-vit/config.json'])).architectures).toEqual(['DeiTForImageClassification']);
      const taught = await loadModel(
        Object.fromEntries(Object.entries(zip).map(([k, v]) => [k.replace('my-vit/', ''), v])),
        { threads: 1 },
      );
      expect([taught.family, taught.config.labels]).toEqual(['deit', ['across', 'down']]);
      await taught.dispose();
      mkdirSync(SHOTS, { recursive: true });
      await page.evaluate(() => {
        for (const e of document.querySelectorAll<HTMLElement>('.input, .layer-controls'))
          e.style.setProperty('position', 'static');
      });
      await page.locator('#step-15').screenshot({ path: path.join(SHOTS, 'step-15-folder-camera-model.png') });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('without COOP/COEP (and no service worker) it runs on one thread and says why; phone width', async () => {
    const { context, page, problems } = await open(await serve(['--plain']), 390, 'block');
    try {
      const g = await state(page);
      expect(g.error).toBeUndefined();
      expect(g.runtime).toMatchObject({ threads: 1, workers: false });
      expect(Object.values(g.drawn).every(Boolean)).toBe(true);
      expect(await page.textContent('#runtime')).toContain('threads are off: the page is not cross-origin isolated');
      // no shared memory: training runs in one worker with its own memory, and the page keeps answering
      await trainAndPause(page, 25);
      // one thread: the plain-SIMD build; on a page wider than the phone nothing scrolls sideways
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      mkdirSync(SHOTS, { recursive: true });
      await page.screenshot({ path: path.join(SHOTS, 'phone.png'), fullPage: true });
      expect(problems.filter((p) => !p.includes('threads are off'))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test('on a host without COOP/COEP, coi-serviceworker.js gives it threads', async () => {
    const { context, page, problems } = await open(await serve(['--plain']));
    try {
      await page.waitForFunction(
        () => self.crossOriginIsolated && (window as unknown as { __guide?: Guide }).__guide?.runtime,
        null,
        {
          timeout: 30000,
        },
      );
      const g = await state(page);
      expect(g.runtime).toMatchObject({ threads: 1, workers: true, sharedMemory: true, crossOriginIsolated: true });
      expect(problems.filter((p) => !/context was destroyed|navigation/i.test(p))).toEqual([]);
    } finally {
      await context.close();
    }
  });

  test.each([
    ['CLIPModel', 'h40-clip-text'],
    ['SiglipModel', 'h40-siglip-text'],
  ])(
    'a %s: step 13 ranks the labels typed, by words (zero-shot), as Node does, and draws the prompt’s attention; every picture drawn',
    async (kind, name) => {
      const dir = path.join(FIXTURES, 'zero-shot', name);
      const { context, page, problems } = await open(await serve(['--model', dir]));
      type ZS = {
        labels: string[];
        ranked: { label: string; index: number; score: number }[];
        pixels: number[];
        attention: { prompt: string; tokens: string[]; values: number[] };
      };
      const zeroShot = (labels: string) =>
        page.waitForFunction(
          (l) => {
            const z = (window as unknown as { __zeroShot?: ZS }).__zeroShot;
            return z && z.labels.join(', ') === l && z;
          },
          labels,
          { timeout: 30000 },
        );
      try {
        expect(await page.isVisible('#zs-labels')).toBe(true);
        let z = (await (await zeroShot('a cat, a dog, a car, a handwritten digit')).jsonValue()) as ZS;
        const g = await state(page);
        expect(Object.entries(g.drawn).filter(([, d]) => !d)).toEqual([]);
        const model = await loadModel(dir, { threads: 1, simd: g.runtime.simd });
        const pixels = new Float32Array(Uint32Array.from(z.pixels).buffer);
        expect(z.ranked).toEqual(await model.zeroShot(pixels, z.labels, { template: 'a photo of {}.' }));
        expect(await page.textContent('#prediction')).toContain(`the closest label is “${z.ranked[0].label}”`);
        // the best label's sentence: its read row's attention in the last layer, mean of the heads, as Node traces it
        const t = await model.traceText(z.attention.prompt);
        expect(z.attention.prompt).toBe(`a photo of ${z.ranked[0].label}.`);
        const T = t.ids.length,
          last = t.attention[t.attention.length - 1],
          H = last.length / (T * T);
        const mean = (j: number) =>
          Array.from({ length: H }, (_, h) => last[(h * T + t.row) * T + j]).reduce((a, b) => a + b) / H;
        const n = kind === 'SiglipModel' ? t.ids.indexOf(1) + 1 : T; // SigLIP: the padding after the end token summed
        expect(z.attention.tokens.slice(0, n)).toEqual(t.tokens.slice(0, n));
        z.attention.values.slice(0, n).forEach((v, j) => expect(Math.abs(v - mean(j))).toBeLessThan(1e-6));
        if (kind === 'SiglipModel') {
          expect(z.attention.tokens[n]).toBe(`</s> ×${T - n} (padding)`);
          expect(z.attention.values.reduce((a, b) => a + b)).toBeCloseTo(1, 5);
        }
        expect(await page.evaluate(() => document.querySelector('#zs-attention-caption')?.textContent)).toContain(
          kind === 'SiglipModel' ? 'its last row' : 'its end-of-text row',
        );
        // new labels typed: ranked again for the same picture
        await page.fill('#zs-labels', 'a bird, a truck');
        z = (await (await zeroShot('a bird, a truck')).jsonValue()) as ZS;
        expect(z.ranked).toEqual(await model.zeroShot(pixels, ['a bird', 'a truck'], { template: 'a photo of {}.' }));
        await model.dispose();
        mkdirSync(SHOTS, { recursive: true });
        await page.locator('#step-13').screenshot({ path: path.join(SHOTS, `step-13-zero-shot-${kind}.png`) });
        expect(problems).toEqual([]);
      } finally {
        await context.close();
      }
    },
  );

  test("another ViT (224 px, 196 patches, 12 heads, 1000 labels) walks through the story: every picture drawn, Node's bits", async () => {
    const { PRESETS, randomModelFiles } = await import('../src/io/presets.js');
    const dir = tempDir('vit-wasm-guide-model-');
    const files = randomModelFiles({ ...PRESETS['vit-b16'], hiddenSize: 192, numLayers: 2, intermediateSize: 384 }, 5);
    for (const [name, data] of Object.entries(files)) writeFileSync(path.join(dir, name), data);
    const url = await serve(['--model', dir]);
    expect(url).toMatch(/\?model=user-model\/$/);
    const { context, page, problems } = await open(url);
    try {
      const g = await state(page);
      expect(g.error).toBeUndefined();
      expect(Object.entries(g.drawn).filter(([, d]) => !d)).toEqual([]);
      const model = await loadModel(dir, { threads: 2, simd: 'relaxed' });
      const png = readFileSync(path.join(ROOT, 'assets/digits/digit-07-label-7.png'));
      const node = await model.trace(await model.pixels(new Uint8Array(png)));
      expect(g.probabilities).toEqual(Array.from(new Uint32Array(node.probabilities.data.buffer)));
      await model.dispose();
      expect(await page.isDisabled('#train')).toBe(true);
      mkdirSync(SHOTS, { recursive: true });
      for (const id of ['step-1', 'step-5', 'step-8', 'step-9', 'step-13']) {
        await page.locator(`#${id}`).screenshot({ path: path.join(SHOTS, `vit224-${id}.png`) });
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
