import v8 from 'node:v8';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import type { SimdFlavor } from '../src/runtime/kernels.js';
import { maxDiff, modelFixtures, referenceTrace } from './helpers.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // so the relaxed (FMA) build is held to the same bar

describe.each(['simd', 'relaxed'] as SimdFlavor[])('ViT forward against PyTorch float64 (%s build)', (simd) => {
  for (const f of modelFixtures()) {
    test(`${f.name} (${f.dtype})`, async () => {
      const model = await loadModel(f.dir, { threads: 1, simd });
      try {
        expect(model.simd).toBe(simd);
        // fixture names: <shape>-<scheme>, or <shape>-<family>-<scheme>[-variant] (h40-deit-hf)
        const [, a, b] = f.name.split('-');
        const family = a === 'deit' ? 'deit' : 'vit';
        expect([model.family, model.scheme]).toEqual([family, family === 'vit' ? a : b]);
        expect(model.config.layerNormEps).toBe(f.eps);
        const logits = await model.forward(f.input, f.batch);
        const { diff, scale } = maxDiff(logits, f.logits);
        console.log(
          `${f.name} ${simd}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
        );
        expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
        // each image alone gives the same bits as in the batch
        const n = f.input.length / f.batch,
          L = logits.length / f.batch;
        const one = await model.forward(f.input.slice(n, 2 * n), 1);
        expect(Array.from(one)).toEqual(Array.from(logits.subarray(L, 2 * L)));
      } finally {
        await model.dispose();
      }
    });
  }
});

test("keepAttention exposes every layer's attention maps, equal to PyTorch's for every image", async () => {
  const [f] = modelFixtures().filter((x) => x.name === 'h40-hf');
  const ref = await referenceTrace(f.dir);
  const model = await loadModel(f.dir, { keepAttention: true });
  await model.forward(f.input, f.batch);
  const maps = model.attention(),
    c = model.config,
    T = (c.imageSize[0] / c.patchSize) * (c.imageSize[1] / c.patchSize) + 1,
    H = c.numHeads;
  expect(maps).toHaveLength(c.numLayers);
  maps.forEach((m, i) => {
    expect(m.length).toBe(f.batch * H * T * T);
    // image 0 against PyTorch's softmax(QKᵀ/√dh)
    const want = ref.get(`layers.${i}.probs`)!;
    expect(maxDiff(m.subarray(0, H * T * T), want).diff).toBeLessThanOrEqual(1e-5);
  });
  // the second image's maps equal those of a forward of that image alone
  const n = f.input.length / f.batch;
  await model.forward(f.input.slice(n), 1);
  const alone = model.attention();
  maps.forEach((m, i) => expect(Array.from(m.subarray(H * T * T))).toEqual(Array.from(alone[i])));
  await model.dispose();
});
