import v8 from 'node:v8';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import type { SimdFlavor } from '../src/kernels.js';
import { maxDiff, modelFixtures } from './helpers.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // so the relaxed (FMA) build is held to the same bar

describe.each(['simd', 'relaxed'] as SimdFlavor[])('ViT forward against PyTorch float64 (%s build)', (simd) => {
  for (const f of modelFixtures()) {
    test(`${f.name} (${f.dtype})`, async () => {
      const model = await loadModel(f.dir, { threads: 1, simd });
      try {
        expect(model.simd).toBe(simd);
        expect(model.scheme).toBe(f.name.split('-')[1]);
        expect(model.config.layerNormEps).toBe(f.eps);
        const logits = await model.forward(f.input, f.batch);
        const { diff, scale } = maxDiff(logits, f.logits);
        console.log(`${f.name} ${simd}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
        expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
        // each image alone gives the same bits as in the batch
        const n = f.input.length / f.batch, L = logits.length / f.batch;
        const one = await model.forward(f.input.slice(n, 2 * n), 1);
        expect(Array.from(one)).toEqual(Array.from(logits.subarray(L, 2 * L)));
      } finally {
        await model.dispose();
      }
    });
  }
});

test('keepAttention exposes every layer\'s attention maps; rows sum to 1', async () => {
  const [f] = modelFixtures().filter((x) => x.name === 'h40-hf');
  const model = await loadModel(f.dir, { keepAttention: true });
  await model.forward(f.input, f.batch);
  const maps = model.attention();
  const T = 21, H = 2;
  expect(maps).toHaveLength(2);
  for (const m of maps) {
    expect(m.length).toBe(f.batch * H * T * T);
    for (let r = 0; r < f.batch * H * T; r++) expect(m.subarray(r * T, (r + 1) * T).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
  }
  await model.dispose();
});
