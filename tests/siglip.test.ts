// SigLIP's vision tower, from Hugging Face's own names and configs (a SiglipModel with its text
// tower beside it and vision_config nested, a SiglipVisionModel), against float64 references
// written from transformers' modeling_siglip.py with torch's own nn.MultiheadAttention as the head
// (tests/fixtures/generate.py siglip): the image embedding (the attention pool's output) and the
// patch mean, at the checkpoint's size and resized; hostile checkpoints refused by name.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createTrainer, loadModel } from '../src/index.js';
import { dirFiles, FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32, withTensor } from './helpers.js';

const DIR = path.join(FIXTURES, 'siglip');

interface Run {
  image_size: [number, number];
  input: string;
  batch: number;
  pooled: number[];
  mean: number[];
}

const cases = fixtureDirs<{ runs: Run[] }>(DIR).map(({ name, dir, exp }) => ({ name, dir, runs: exp.runs }));

function close(what: string, ours: Float32Array, torch: number[]): void {
  const { diff, scale } = maxDiff(ours, torch);
  console.log(`${what}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
  expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
}

test('two: SiglipModel and SiglipVisionModel', () => {
  expect(cases.map((c) => c.name)).toEqual(['h33-siglip-vision', 'h40-siglip']);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test.each(c.runs.map((r) => [`${r.image_size[0]}x${r.image_size[1]}`, r] as const))(
    'at %s: the image embedding and the patch mean of the float64 reference (1 and 2 threads)',
    async (size, r) => {
      const x = readF32(path.join(c.dir, r.input));
      for (const threads of [1, 2]) {
        const m = await loadModel(c.dir, { threads, imageSize: r.image_size });
        expect(m.family).toBe('siglip');
        const images = [x.subarray(0, m.inputSize), x.subarray(m.inputSize)];
        close(`${name} at ${size}, image embedding (${threads} threads)`, await m.embed(images), r.pooled);
        close(`${name} at ${size}, patch mean`, await m.embed(images, { pooling: 'mean' }), r.mean);
        await expect(m.embed(images, { pooling: 'cls' })).rejects.toThrow(/it has no class token/);
        await expect(m.forward(x, r.batch)).rejects.toThrow(/no classifier .*model\.embed/);
        await m.dispose();
      }
    },
  );
});

test('int8 weights, the trace (no cls token), and training refused', async () => {
  const c = cases.find((k) => k.name === 'h40-siglip')!,
    r = c.runs[0];
  const x = readF32(path.join(c.dir, r.input));
  const q = await loadModel(c.dir, { threads: 1, weights: 'int8' });
  const { diff, scale } = maxDiff(await q.embed([x.subarray(0, q.inputSize), x.subarray(q.inputSize)]), r.pooled);
  console.log(`int8 SigLIP: max |int8 - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
  expect(diff).toBeLessThanOrEqual(0.05 * scale);
  await q.dispose();
  const m = await loadModel(c.dir, { threads: 1 });
  const t = await m.trace(x.subarray(0, m.inputSize));
  expect(t.clsToken).toBeUndefined();
  expect(t.input.dims).toEqual([25, m.config.hiddenSize]); // the 5×5 patches, nothing before them
  // a trainer needs classes: refused on its labels before its arch, as every model without a classifier
  await expect(createTrainer(m.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(/numLabels must be a positive/);
  await m.dispose();
});

test('the ONNX export computes the attention pool: pooler_output (onnxruntime-node)', async () => {
  const c = cases.find((k) => k.name === 'h40-siglip')!,
    r = c.runs[1];
  const x = readF32(path.join(c.dir, r.input));
  const m = await loadModel(c.dir, { threads: 1, imageSize: r.image_size });
  const ours = await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)]);
  const out = await onnxOutput(m, x, 2);
  expect(out.name).toBe('pooler_output');
  const { diff, scale } = maxDiff(out.data, ours);
  expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
  await m.dispose();
});

const files = (name: string, edit?: (c: Record<string, unknown>) => void) => dirFiles(path.join(DIR, name), edit);

describe('hostile SigLIP checkpoints are refused by name', () => {
  test.each([
    [
      'vision_use_head false',
      files('h33-siglip-vision', (c) => Object.assign(c, { vision_use_head: false })),
      /vision_use_head false asks for a SigLIP tower without its attention-pool head/,
    ],
    [
      'an in_proj of the wrong size',
      withTensor(files('h33-siglip-vision'), 'vision_model.head.attention.in_proj_weight', [98, 33]),
      /'vision_model\.head\.attention\.in_proj_weight' has shape \[98,33\], expected \[99,33\]/,
    ],
    [
      'a probe of the wrong size',
      withTensor(files('h33-siglip-vision'), 'vision_model.head.probe', [1, 1, 32]),
      /'vision_model\.head\.probe' has shape \[1,1,32\], expected \[33\]/,
    ],
    [
      'a missing head layernorm',
      withTensor(files('h33-siglip-vision'), 'vision_model.head.layernorm.bias', null),
      /missing tensor 'vision_model\.head\.layernorm\.bias'/,
    ],
    [
      'a classifier of the wrong width (tests/classifiers.test.ts runs SiglipForImageClassification)',
      withTensor(withTensor(files('h33-siglip-vision'), 'classifier.weight', [5, 32]), 'classifier.bias', [5]),
      /'classifier\.weight' has shape \[5,32\]/,
    ],
    [
      'positions that are not a square grid',
      withTensor(files('h33-siglip-vision'), 'vision_model.embeddings.position_embedding.weight', [15, 33]),
      /image_size 28x28 with patch_size 7 gives 16 patches \+ no prefix token = 16 positions, but .* \(15 positions\)/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });
});
