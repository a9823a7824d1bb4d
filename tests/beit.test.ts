// BEiT, from Hugging Face's own names and published config fields (per-layer relative position
// bias tables with mean pooling, as beit-base; one shared table with the cls token), against
// float64 references written from transformers' modeling_beit.py (tests/fixtures/generate.py
// beit): logits and the pooled embedding; the attention maps include the bias; the ONNX export
// adds it too; hostile checkpoints are refused by name.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { dirFiles, FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32, withTensor } from './helpers.js';

const DIR = path.join(FIXTURES, 'beit');
interface Expected {
  batch: number;
  logits: number[];
  pooled: number[];
}

const cases = fixtureDirs<Expected>(DIR).map((c) => ({ ...c, input: readF32(path.join(c.dir, 'input.f32')) }));

test('two: per-layer tables with mean pooling, a shared table with the cls token', () => {
  expect(cases.map((c) => c.name)).toEqual(['h33-beit-shared-cls', 'h40-beit']);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test('logits and the pooled embedding of the float64 reference, 1 and 2 threads; the trace and ONNX agree', async () => {
    for (const threads of [1, 2]) {
      const m = await loadModel(c.dir, { threads });
      expect(m.family).toBe('beit');
      const logits = await m.forward(c.input, c.exp.batch);
      const l = maxDiff(logits, c.exp.logits);
      console.log(
        `${name} (${threads} threads): max |ours - torch| = ${l.diff.toExponential(2)} (max |torch| ${l.scale.toFixed(2)})`,
      );
      expect(l.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, l.scale));
      const e = maxDiff(await m.embed([c.input.subarray(0, m.inputSize), c.input.subarray(m.inputSize)]), c.exp.pooled);
      expect(e.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, e.scale));
      const t = await m.trace(c.input.subarray(0, m.inputSize));
      expect(Array.from(t.logits.data)).toEqual(Array.from(logits.subarray(0, m.config.numLabels)));
      // the scores the trace shows are the ones softmax saw: the bias included
      const T = t.input.dims[0],
        s = t.layers[0].scores.data,
        a = t.layers[0].attention.data;
      let sum = 0,
        mx = -Infinity;
      for (let j = 0; j < T; j++) mx = Math.max(mx, s[j]);
      for (let j = 0; j < T; j++) sum += Math.exp(s[j] - mx);
      expect(Math.abs(Math.exp(s[3] - mx) / sum - a[3])).toBeLessThan(1e-5);
      await m.dispose();
    }
    const m = await loadModel(c.dir, { threads: 1 });
    const out = await onnxOutput(m, c.input, c.exp.batch);
    const o = maxDiff(out.data, await m.forward(c.input, c.exp.batch));
    expect(o.diff).toBeLessThanOrEqual(1e-4 * Math.max(1, o.scale));
    await m.dispose();
  });
});

const files = (name: string, edit?: (c: Record<string, unknown>) => void) => dirFiles(path.join(DIR, name), edit);

describe('hostile BEiT checkpoints are refused by name', () => {
  const table = (i: number) =>
    `beit.encoder.layer.${i}.attention.attention.relative_position_bias.relative_position_bias_table`;
  test.each([
    [
      'a table of the wrong size',
      withTensor(files('h40-beit'), table(1), [80, 2]),
      new RegExp(`'${table(1).replaceAll('.', '\\.')}' has shape \\[80,2\\], expected \\[84,2\\]`),
    ],
    [
      'a layer without its table',
      withTensor(files('h40-beit'), table(1), null),
      /missing tensor '.*layer\.1\..*relative_position_bias_table'/,
    ],
    [
      'use_shared_relative_position_bias without the shared table',
      files('h40-beit', (c) => Object.assign(c, { use_shared_relative_position_bias: true })),
      /use_shared_relative_position_bias=true, but there is no tensor 'beit\.encoder\.relative_position_bias\.relative_position_bias_table'/,
    ],
    [
      'a key bias (BEiT has none)',
      withTensor(files('h40-beit'), 'beit.encoder.layer.0.attention.attention.key.bias', [40]),
      /unexpected tensor\(s\) 'beit\.encoder\.layer\.0\.attention\.attention\.key\.bias'/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });

  test('a bias over limits.maxAttentionBiasBytes is refused before it is built, naming its size and the limit', async () => {
    // h33-beit-shared-cls: one shared table, 3 heads; at 896 px 16,385 tokens: 3.2 GB
    await expect(loadModel(path.join(DIR, 'h33-beit-shared-cls'), { threads: 1, imageSize: 896 })).rejects.toThrow(
      /the relative position bias at 896x896 \(1 table\(s\) × 3 heads × 16385² tokens: 3,221,618,700 bytes\) is over the limit of 1,073,741,824 \(limits\.maxAttentionBiasBytes\)/,
    );
    // per-layer tables count each: 2 layers × 2 heads at 25 px is 4 × 26² floats
    await expect(
      loadModel(path.join(DIR, 'h40-beit'), { threads: 1, limits: { maxAttentionBiasBytes: 4 * 26 * 26 * 4 - 1 } }),
    ).rejects.toThrow(/2 table\(s\) × 2 heads × 26² tokens: 10,816 bytes\) is over the limit of 10,815/);
  });

  test('a window that is not square is not resized (HF reads the grid transposed): refused by name', async () => {
    const f = files('h33-beit-shared-cls', (c) => Object.assign(c, { image_size: [28, 21] }));
    const shared = 'beit.encoder.relative_position_bias.relative_position_bias_table';
    // a table for the 4x3 window: (2·4 − 1)(2·3 − 1) + 3 = 38 rows
    await expect(loadModel(withTensor(f, shared, [38, 3]), { threads: 1, imageSize: 28 })).rejects.toThrow(
      /Hugging Face interpolates square grids only/,
    );
  });
});

// ---- other image sizes (tests/fixtures/generate.py beit-sizes) ----

interface Runs {
  runs: { image_size: [number, number]; input: string; batch: number; logits: number[] }[];
}
const sized = fixtureDirs<Runs>(path.join(FIXTURES, 'beit-sizes'));

describe('BEiT at other sizes: tables resized bilinearly, absolute positions bicubic, as transformers does', () => {
  test('two: per-layer tables with absolute positions, a shared table without', () => {
    expect(sized.map((c) => c.name)).toEqual(['h33-beit-shared', 'h40-beit-abs']);
  });

  test.each(sized.flatMap((c) => c.exp.runs.map((r) => [`${c.name} at ${r.image_size.join('x')}`, c.dir, r] as const)))(
    '%s: the float64 logits (1 and 2 threads); the ONNX export agrees',
    async (name, dir, r) => {
      const x = readF32(path.join(dir, r.input));
      for (const threads of [1, 2]) {
        const m = await loadModel(dir, { threads, imageSize: r.image_size });
        expect(m.config.imageSize).toEqual(r.image_size);
        const l = maxDiff(await m.forward(x, r.batch), r.logits);
        console.log(
          `${name} (${threads} threads): max |ours - torch| = ${l.diff.toExponential(2)} (max |torch| ${l.scale.toFixed(2)})`,
        );
        expect(l.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, l.scale));
        if (threads === 1) {
          const o = await onnxOutput(m, x, r.batch);
          expect(maxDiff(o.data, r.logits).diff).toBeLessThanOrEqual(1e-4 * Math.max(1, l.scale));
        }
        await m.dispose();
      }
    },
  );
});
