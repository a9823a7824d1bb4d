// loadModel(…, { weights: 'int8' }): the encoder's linear layers on int8 weights (gemm_i8_4x8, whose
// kernel tests are in kernels-i8.test.ts). Close to f32, and bit-identical at every thread count.
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { maxDiff, modelFixtures } from './helpers.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('int8 weights', () => {
  for (const f of modelFixtures()) {
    test(f.name, async () => {
      const ref = await loadModel(f.dir, { threads: 1 });
      const want = await ref.forward(f.input, f.batch);
      await ref.dispose();
      for (const simd of ['simd', 'relaxed'] as const) {
        const outs: Float32Array[] = [];
        for (const threads of [1, 3]) {
          const m = await loadModel(f.dir, { threads, simd, weights: 'int8' });
          outs.push(await m.forward(f.input, f.batch));
          await m.dispose();
        }
        expect(bits(outs[1]), `${simd}: 3 threads differ from 1`).toEqual(bits(outs[0]));
        const { diff, scale } = maxDiff(outs[0], want);
        // measured worst over the 15 fixtures: 3.1e-2 of the logit scale (u7 activations, int8 weights)
        expect(diff / scale).toBeLessThan(6e-2);
        expect(diff).toBeGreaterThan(0); // the int8 path really ran
      }
    });
  }

  test('trace runs the same int8 forward; a bad weights option is named', async () => {
    const f = modelFixtures().find((x) => x.name === 'h40-hf')!;
    const m = await loadModel(f.dir, { threads: 2, weights: 'int8' });
    const one = f.input.subarray(0, f.input.length / f.batch);
    const logits = await m.forward(one.slice(), 1);
    expect(bits((await m.trace(one.slice())).logits.data)).toEqual(bits(logits));
    await m.dispose();
    await expect(loadModel(f.dir, { weights: 'int4' as never })).rejects.toThrow(
      `weights must be 'f32' or 'int8', got "int4"`,
    );
  });
});
