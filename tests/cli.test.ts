// The built package as users get it: the CLI binary and the `vit-wasm` ESM entry (run `npm run build` first;
// `npm test` does).
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { FIXTURES, MODELS } from './helpers.js';

const run = promisify(execFile);
const BIN = path.join(FIXTURES, '../../bin/vit-wasm.js');
const MODEL = path.join(MODELS, 'h33-timm');
const IMAGES = ['chelsea.png', 'rocket.jpg', 'grey.png'].map((f) => path.join(FIXTURES, 'images', f));

async function cli(args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args]);
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

describe('vit-wasm CLI and package entry', () => {
  test('zero-shot --json agrees with the library; several --template; a model without a text tower is named', async () => {
    const zs = path.join(FIXTURES, 'zero-shot', 'h40-clip-text'),
      images = IMAGES.slice(0, 2),
      template = ['a photo of a {}.', 'a sketch of a {}.'];
    const args = ['zero-shot', '--model', zs, '--labels', 'cat, dog,car', ...images, '--json', '--top', '2'];
    const { code, stdout } = await cli([...args, ...template.flatMap((t) => ['--template', t])]);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    const { loadModel } = await import('vit-wasm');
    const model = await loadModel(zs);
    for (const [i, r] of out.entries())
      expect(r.predictions).toEqual(await model.zeroShot(images[i], ['cat', 'dog', 'car'], { template, topK: 2 }));
    await model.dispose();
    const bad = await cli(['zero-shot', '--model', MODEL, '--labels', 'a,b', IMAGES[0]]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/zeroShot needs a text tower: this vit checkpoint has none/);
    expect((await cli(['zero-shot', '--model', zs, IMAGES[0]])).stderr).toMatch(/zero-shot needs --labels/);
  });

  test("zero-shot with a SiglipModel: each label's sigmoid, as the library gives it", async () => {
    const zs = path.join(FIXTURES, 'zero-shot', 'h40-siglip-text');
    const { code, stdout } = await cli(['zero-shot', '--model', zs, '--labels', 'cat,dog,car', IMAGES[0], '--json']);
    expect(code).toBe(0);
    const { loadModel } = await import('vit-wasm');
    const model = await loadModel(zs);
    expect(JSON.parse(stdout)[0].predictions).toEqual(await model.zeroShot(IMAGES[0], ['cat', 'dog', 'car']));
    await model.dispose();
  });

  test('index embeds a folder (an unreadable image named and left out); search ranks it by a sentence', async () => {
    const zs = path.join(FIXTURES, 'zero-shot', 'h40-clip-text'),
      dir = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-index-'));
    try {
      mkdirSync(path.join(dir, 'photos', 'sub'), { recursive: true });
      for (const f of IMAGES) copyFileSync(f, path.join(dir, 'photos', path.basename(f)));
      copyFileSync(IMAGES[0], path.join(dir, 'photos', 'sub', 'again.png'));
      writeFileSync(path.join(dir, 'photos', 'sub', 'broken.png'), 'not a png');
      const out = path.join(dir, 'index');
      const r = await cli(['index', path.join(dir, 'photos'), '--model', zs, '--out', out]);
      expect(r.code).toBe(1); // one image left out
      expect(r.stderr).toMatch(/skipped: vit-wasm: .*broken\.png: cannot read image/);
      const index = JSON.parse(readFileSync(path.join(out, 'index.json'), 'utf8'));
      expect(index.files).toEqual(['chelsea.png', 'grey.png', 'rocket.jpg', path.join('sub', 'again.png')]);
      const { loadModel, similarity } = await import('vit-wasm');
      const model = await loadModel(zs);
      const files = index.files.map((f: string) => path.join(dir, 'photos', f));
      const images = await model.embed(await Promise.all(files.map((f: string) => model.pixels(f))));
      const s = await cli(['search', out, 'a photo of a cat', '--json', '--top', '3']);
      expect(s.code).toBe(0);
      const sim = similarity(await model.embedText('a photo of a cat'), images, 24);
      const want = files
        .map((file: string, i: number) => ({ file, score: sim[i] }))
        .sort((a: { score: number }, b: { score: number }) => b.score - a.score);
      const got = JSON.parse(s.stdout);
      expect(got.map((g: { file: string }) => g.file)).toEqual(want.slice(0, 3).map((w: { file: string }) => w.file));
      for (const [i, g] of got.entries()) expect(Math.abs(g.score - want[i].score)).toBeLessThan(1e-6);
      await model.dispose();
      expect((await cli(['search', dir, 'x'])).stderr).toMatch(/not an index \(no index.json/);
      expect((await cli(['index', path.join(dir, 'photos'), '--model', MODEL, '--out', out])).stderr).toMatch(
        /needs a model with a text tower/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('classify --json agrees with the library', async () => {
    const { code, stdout } = await cli(['classify', '--model', MODEL, ...IMAGES, '--top', '4', '--json']);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    const { loadModel } = await import('vit-wasm');
    const model = await loadModel(MODEL);
    expect(out.map((r: { image: string }) => r.image)).toEqual(IMAGES);
    for (const [i, r] of out.entries()) {
      expect(r.predictions).toHaveLength(4);
      expect(r.predictions).toEqual(await model.classify(IMAGES[i], { topK: 4 }));
      const scores = r.predictions.map((p: { score: number }) => p.score);
      expect(scores).toEqual([...scores].sort((a, b) => b - a));
      expect(r.predictions[0].label).toMatch(/^h33-class-\d+$/);
    }
    // all 11 classes sum to 1
    const all = await model.classify(IMAGES[0], { topK: 100 });
    expect(all).toHaveLength(11);
    expect(all.reduce((s, p) => s + p.score, 0)).toBeCloseTo(1, 5);
    await model.dispose();
  });

  test('classify --weights int8 agrees with the library loaded with weights: int8', async () => {
    const { code, stdout } = await cli([
      'classify',
      '--model',
      MODEL,
      ...IMAGES,
      '--top',
      '3',
      '--json',
      '--weights',
      'int8',
    ]);
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    const { loadModel } = await import('vit-wasm');
    const model = await loadModel(MODEL, { weights: 'int8' });
    for (const [i, r] of out.entries()) expect(r.predictions).toEqual(await model.classify(IMAGES[i], { topK: 3 }));
    await model.dispose();
    const bad = await cli(['classify', '--model', MODEL, IMAGES[0], '--weights', 'f16']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("--weights must be f32 or int8, got 'f16'");
  });

  test('classify prints a table and reports unreadable images without stopping', async () => {
    const { code, stdout, stderr } = await cli([
      'classify',
      '--model',
      MODEL,
      '/nonexistent.png',
      IMAGES[0],
      '--top',
      '2',
    ]);
    expect(code).toBe(1);
    expect(stderr).toMatch(/\/nonexistent\.png: cannot read image: no such file/);
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe(IMAGES[0]);
    expect(lines.slice(1)).toHaveLength(2);
    for (const l of lines.slice(1)) expect(l).toMatch(/^ {2}h33-class-\d+ +\d+\.\d\d%$/);
  });

  test('usage errors exit 2 with the usage text; model errors exit 1', async () => {
    expect((await cli([])).code).toBe(2);
    const noImage = await cli(['classify', '--model', MODEL]);
    expect(noImage.code).toBe(2);
    expect(noImage.stderr).toMatch(/classify needs at least one IMAGE/);
    const badTop = await cli(['classify', '--model', MODEL, IMAGES[0], '--top', 'x']);
    expect(badTop.stderr).toMatch(/--top must be a positive integer, got 'x'/);
    const badModel = await cli(['classify', '--model', '/nonexistent', IMAGES[0]]);
    expect(badModel.code).toBe(1);
    expect(badModel.stderr.trim()).toBe('vit-wasm: model directory /nonexistent does not exist');
    expect((await cli(['frobnicate'])).stderr).toMatch(/unknown command 'frobnicate'/);
  });

  test('quantize writes int8 and f16 directories that classify reads; bad flags exit 2', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-q-'));
    try {
      const f32 = await cli(['classify', '--model', MODEL, IMAGES[0], '--top', '1', '--json']);
      for (const to of ['int8', 'f16']) {
        const out = path.join(dir, to);
        const q = await cli(['quantize', '--model', MODEL, '--out', out, '--to', to]);
        expect(q.code).toBe(0);
        expect(q.stdout).toMatch(new RegExp(`wrote .*${to}: model\\.safetensors [\\d.]+ MB \\(${to}\\)`));
        const r = await cli(['classify', '--model', out, IMAGES[0], '--top', '1', '--json']);
        expect(r.code).toBe(0);
        expect(JSON.parse(r.stdout)[0].predictions[0].label).toBe(JSON.parse(f32.stdout)[0].predictions[0].label);
      }
      // a tiny model: position embeddings and norms (f32 in int8 files) weigh as much as the matrices
      expect(statSync(path.join(dir, 'int8/model.safetensors')).size).toBeLessThan(
        statSync(path.join(dir, 'f16/model.safetensors')).size,
      );
      expect((await cli(['quantize', '--model', MODEL, '--out', dir, '--to', 'int4'])).code).toBe(2);
      expect((await cli(['quantize', '--model', MODEL, '--out', dir, '--keep', 'norm'])).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('classify --limit lowers or raises a limit; an image over it is named with the flag that raises it', async () => {
    const over = await cli(['classify', '--model', MODEL, IMAGES[0], '--limit', 'maxImagePixels=1000']);
    expect(over.code).toBe(1);
    expect(over.stderr).toMatch(
      /chelsea\.png: the image is 451x300 = 135,300 pixels, which is over the limit of 1,000 \(limits\.maxImagePixels\); .* --limit maxImagePixels=N/,
    );
    const ok = await cli(['classify', '--model', MODEL, IMAGES[0], '--limit', 'maxImagePixels=135300', '--top', '1']);
    expect(ok.code).toBe(0);
    for (const bad of ['maxPixels=5', 'maxImagePixels=-1', 'maxImagePixels'])
      expect((await cli(['classify', '--model', MODEL, IMAGES[0], '--limit', bad])).code).toBe(2);
  });
});
