// quantize: f16 and int8 model directories, written in the Hugging Face layout from any scheme and
// read back by the loader; f16 conversion rounds as numpy does; int8 is symmetric per output channel.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { quantizeModel, quantizeRows, toF16 } from '../src/export/quantize.js';
import { loadModel } from '../src/index.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { modelFiles } from '../src/io/source.js';
import { WasmMemory } from '../src/runtime/memory.js';
import { FIXTURES, type Header, joinSafetensors, maxDiff, modelFixtures, splitSafetensors } from './helpers.js';

/** f16 bits → value, straight from the definition. */
function fromF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1,
    e = (h >> 10) & 0x1f,
    m = h & 0x3ff;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? Number.NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}

describe('f16 conversion', () => {
  test('every finite f16 value converts back to its own bits', () => {
    for (let h = 0; h < 0x10000; h++) {
      if (((h >> 10) & 0x1f) === 31) continue;
      expect(toF16(fromF16(h))).toBe(h === 0x8000 ? 0x8000 : h);
    }
  });

  test('halfway between two f16 values rounds to the even one; past the range is Infinity', () => {
    for (const h of [0x0001, 0x03ff, 0x0400, 0x3c00, 0x3c01, 0x7bfe, 0x1234]) {
      const mid = Math.fround((fromF16(h) + fromF16(h + 1)) / 2);
      if (mid !== (fromF16(h) + fromF16(h + 1)) / 2) continue; // not exact in f32: no tie
      expect(toF16(mid)).toBe(h & 1 ? h + 1 : h);
      expect(toF16(Math.fround(mid * (1 + 2 ** -20)))).toBe(h + 1);
    }
    expect(toF16(65504)).toBe(0x7bff);
    expect(toF16(1e6)).toBe(0x7c00);
    expect(toF16(-1e-9)).toBe(0x8000);
  });
});

test('int8 rows: the largest |w| of a row maps to ±127, every element within half a step', () => {
  const N = 5,
    K = 37,
    w = Float32Array.from(
      { length: N * K },
      (_, i) => Math.sin(i * 1.7) * (1 + (i % K === 3 ? 9 : 0)) * (i < K ? 0 : 1),
    );
  const { q, scale } = quantizeRows(w, N, K);
  expect(scale[0]).toBe(1); // an all-zero row
  for (let n = 1; n < N; n++) {
    let m = 0;
    for (let k = 0; k < K; k++) {
      m = Math.max(m, Math.abs(q[n * K + k]));
      expect(Math.abs(q[n * K + k] * scale[n] - w[n * K + k])).toBeLessThanOrEqual(scale[n] / 2 + 1e-7);
    }
    expect(m).toBe(127);
  }
});

describe('quantized fixtures load and stay close to f32', () => {
  // the Hugging Face ViT layout quantize writes has no mean pooling and no DeiT: those are refused, below
  for (const f of modelFixtures().filter((x) => !x.name.includes('-timm-avg') && !x.name.includes('-deit'))) {
    test(f.name, async () => {
      const ref = await loadModel(f.dir, { threads: 1 });
      const want = await ref.forward(f.input, f.batch);
      await ref.dispose();
      for (const to of ['f16', 'int8'] as const) {
        const files = await quantizeModel(await modelFiles(f.dir), new WasmMemory(false), to);
        const header = await readSafetensorsHeader(
          await (await modelFiles(files as Record<string, Uint8Array | string>)).open('model.safetensors'),
        );
        // written in Hugging Face names whatever the source scheme
        expect(header.has('vit.encoder.layer.0.intermediate.dense.weight')).toBe(true);
        expect(header.get('vit.encoder.layer.0.intermediate.dense.weight')!.dtype).toBe(to === 'int8' ? 'I8' : 'F16');
        const m = await loadModel(files, { threads: 1 });
        const got = await m.forward(f.input, f.batch);
        await m.dispose();
        const { diff, scale } = maxDiff(got, want);
        // f16 keeps 11 significant bits; int8 weights 8 (bars from the measured 2e-3 and 2.4e-2 worst)
        // measured worst over the 15 fixtures: f16 7.9e-4, int8 (weights only) 1.9e-2 of the logit scale
        expect(diff / scale).toBeLessThan(to === 'f16' ? 5e-3 : 5e-2);
      }
    });
  }
});

test("a model that pools the mean of its patch tokens is refused by name (the HF layout cannot say it), and loads with weights: 'int8'", async () => {
  const f = modelFixtures().find((x) => x.name === 'h40-timm-avg')!;
  await expect(quantizeModel(await modelFiles(f.dir), new WasmMemory(false), 'int8')).rejects.toThrow(
    /quantize: this model has a head on the mean of the patch tokens \(timm's global_pool\), .*load it with \{ weights: 'int8' \} instead/,
  );
  const m = await loadModel(f.dir, { threads: 1, weights: 'int8' });
  const { diff, scale } = maxDiff(await m.forward(f.input, f.batch), f.logits);
  await m.dispose();
  expect(diff / scale).toBeLessThan(6e-2);
});

describe('int8 files: what the loader reads, and what it refuses', () => {
  async function int8Files() {
    const f = modelFixtures().find((x) => x.name === 'h40-hf')!;
    return (await quantizeModel(await modelFiles(f.dir), new WasmMemory(false), 'int8')) as Record<
      string,
      Uint8Array | string
    >;
  }
  /** The file with its header edited (the data as it was). */
  function edit(bytes: Uint8Array, fn: (h: Header) => void) {
    const { header, data } = splitSafetensors(bytes);
    fn(header);
    return joinSafetensors(header, data);
  }
  const W = 'vit.encoder.layer.1.output.dense.weight';

  test('an I8 weight stored [1, N, K] has one scale for all its rows (and loads like [N, K] with N equal scales)', async () => {
    // W's scales all set to the first one; the second file declares W [1, N, K] with a 1-element
    // scale, and gives the other scales' bytes (set to 7) to HF's unused pooler bias
    const base = await int8Files();
    const { header, data } = splitSafetensors(base['model.safetensors'] as Uint8Array);
    const sc = header[`${W}_scale`],
      [a, b] = sc.data_offsets,
      floats = new Float32Array(data.slice(a, b).buffer);
    floats.fill(floats[0]);
    const same = new Uint8Array(data);
    same.set(new Uint8Array(floats.buffer), a);
    const equal = { ...base, 'model.safetensors': joinSafetensors(header, same) };
    const h2: Header = JSON.parse(JSON.stringify(header));
    h2[W].shape = [1, ...h2[W].shape];
    h2[`${W}_scale`] = { dtype: 'F32', shape: [1], data_offsets: [a, a + 4] };
    h2['vit.pooler.dense.bias'] = { dtype: 'F32', shape: [(b - a - 4) / 4], data_offsets: [a + 4, b] };
    const other = new Uint8Array(same);
    new Float32Array(other.buffer, other.byteOffset + a + 4, (b - a - 4) / 4).fill(7); // not scales: never read as such
    const one = { ...base, 'model.safetensors': joinSafetensors(h2, other) };
    const f = modelFixtures().find((x) => x.name === 'h40-hf')!;
    for (const weights of ['f32', 'int8'] as const) {
      const outs: Float32Array[] = [];
      for (const files of [equal, one]) {
        const m = await loadModel(files, { threads: 1, weights });
        outs.push(await m.forward(f.input, f.batch));
        await m.dispose();
      }
      expect(Array.from(outs[1]), weights).toEqual(Array.from(outs[0]));
    }
  });

  test('an I8 weight without its scales', async () => {
    const files = await int8Files();
    files['model.safetensors'] = edit(files['model.safetensors'] as Uint8Array, (h) => {
      const s = h[`${W}_scale`];
      delete h[`${W}_scale`];
      h.__pad__ = { dtype: 'F32', shape: [s.shape[0]], data_offsets: s.data_offsets };
    });
    await expect(loadModel(files, { threads: 1 })).rejects.toThrow(
      `tensor '${W}' is I8 but has no '${W}_scale' tensor of 40 scales`,
    );
  });

  test('scales of the wrong count', async () => {
    const files = await int8Files();
    files['model.safetensors'] = edit(files['model.safetensors'] as Uint8Array, (h) => {
      h[`${W}_scale`].shape = [4, 10];
    });
    await expect(loadModel(files, { threads: 1 })).rejects.toThrow(
      `tensor '${W}_scale' must hold 40 float scales (one per row of '${W}'), has F32 [4,10]`,
    );
  });
});

test.each([
  [
    'clip/h40-clip',
    /the quickGelu activation and a layernorm before the first block \(CLIP\) and an image tower's projection/,
  ],
  ['siglip/h40-siglip', /no class token and an attention-pool head and the geluTanh activation/],
  ['beit/h40-beit', /a head on the mean of the patch tokens .* and LayerScale and a relative position bias \(BEiT\)/],
  [
    'dinov2/h40-dinov2reg-cls',
    /DINOv2.* and register tokens and LayerScale and position embeddings on some tokens only/,
  ],
  ['activations/h40-hf-relu', /this model has the relu activation/],
])('quantize refuses %s naming what its layout cannot say', async (dir, what) => {
  await expect(
    quantizeModel(await modelFiles(path.join(FIXTURES, dir)), new WasmMemory(false), 'int8'),
  ).rejects.toThrow(new RegExp(`vit-wasm: quantize: .*${what.source}.*cannot say yet`));
});
