// CLIP's and SigLIP's image-classification heads (CLIPForImageClassification: the mean of the
// patch tokens before post_layernorm; SiglipForImageClassification: the mean of every
// post_layernormed token, its attention-pool head left unread) against float64 references written
// from transformers' modeling code (tests/fixtures/generate.py classifiers): logits at 1 and 2
// threads, the trace, what embed gives, and the ONNX export.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32 } from './helpers.js';

const cases = fixtureDirs<{ batch: number; logits: number[]; pooled?: number[] }>(path.join(FIXTURES, 'classifiers'));

test('two: CLIPForImageClassification and SiglipForImageClassification', () => {
  expect(cases.map((c) => c.name)).toEqual(['h33-clip-classifier', 'h40-siglip-classifier']);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  const x = readF32(path.join(c.dir, 'input.f32'));
  test('logits of the float64 reference at 1 and 2 threads; the trace and the ONNX export agree', async () => {
    for (const threads of [1, 2]) {
      const m = await loadModel(c.dir, { threads });
      expect(m.family).toBe(name.includes('clip') ? 'clip' : 'siglip');
      expect(m.config.arch?.pooling).toBe('mean');
      expect(m.config.arch?.finalNorm).toBe(name.includes('clip') ? 'none' : 'tokens');
      expect(m.config.labels).toEqual(Array.from({ length: 6 }, (_, i) => `class ${i}`));
      const z = await m.forward(x, c.exp.batch);
      const { diff, scale } = maxDiff(z, c.exp.logits);
      console.log(
        `${name} (${threads} threads): max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
      );
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      // what the classifier reads, as embed gives it: the logits are that through the classifier
      const feats = await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)], { pooling: 'head' });
      expect(feats.length).toBe(2 * m.config.hiddenSize);
      expect(Array.from(await m.embed([x.subarray(0, m.inputSize)], { pooling: 'mean' }))).toEqual(
        Array.from(feats.subarray(0, m.config.hiddenSize)),
      );
      if (threads === 1) {
        const t = await m.trace(x.subarray(0, m.inputSize));
        expect(Array.from(t.logits.data)).toEqual(Array.from(z.subarray(0, 6)));
        const out = await onnxOutput(m, x, 2);
        expect(maxDiff(out.data, z).diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      }
      await m.dispose();
    }
  });
});

test("CLIPForImageClassification's embed 'cls' is CLIP's pooler output: post_layernorm of the cls token", async () => {
  const c = cases[0],
    x = readF32(path.join(c.dir, 'input.f32'));
  const m = await loadModel(c.dir, { threads: 1 });
  const cls = await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)], { pooling: 'cls' });
  const { diff, scale } = maxDiff(cls, c.exp.pooled!);
  expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
  await m.dispose();
});
