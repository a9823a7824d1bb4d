// Hugging Face's pooler (ViTModel, DeiTModel): embed({ pooling: 'pooler' }) is tanh(dense(the
// final-normed cls token)), against modeling_vit.py's ViTPooler in float64
// (tests/fixtures/generate.py pooler); a model without a pooler refuses it by name.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { FIXTURES, MODELS, maxDiff, onnxOutput } from './helpers.js';

const DIR = path.join(FIXTURES, 'pooler', 'h33-vitmodel');

test("a ViTModel's pooler output and its cls embedding, 1 and 2 threads", async () => {
  const exp = JSON.parse(readFileSync(path.join(DIR, 'expected.json'), 'utf8'));
  const b = readFileSync(path.join(DIR, 'input.f32')),
    x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  for (const threads of [1, 2]) {
    const m = await loadModel(DIR, { threads });
    const images = [x.subarray(0, m.inputSize), x.subarray(m.inputSize)];
    for (const [pooling, want] of [
      ['pooler', exp.pooler_output],
      ['cls', exp.cls],
      [undefined, exp.cls],
    ] as const) {
      const { diff, scale } = maxDiff(await m.embed(images, pooling ? { pooling } : {}), want);
      console.log(
        `pooling ${pooling} (${threads} threads): max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
      );
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
    }
    await m.dispose();
  }
});

test("the ONNX export's pooler_output is the pooler's, as Hugging Face's (onnxruntime-node)", async () => {
  const b = readFileSync(path.join(DIR, 'input.f32')),
    x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  const m = await loadModel(DIR, { threads: 1 });
  const out = await onnxOutput(m, x, 2);
  expect(out.name).toBe('pooler_output');
  const ours = await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)], { pooling: 'pooler' });
  const { diff, scale } = maxDiff(out.data, ours);
  expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
  await m.dispose();
});

test("a model without the pooler refuses pooling 'pooler' by name", async () => {
  const m = await loadModel(path.join(MODELS, 'h33-timm'), { threads: 1 });
  await expect(m.embed(new Float32Array(m.inputSize), { pooling: 'pooler' })).rejects.toThrow(
    /pooling 'pooler' needs Hugging Face's pooler .*; this model has none/,
  );
  await expect(m.embed(new Float32Array(m.inputSize), { pooling: 'max' as never })).rejects.toThrow(
    /pooling must be 'cls', 'mean', 'pooler' or 'head', got "max"/,
  );
  await m.dispose();
});
