// loadModel(…, { weights: 'int8' }): the encoder's linear layers on int8 weights (gemm_i8_4x8, whose
// kernel tests are in kernels-i8.test.ts). Close to f32, and bit-identical at every thread count.
import { describe, expect, test } from 'vitest';
import { quantizeModel } from '../src/export/quantize.js';
import { loadModel } from '../src/index.js';
import { modelFiles } from '../src/io/source.js';
import { WasmMemory } from '../src/runtime/memory.js';
import { packWeightI8, unpackWeightI8 } from '../src/runtime/pack.js';
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

  test('an int8 file (vit-wasm quantize) runs on its own integers: the same bits as quantizing its f32 source at load', async () => {
    for (const name of ['h40-hf', 'h48-timm']) {
      const f = modelFixtures().find((x) => x.name === name)!;
      // patch embedding and classifier kept f32: they are dequantized at load, the encoder is not
      const files = (await quantizeModel(await modelFiles(f.dir), new WasmMemory(false), 'int8', {
        patch: false,
        head: false,
      })) as Record<string, Uint8Array | string>;
      const outs: Float32Array[] = [];
      for (const src of [f.dir, files]) {
        const m = await loadModel(src, { threads: 2, weights: 'int8' });
        outs.push(await m.forward(f.input, f.batch));
        await m.dispose();
      }
      expect(bits(outs[1]), name).toEqual(bits(outs[0]));
    }
  });

  test('packed int8 weights unpack to the rows they came from, at panel and quad edges', () => {
    for (const N of [1, 7, 8, 9, 17])
      for (const K of [1, 3, 4, 5, 37]) {
        const q = Int8Array.from({ length: N * K }, (_, i) => ((i * 37) % 255) - 127);
        const { wq, wsum, Kp } = packWeightI8(q, N, K);
        expect(Kp % 4).toBe(0);
        expect(Array.from(unpackWeightI8(wq, N, K)), `N=${N} K=${K}`).toEqual(Array.from(q));
        for (let n = 0; n < N; n++) expect(wsum[n]).toBe(q.subarray(n * K, (n + 1) * K).reduce((a, b) => a + b, 0));
      }
  });

  test('a model holding int8 weights only exports them dequantized (export-onnx, quantize)', async () => {
    const f = modelFixtures().find((x) => x.name === 'h40-hf')!;
    const files = (await quantizeModel(await modelFiles(f.dir), new WasmMemory(false), 'int8')) as Record<
      string,
      Uint8Array | string
    >;
    const f32 = await loadModel(files, { threads: 1 }), // dequantized at load
      i8 = await loadModel(files, { threads: 1, weights: 'int8' }); // int8 only
    // the same graph and weights, byte for byte: the int8 layers' f32 weights are scale · q either way
    expect(Buffer.from(i8.toOnnx()).equals(Buffer.from(f32.toOnnx()))).toBe(true);
    await f32.dispose();
    await i8.dispose();
  });
});
