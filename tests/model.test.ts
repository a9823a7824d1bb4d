import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { maxDiff, modelFixtures } from './helpers.js';

describe('ViT forward against PyTorch float64', () => {
  for (const f of modelFixtures()) {
    test(`${f.name} (${f.dtype})`, async () => {
      const model = await loadModel(f.dir, { threads: 1, simd: 'simd' });
      try {
        expect(model.scheme).toBe(f.name.split('-')[1]);
        expect(model.config.layerNormEps).toBe(f.eps);
        const logits = await model.forward(f.input, f.batch);
        const { diff, scale } = maxDiff(logits, f.logits);
        console.log(`${f.name}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
        expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      } finally {
        await model.dispose();
      }
    });
  }
});
