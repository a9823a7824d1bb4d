// DINOv2 and DINOv2 with registers, from Hugging Face's own names and published config fields,
// against float64 references written from transformers' modeling_dinov2*.py
// (tests/fixtures/generate.py dinov2): each checkpoint at its own size and at others (positions
// resized bicubic, or antialiased with registers), logits where it has a classifier, its pooler
// output (the cls token) and the mean of its patch tokens; int8 weights keep LayerScale; the trace
// shows the registers; and hostile checkpoints are refused by name.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createTrainer, loadModel } from '../src/index.js';
import { dirFiles, FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32, withTensor } from './helpers.js';

const DIR = path.join(FIXTURES, 'dinov2');

interface Run {
  image_size: [number, number];
  input: string;
  batch: number;
  cls: number[];
  mean: number[];
  logits: number[] | null;
}

const cases = fixtureDirs<{ runs: Run[] }>(DIR).map(({ name, dir, exp }) => ({ name, dir, runs: exp.runs }));

function close(name: string, ours: Float32Array, torch: number[]): void {
  const { diff, scale } = maxDiff(ours, torch);
  console.log(`${name}: max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
  expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
}

test('six checkpoints: with and without registers, with and without a classifier, SwiGLU (giant) with and without', () => {
  expect(cases.map((c) => c.name)).toEqual([
    'h33-dinov2-cls',
    'h33-dinov2reg-swiglu-cls',
    'h40-dinov2',
    'h40-dinov2-swiglu',
    'h40-dinov2reg-cls',
    'h48-dinov2reg',
  ]);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test.each(c.runs.map((r) => [`${r.image_size[0]}x${r.image_size[1]}`, r] as const))(
    'at %s: logits, pooler output and patch mean of the float64 reference (1 and 2 threads)',
    async (size, r) => {
      const x = readF32(path.join(c.dir, r.input));
      for (const threads of [1, 2]) {
        const m = await loadModel(c.dir, { threads, imageSize: r.image_size });
        expect(m.family).toBe('dinov2');
        expect(m.config.imageSize).toEqual(r.image_size);
        const images = [x.subarray(0, m.inputSize), x.subarray(m.inputSize)];
        if (r.logits) close(`${name} at ${size}, logits (${threads} threads)`, await m.forward(x, r.batch), r.logits);
        else await expect(m.forward(x, r.batch)).rejects.toThrow(/no classifier.*model\.embed/);
        close(`${name} at ${size}, pooler output`, await m.embed(images), r.cls);
        close(`${name} at ${size}, cls`, await m.embed(images, { pooling: 'cls' }), r.cls);
        close(`${name} at ${size}, patch mean`, await m.embed(images, { pooling: 'mean' }), r.mean);
        await m.dispose();
      }
    },
  );
});

test('int8 weights keep LayerScale: close to the f32 logits (a dropped γ moves them by far more)', async () => {
  const c = cases.find((k) => k.name === 'h40-dinov2reg-cls')!,
    r = c.runs[0];
  const x = readF32(path.join(c.dir, r.input));
  const m = await loadModel(c.dir, { threads: 1, weights: 'int8' });
  const { diff, scale } = maxDiff(await m.forward(x, r.batch), r.logits!);
  console.log(
    `int8 DINOv2 with registers: max |int8 - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
  );
  expect(diff).toBeLessThanOrEqual(0.05 * scale);
  await m.dispose();
});

test('the trace shows the registers as tokens without a position embedding, and gives the forward logits', async () => {
  const c = cases.find((k) => k.name === 'h40-dinov2reg-cls')!,
    r = c.runs[0];
  const x = readF32(path.join(c.dir, r.input));
  const m = await loadModel(c.dir, { threads: 1 });
  const t = await m.trace(x.subarray(0, m.inputSize));
  const D = m.config.hiddenSize;
  expect(t.registerTokens?.dims).toEqual([4, D]);
  expect(t.positionEmbeddings.dims).toEqual([1 + 4 + 25, D]);
  for (let row = 1; row <= 4; row++)
    expect(Array.from(t.positionEmbeddings.data.subarray(row * D, (row + 1) * D)).every((v) => v === 0)).toBe(true);
  expect(Array.from(t.logits.data)).toEqual(
    Array.from((await m.forward(x, r.batch)).subarray(0, t.logits.data.length)),
  );
  await m.dispose();
});

describe('SwiGLU (DINOv2-giant) through every path', () => {
  const c = cases.find((k) => k.name === 'h33-dinov2reg-swiglu-cls')!,
    r = c.runs[0],
    x = readF32(path.join(c.dir, r.input));

  test("the trace: fc1's 2M outputs, silu(first half) ⊙ second half, and the forward's logits", async () => {
    const m = await loadModel(c.dir, { threads: 1 });
    expect(m.config.arch).toMatchObject({ mlp: 'gated', activation: 'silu' });
    const M = m.config.intermediateSize,
      t = await m.trace(x.subarray(0, m.inputSize)),
      T = t.input.dims[0];
    expect(M).toBe(72);
    const { mlpPreActivation: u, mlpHidden: h } = t.layers[1];
    expect(u.dims).toEqual([T, 2 * M]);
    expect(h.dims).toEqual([T, M]);
    for (let i = 0; i < T; i++)
      for (let j = 0; j < M; j++) {
        const a = u.data[i * 2 * M + j],
          want = (a / (1 + Math.exp(-a))) * u.data[i * 2 * M + M + j];
        expect(Math.abs(h.data[i * M + j] - want)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(want)));
      }
    expect(Array.from(t.logits.data)).toEqual(
      Array.from((await m.forward(x, r.batch)).subarray(0, t.logits.data.length)),
    );
    await m.dispose();
  });

  test('int8 weights: close to the float64 logits', async () => {
    const m = await loadModel(c.dir, { threads: 2, weights: 'int8' });
    const { diff, scale } = maxDiff(await m.forward(x, r.batch), r.logits!);
    console.log(`int8 SwiGLU: max |int8 - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`);
    expect(diff).toBeLessThanOrEqual(0.05 * scale);
    await m.dispose();
  });

  test('the ONNX export (onnxruntime-node): the logits; headless, the pooler output', async () => {
    for (const [name, want, out] of [
      [c.name, r.logits!, 'logits'],
      ['h40-dinov2-swiglu', null, 'pooler_output'],
    ] as const) {
      const k = cases.find((e) => e.name === name)!,
        run = k.runs[0],
        input = readF32(path.join(k.dir, run.input));
      const m = await loadModel(k.dir, { threads: 1, imageSize: run.image_size });
      const got = await onnxOutput(m, input, run.batch);
      expect(got.name).toBe(out);
      const { diff, scale } = maxDiff(got.data, want ?? run.cls);
      expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      await m.dispose();
    }
  });

  test('training refuses it by name', async () => {
    const m = await loadModel(c.dir, { threads: 1 });
    await expect(createTrainer(m.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(/a gated MLP \(SwiGLU\)/);
    // the model itself, not its config: said, not a TypeError
    await expect(createTrainer(m as never, { threads: 1 })).rejects.toThrow(
      /dims\.imageSize must be \[height, width\]/,
    );
    await m.dispose();
  });
});

const files = (name: string, edit?: (c: Record<string, unknown>) => void) => dirFiles(path.join(DIR, name), edit);

describe('hostile DINOv2 checkpoints are refused by name', () => {
  test.each([
    [
      'use_swiglu_ffn on a plain MLP',
      files('h40-dinov2', (c) => {
        c.use_swiglu_ffn = true;
      }),
      /use_swiglu_ffn=true, but the checkpoint has tensor 'encoder\.layer\.0\.mlp\.fc1\.weight' \(the plain MLP\), not 'encoder\.layer\.0\.mlp\.weights_in\.weight'/,
    ],
    [
      'SwiGLU tensors without use_swiglu_ffn',
      files('h40-dinov2-swiglu', (c) => {
        c.use_swiglu_ffn = false;
      }),
      /use_swiglu_ffn=false, but the checkpoint has tensor 'encoder\.layer\.0\.mlp\.weights_in\.weight' \(a SwiGLU MLP\)/,
    ],
    [
      'use_swiglu_ffn not a boolean',
      files('h40-dinov2-swiglu', (c) => {
        c.use_swiglu_ffn = 'yes';
      }),
      /use_swiglu_ffn must be true or false, got "yes"/,
    ],
    [
      "SwiGLU's mlp_ratio against weights_in (⅔ of int(D·ratio), to a multiple of 8, twice)",
      files('h40-dinov2-swiglu', (c) => {
        c.mlp_ratio = 3;
      }),
      /mlp_ratio=3, but tensor 'encoder\.layer\.0\.mlp\.weights_in\.weight' has 224 rows for hidden size 40/,
    ],
    [
      "weights_out reading other than half of weights_in's rows",
      withTensor(files('h40-dinov2-swiglu'), 'encoder.layer.1.mlp.weights_out.weight', [40, 224]),
      /'encoder\.layer\.1\.mlp\.weights_out\.weight' has shape \[40,224\], expected \[40,112\]/,
    ],
    [
      'num_register_tokens against the tensor',
      files('h48-dinov2reg', (c) => {
        c.num_register_tokens = 4;
      }),
      /num_register_tokens=4, but tensor 'embeddings\.register_tokens' has shape \[1,1,48\] \(1 registers\)/,
    ],
    [
      'mlp_ratio against fc1',
      files('h40-dinov2', (c) => {
        c.mlp_ratio = 4;
      }),
      /mlp_ratio=4, but tensor 'encoder\.layer\.0\.mlp\.fc1\.weight' has 100 rows for hidden size 40/,
    ],
    [
      'register tokens of a wrong shape',
      withTensor(files('h48-dinov2reg'), 'embeddings.register_tokens', [2, 48]),
      /'embeddings\.register_tokens' has shape \[2,48\], expected \[1, registers/,
    ],
    [
      'too many register tokens',
      withTensor(files('h48-dinov2reg'), 'embeddings.register_tokens', [1, 65, 48]),
      /'embeddings\.register_tokens' has shape \[1,65,48\], expected \[1, registers \(1 to 64\)/,
    ],
    [
      "a layer's LayerScale missing",
      withTensor(files('h40-dinov2'), 'encoder.layer.1.layer_scale2.lambda1', null),
      /missing tensor 'encoder\.layer\.1\.layer_scale2\.lambda1'/,
    ],
    [
      'a LayerScale of the wrong size',
      withTensor(files('h40-dinov2'), 'encoder.layer.0.layer_scale1.lambda1', [41]),
      /'encoder\.layer\.0\.layer_scale1\.lambda1' has shape \[41\], expected \[40\]/,
    ],
    [
      'a classifier on the cls token alone (D inputs, not 2D)',
      withTensor(files('h33-dinov2-cls'), 'classifier.weight', [11, 33]),
      /'classifier\.weight' has shape \[11,33\], expected \[num_labels, 66: the cls token and the mean of the patch tokens, 33 each\]/,
    ],
    [
      'positions for another grid than image_size',
      files('h40-dinov2', (c) => {
        c.image_size = 30;
      }),
      /image_size 30x30 with patch_size 5 gives 36 patches \+ cls = 37 positions, but .* \(26 positions\)/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });

  test('an image size off the patch grid, or non-square, is refused naming the size', async () => {
    await expect(loadModel(files('h40-dinov2'), { threads: 1, imageSize: 22 })).rejects.toThrow(
      /imageSize 22x22: each side must be a multiple of the patch size 5/,
    );
  });

  test('a DINOv2 trains from its checkpoint only (tests/finetune.test.ts fine-tunes one)', async () => {
    const m = await loadModel(path.join(DIR, 'h33-dinov2-cls'), { threads: 1 });
    await expect(createTrainer(m.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(
      /this arch \(a family other than the plain ViT\) is trained from its checkpoint only: fine-tune it with options\.from/,
    );
    await m.dispose();
  });
});

test("a DINOv2 directory with its BiT processor runs at the processor's crop, as Dinov2Model does", async () => {
  const f = files('h40-dinov2');
  f['preprocessor_config.json'] = JSON.stringify({
    image_processor_type: 'BitImageProcessor',
    size: { shortest_edge: 23 },
    resample: 3,
    do_center_crop: true,
    crop_size: { height: 20, width: 20 },
    image_mean: [0.485, 0.456, 0.406],
    image_std: [0.229, 0.224, 0.225],
  });
  const m = await loadModel(f, { threads: 1 });
  expect(m.config.imageSize).toEqual([20, 20]); // the checkpoint's 25 px positions, resized to the crop
  expect(m.preprocessing.size).toEqual([20, 20]);
  const photo = path.join(FIXTURES, 'images', 'chelsea.png');
  const pixels = await m.pixels(photo);
  expect(pixels.length).toBe(3 * 20 * 20);
  // the same run as the fixture's at 20x20 (checked against PyTorch above) on the processed photo
  const at20 = await loadModel(path.join(DIR, 'h40-dinov2'), { threads: 1, imageSize: 20 });
  expect(await m.embed(photo)).toEqual(await at20.embed(pixels));
  // asked for another size, the crop follows it and the resize before it scales alike
  const at30 = await loadModel(f, { threads: 1, imageSize: 30 });
  expect(at30.preprocessing.size).toEqual([30, 30]);
  expect(at30.preprocessing.resizeTo).toEqual({ shortestEdge: 35 });
  await Promise.all([m.dispose(), at20.dispose(), at30.dispose()]);
});
