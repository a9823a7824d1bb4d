// CLIP's vision tower, from Hugging Face's own names and configs (a CLIPModel with its text tower
// beside it and vision_config nested, CLIPVisionModel, CLIPVisionModelWithProjection), against
// float64 references written from transformers' modeling_clip.py (tests/fixtures/generate.py
// clip): image embeddings (the projection) and the pooler output, at the checkpoint's size and
// resized; the ONNX export of an image tower; hostile checkpoints refused by name.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { dirFiles, FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32, withTensor } from './helpers.js';

const DIR = path.join(FIXTURES, 'clip');

interface Run {
  image_size: [number, number];
  input: string;
  batch: number;
  pooled: number[];
  image_embeds: number[] | null;
}

const cases = fixtureDirs<{ runs: Run[] }>(DIR).map(({ name, dir, exp }) => ({ name, dir, runs: exp.runs }));

function close(what: string, ours: Float32Array, torch: number[]): void {
  const { diff, scale } = maxDiff(ours, torch);
  console.log(`${what}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
  expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
}

test('three: CLIPModel, CLIPVisionModel, CLIPVisionModelWithProjection', () => {
  expect(cases.map((c) => c.name)).toEqual(['h33-clip-vision', 'h40-clip', 'h48-clip-vision-proj']);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test.each(c.runs.map((r) => [`${r.image_size[0]}x${r.image_size[1]}`, r] as const))(
    'at %s: image embeddings and pooler output of the float64 reference (1 and 2 threads)',
    async (size, r) => {
      const x = readF32(path.join(c.dir, r.input));
      for (const threads of [1, 2]) {
        const m = await loadModel(c.dir, { threads, imageSize: r.image_size });
        expect(m.family).toBe('clip');
        const images = [x.subarray(0, m.inputSize), x.subarray(m.inputSize)];
        if (r.image_embeds) {
          expect(m.config.projectionDim).toBe(r.image_embeds.length / 2);
          close(`${name} at ${size}, image embeddings (${threads} threads)`, await m.embed(images), r.image_embeds);
          await expect(m.forward(x, r.batch)).rejects.toThrow(
            /an image tower .* model\.embed\(images\) gives its image embeddings/,
          );
        } else close(`${name} at ${size}, pooler output by default`, await m.embed(images), r.pooled);
        close(`${name} at ${size}, pooler output`, await m.embed(images, { pooling: 'cls' }), r.pooled);
        await m.dispose();
      }
    },
  );
});

test('int8 weights: image embeddings close to the reference', async () => {
  const c = cases.find((k) => k.name === 'h40-clip')!,
    r = c.runs[0];
  const x = readF32(path.join(c.dir, r.input));
  const m = await loadModel(c.dir, { threads: 1, weights: 'int8' });
  const { diff, scale } = maxDiff(
    await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)]),
    r.image_embeds!,
  );
  console.log(`int8 CLIP: max |int8 - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
  expect(diff).toBeLessThanOrEqual(0.05 * scale);
  await m.dispose();
});

test('the ONNX export of an image tower gives image_embeds (onnxruntime-node)', async () => {
  const c = cases.find((k) => k.name === 'h40-clip')!,
    r = c.runs[1];
  const x = readF32(path.join(c.dir, r.input));
  const m = await loadModel(c.dir, { threads: 1, imageSize: r.image_size });
  const ours = await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)]);
  const out = await onnxOutput(m, x, 2);
  expect(out.name).toBe('image_embeds');
  const { diff, scale } = maxDiff(out.data, ours);
  expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
  await m.dispose();
});

const files = (name: string, edit?: (c: Record<string, unknown>) => void) => dirFiles(path.join(DIR, name), edit);

describe('hostile CLIP checkpoints are refused by name', () => {
  test.each([
    [
      'projection_dim against visual_projection',
      files('h40-clip', (c) => Object.assign(c, { projection_dim: 512 })),
      /projection_dim=512, but .* 'visual_projection\.weight' has shape \[24,40\]/,
    ],
    [
      'a visual_projection of the wrong width',
      withTensor(files('h48-clip-vision-proj'), 'visual_projection.weight', [24, 47]),
      /'visual_projection\.weight' has shape \[24,47\], expected \[projection_dim \(1 to 65536\), 48\]/,
    ],
    [
      'vision_config not an object',
      files('h40-clip', (c) => Object.assign(c, { vision_config: 'big' })),
      /config\.json: vision_config must be an object/,
    ],
    [
      'vision_config sizes against the weights',
      files('h40-clip', (c) => Object.assign(c.vision_config as object, { hidden_size: 768 })),
      /says hidden_size=768, but .* 'vision_model\.embeddings\.patch_embedding\.weight' has shape \[40,3,5,5\]/,
    ],
    [
      'a classifier beside an image tower (tests/classifiers.test.ts runs CLIPForImageClassification)',
      withTensor(withTensor(files('h48-clip-vision-proj'), 'classifier.weight', [5, 48]), 'classifier.bias', [5]),
      /both 'classifier\.weight' \(CLIPForImageClassification\) and 'visual_projection\.weight' \(an image tower\): which is it\?/,
    ],
    [
      'a classifier of the wrong width',
      withTensor(withTensor(files('h33-clip-vision'), 'classifier.weight', [5, 32]), 'classifier.bias', [5]),
      /'classifier\.weight' has shape \[5,32\]/,
    ],
    [
      'a missing pre_layrnorm',
      withTensor(files('h33-clip-vision'), 'vision_model.pre_layrnorm.bias', null),
      /missing tensor 'vision_model\.pre_layrnorm\.bias'/,
    ],
    [
      'hidden_act the tower does not compute',
      files('h33-clip-vision', (c) => Object.assign(c, { hidden_act: 'mish' })),
      /hidden_act "mish" is not supported/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });
});
