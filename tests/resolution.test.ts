// Any resolution: a checkpoint run at another image size, its position embeddings interpolated as
// Hugging Face's ViT and DeiT do (interpolate_pos_encoding), timm does (resample_abs_pos_embed,
// antialiased) and torchvision does (interpolate_embeddings, aligned corners; src/io/positions.ts),
// against float64 references of that code (tests/fixtures/generate.py resolution and
// torchvision-sizes; DINOv2's in tests/dinov2.test.ts); and the refusals by name.
import path from 'node:path';
import { expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { FIXTURES, fixtureDirs, MODELS, maxDiff, readF32 } from './helpers.js';

const DIR = path.join(FIXTURES, 'resolution');
interface Expected {
  batch: number;
  image_size: [number, number];
  logits: number[];
}

const cases = fixtureDirs<Expected>(DIR).map((c) => ({ ...c, input: readF32(path.join(c.dir, 'input.f32')) }));

test('seven: up and non-square, down, a DeiT (two prefix tokens); timm from a non-square grid, and a timm DeiT down; torchvision up and down (aligned corners)', () => {
  expect(cases.map((c) => c.name)).toEqual([
    'h33-deit-timm-at-21x21',
    'h33-hf-at-14x14',
    'h33-hf-at-42x35',
    'h33-torchvision-at-14x14',
    'h33-torchvision-at-42x42',
    'h40-timm-at-35x30',
    'h48-deit-hf-at-40x32',
  ]);
});

test.each(cases.map((c) => [c.name, c] as const))('%s: the logits of the float64 reference', async (_, c) => {
  for (const threads of [1, 2]) {
    const m = await loadModel(c.dir, { threads, imageSize: c.exp.image_size });
    expect(m.config.imageSize).toEqual(c.exp.image_size);
    expect(m.preprocessing.size).toEqual(c.exp.image_size); // images are resized to the size it runs at
    const logits = await m.forward(c.input, c.exp.batch);
    const { diff, scale } = maxDiff(logits, c.exp.logits);
    console.log(
      `${c.name} (${threads} threads): max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
    );
    expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
    await m.dispose();
  }
});

test('the same size, as a number or [h, w], is the checkpoint as it is', async () => {
  const dir = path.join(MODELS, 'h33-hf');
  const a = await loadModel(dir, { threads: 1 });
  const b = await loadModel(dir, { threads: 1, imageSize: 28 });
  const x = new Float32Array(a.inputSize).map((_, i) => Math.sin(i));
  expect(await b.forward(x)).toEqual(await a.forward(x));
  await Promise.all([a.dispose(), b.dispose()]);
});

test.each([
  ['h33-torchvision', [42, 35], /imageSize 42x35: a torchvision-named checkpoint runs square images only/],
  [
    'h40-hf',
    40,
    /imageSize 40x40: the checkpoint's positions are a 4x5 grid; Hugging Face interpolates square grids only/,
  ],
  ['h33-hf', 30, /imageSize 30x30: each side must be a multiple of the patch size 7, from 7 to 896 \(128 patches\)/],
  ['h33-hf', [903, 7], /imageSize 903x7: each side must be a multiple of the patch size 7, from 7 to 896/],
  ['h33-hf', [0, 7], /loadModel: imageSize must be an integer, \[height, width\] or \{height, width\}; got \[0,7\]/],
  ['h33-hf', '28', /loadModel: imageSize must be an integer, \[height, width\] or \{height, width\}; got "28"/],
] as const)('%s at %j is refused by name', async (name, size, error) => {
  await expect(loadModel(path.join(MODELS, name), { threads: 1, imageSize: size as never })).rejects.toThrow(error);
});

test("the CLI: classify --image-size gives the library's predictions; a bad flag is a usage error", async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const run = promisify(execFile);
  const bin = path.join(FIXTURES, '../../bin/vit-wasm.js'),
    image = path.join(FIXTURES, 'images/chelsea.png'),
    dir = cases[1].dir;
  const { stdout } = await run(process.execPath, [
    bin,
    'classify',
    '--json',
    '--model',
    dir,
    '--image-size',
    '42x35',
    image,
  ]);
  const m = await loadModel(dir, { threads: 1, imageSize: [42, 35] });
  expect(JSON.parse(stdout)[0].predictions).toEqual(await m.classify(image));
  await m.dispose();
  await expect(run(process.execPath, [bin, 'classify', '--image-size', '42x3y', image])).rejects.toMatchObject({
    code: 2,
    stderr: expect.stringContaining("--image-size must be N or HxW (pixels), got '42x3y'"),
  });
});

test("a torchvision checkpoint with its weights' transforms by name, run at their crop (224): torchvision's pixels", async () => {
  const dir = path.join(MODELS, 'h33-torchvision');
  await expect(loadModel(dir, { threads: 1, transforms: 'ViT_B_16_Weights.IMAGENET1K_V1' })).rejects.toThrow(
    /transforms ViT_B_16_Weights\.IMAGENET1K_V1: images come out at 224x224 \(crop_size\), but the model's image_size is 28x28; load it with \{ imageSize: \[224,224\] \}/,
  );
  const m = await loadModel(dir, { threads: 1, transforms: 'ViT_B_16_Weights.IMAGENET1K_V1', imageSize: 224 });
  expect(m.preprocessing).toMatchObject({
    resizeTo: { shortestEdge: 256 },
    crop: true,
    resample: 'bilinear',
    transforms: 'torchvision',
  });
  const px = await m.pixels(path.join(FIXTURES, 'images', 'chelsea.png'));
  expect(Array.from(px)).toEqual(Array.from(readF32(path.join(FIXTURES, 'preprocess', 'torchvision-00-chelsea.f32'))));
  expect(await m.classify(path.join(FIXTURES, 'images', 'chelsea.png'))).toHaveLength(5);
  await m.dispose();
});
