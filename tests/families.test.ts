// What the loader does with checkpoints of the ViT's relatives before their families are
// supported: every config field that would change the arithmetic is refused naming the field and
// the feature (timm's global_pool='avg' used to load and give wrong logits); tensors of a related
// family are refused naming the feature they belong to; a checkpoint of another family says what
// config.json says it is; timm hub configs get their head count from the architecture name.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import { createTrainer, loadModel } from '../src/index.js';
import { VIT } from '../src/io/families/vit.js';
import { PRESETS, randomModelFiles } from '../src/io/presets.js';
import { joinSafetensors, MODELS, maxDiff, modelFixtures, repack, splitSafetensors } from './helpers.js';

type Files = Record<string, Uint8Array | string>;

function fixture(name: string): Files {
  const dir = path.join(MODELS, name),
    files: Files = {};
  for (const f of readdirSync(dir)) files[f] = new Uint8Array(readFileSync(path.join(dir, f)));
  return files;
}

function withConfig(files: Files, edit: (c: Record<string, unknown>) => void): Files {
  const c = JSON.parse(new TextDecoder().decode(files['config.json'] as Uint8Array));
  edit(c);
  return { ...files, 'config.json': JSON.stringify(c) };
}

/** `files` with extra tensors (zeros of the given shapes) in model.safetensors. */
function withExtraTensors(files: Files, extra: Record<string, number[]>): Files {
  const { header, data } = splitSafetensors(files['model.safetensors'] as Uint8Array);
  const bytes: Record<string, Uint8Array> = {};
  for (const [name, shape] of Object.entries(extra)) {
    const n = 4 * shape.reduce((x, y) => x * y, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [0, n] };
    bytes[name] = new Uint8Array(n);
  }
  return { ...files, 'model.safetensors': repack(header, data, bytes) };
}

describe('config fields that change the arithmetic are honoured or refused by name', () => {
  // Hugging Face's names: none of the other values is computed in them (timm's names add
  // global_pool 'avg' and fc_norm: tests/model.test.ts runs those fixtures)
  const timm = fixture('h40-hf');
  const other: Record<string, unknown> = {
    global_pool: 'avg',
    fc_norm: true,
    class_token: false,
    no_embed_class: true,
    reg_tokens: 4,
    init_values: 1e-5,
    pre_norm: true,
    final_norm: false,
    qk_norm: true,
    scale_attn_norm: true,
    scale_mlp_norm: true,
    proj_bias: false,
    pos_embed: 'none',
    pool_include_prefix: true,
    act_layer: 'quick_gelu',
    norm_layer: 'rmsnorm',
    embed_norm_layer: 'layernorm',
    pooler_act: 'relu',
  };

  test('every rule of the plain ViT has a case here', () => {
    expect(Object.keys(other).sort()).toEqual(VIT.configRules.map((r) => r.field).sort());
  });

  test.each(Object.entries(other))(
    '%s: %j is refused naming the field, at the top level and in model_args',
    async (field, v) => {
      const feature = VIT.configRules.find((r) => r.field === field)!.feature.replace(/[()]/g, '.');
      for (const [files, prefix] of [
        [withConfig(timm, (c) => Object.assign(c, { [field]: v })), ''],
        [withConfig(timm, (c) => Object.assign(c, { model_args: { [field]: v } })), 'model_args\\.'],
      ] as const)
        await expect(loadModel(files, { threads: 1 })).rejects.toThrow(
          new RegExp(
            `config\\.json: ${prefix}${field} ${JSON.stringify(v).replace(/[.+]/g, '\\$&')} asks for ${feature}, which vit-wasm does not support yet`,
          ),
        );
    },
  );

  test("timm's names compute global_pool 'avg' and 'map' but no other pooling", async () => {
    const files = withConfig(fixture('h40-timm'), (c) => Object.assign(c, { global_pool: 'max' }));
    await expect(loadModel(files, { threads: 1 })).rejects.toThrow(
      /config\.json: global_pool "max" asks for pooling other than the class token .* \(vit-wasm computes "token" or "avg" or "map" in timm's names, or the field left out\)/,
    );
  });

  test("the values the plain ViT computes load, with the logits of the fixture's own config", async () => {
    const plain = await loadModel(timm, { threads: 1 });
    const x = new Float32Array(plain.inputSize).map((_, i) => Math.sin(i));
    const want = await plain.forward(x);
    await plain.dispose();
    const same = withConfig(timm, (c) =>
      Object.assign(c, {
        global_pool: 'token',
        class_token: true,
        reg_tokens: 0,
        init_values: null,
        fc_norm: null,
        dynamic_img_size: true,
        model_args: { global_pool: 'token', pre_norm: false, act_layer: 'gelu' },
      }),
    );
    const m = await loadModel(same, { threads: 1 });
    expect(await m.forward(x)).toEqual(want);
    await m.dispose();
  });
});

describe("tensors of the ViT's relatives are refused naming their feature", () => {
  const cases: [string, Files, RegExp][] = [
    [
      "a distillation token on a ViT's position embeddings (a DeiT needs one more)",
      withExtraTensors(fixture('h40-timm'), {
        dist_token: [1, 1, 40],
        'head_dist.weight': [7, 40],
        'head_dist.bias': [7],
      }),
      /image_size 20x25 with patch_size 5 gives 20 patches \+ cls, dist = 22 positions, but .* 'pos_embed' has shape \[1,21,40\]/,
    ],
    [
      "LayerScale in a Hugging Face ViT's names (its ViT has none; timm's and DINOv2's are read)",
      withExtraTensors(fixture('h40-hf'), {
        'vit.encoder.layer.0.layer_scale1.lambda1': [40],
        'vit.encoder.layer.0.layer_scale2.lambda1': [40],
      }),
      /'vit\.encoder\.layer\.0\.layer_scale1\.lambda1', 'vit\.encoder\.layer\.0\.layer_scale2\.lambda1': LayerScale .*: not supported yet/,
    ],
    [
      "register tokens in a Hugging Face ViT's names",
      withExtraTensors(fixture('h40-hf'), { 'vit.embeddings.register_tokens': [1, 4, 40] }),
      /'vit\.embeddings\.register_tokens': register tokens: not supported yet/,
    ],
    [
      "register tokens in torchvision's names",
      withExtraTensors(fixture('h40-torchvision'), { reg_token: [1, 4, 40] }),
      /'reg_token': register tokens: not supported yet/,
    ],
    [
      'fc_norm with mean pooling',
      withExtraTensors(fixture('h40-timm'), { 'fc_norm.weight': [40], 'fc_norm.bias': [40] }),
      /'fc_norm\.weight', 'fc_norm\.bias': the final norm after pooling \(fc_norm\): not supported yet/,
    ],
  ];
  test.each(cases)('%s', async (_, files, error) => {
    await expect(loadModel(files, { threads: 1 })).rejects.toThrow(error);
  });
});

test('a checkpoint of another family says what config.json says it is', async () => {
  const files: Files = {
    'model.safetensors': joinSafetensors(
      { 'dinov2.embeddings.cls_token': { dtype: 'F32', shape: [1], data_offsets: [0, 4] } },
      new Uint8Array(4),
    ),
    'config.json': JSON.stringify({ model_type: 'dinov2', architectures: ['Dinov2Model'] }),
  };
  await expect(loadModel(files, { threads: 1 })).rejects.toThrow(
    /not a ViT checkpoint vit-wasm recognises .*; config\.json says model_type "dinov2", architectures Dinov2Model: that model is not one vit-wasm loads yet/,
  );
});

describe("timm hub configs: the head count from the architecture's name", () => {
  const shape = { ...PRESETS['deit-tiny'], numLayers: 1, imageSize: [32, 32] as [number, number], numLabels: 4 };
  const hf = randomModelFiles(shape, 3);
  const timmConfig = (architecture: string) => ({
    ...hf,
    'config.json': JSON.stringify({
      architecture,
      num_classes: 4,
      num_features: 192,
      global_pool: 'token',
      image_size: 32,
      patch_size: 16,
    }),
  });

  test('vit_tiny_* is 3 heads of 64, the same logits as a config that says so', async () => {
    const a = await loadModel(hf, { threads: 1 });
    const b = await loadModel(timmConfig('vit_tiny_patch16_224.augreg_in21k_ft_in1k'), { threads: 1 });
    expect(b.config.numHeads).toBe(3);
    const x = new Float32Array(a.inputSize).map((_, i) => Math.cos(i));
    expect(await b.forward(x)).toEqual(await a.forward(x));
    await Promise.all([a.dispose(), b.dispose()]);
  });

  test('a name whose width differs from the weights is refused, naming both', async () => {
    await expect(loadModel(timmConfig('vit_small_patch16_224'), { threads: 1 })).rejects.toThrow(
      /num_attention_heads is missing, and architecture "vit_small_patch16_224" \(small: width 384, 6 heads\) does not match the weights' hidden size 192/,
    );
    await expect(loadModel(timmConfig('vit_constructor_x'), { threads: 1 })).rejects.toThrow(
      /num_attention_heads is missing \(it cannot be read off the weights\)/,
    );
  });
});

describe("timm's global_pool='avg' through every path (fixtures by tests/fixtures/generate.py pool)", () => {
  const fixtures = modelFixtures().filter((f) => f.name.includes('-timm-avg'));
  const expected = (f: { dir: string }) => JSON.parse(readFileSync(path.join(f.dir, 'expected.json'), 'utf8'));

  test("there are two: fc_norm after the mean (timm's default), and the norm on the tokens", () => {
    expect(fixtures.map((f) => f.name)).toEqual(['h33-timm-avgnorm', 'h40-timm-avg']);
  });

  test.each(fixtures.map((f) => [f.name, f] as const))(
    "%s: embed() is what the head reads, against PyTorch float64; trace has the forward's bits",
    async (_, f) => {
      const m = await loadModel(f.dir, { threads: 2 });
      expect(m.config.arch?.pooling).toBe('mean');
      const C = m.inputSize;
      const emb = await m.embed(Array.from({ length: f.batch }, (_, b) => f.input.slice(b * C, (b + 1) * C)));
      const want: number[] = expected(f).embeddings;
      const { diff, scale } = maxDiff(emb, want);
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      expect(await m.embed(f.input.slice(0, C), { pooling: 'mean' })).toEqual(emb.slice(0, m.config.hiddenSize));
      const trace = await m.trace(f.input.slice(0, C));
      expect(trace.logits.data).toEqual((await m.forward(f.input.slice(0, C))).slice(0, m.config.numLabels));
      expect(trace.clsOutput.data).toEqual(emb.slice(0, m.config.hiddenSize));
      const cls: number[] | undefined = expected(f).cls_embeddings;
      if (cls) {
        const got = await m.embed(f.input.slice(0, C), { pooling: 'cls' });
        const d = maxDiff(got, cls.slice(0, m.config.hiddenSize));
        expect(d.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, d.scale));
      } else
        await expect(m.embed(f.input.slice(0, C), { pooling: 'cls' })).rejects.toThrow(
          /embed: pooling 'cls' is not defined for this model: its final norm \(fc_norm\) is on the mean of its patch tokens/,
        );
      await m.dispose();
    },
  );

  test('training it from scratch is refused by name (a family trains from its checkpoint)', async () => {
    const m = await loadModel(fixtures[0].dir, { threads: 1 });
    await expect(createTrainer(m.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(
      /is trained from its checkpoint only: fine-tune it with options\.from/,
    );
    await m.dispose();
  });
});

describe('DeiT through every path (fixtures by tests/fixtures/generate.py deit)', () => {
  const fixtures = modelFixtures().filter((f) => f.name.includes('-deit'));
  const expected = (f: { dir: string }) => JSON.parse(readFileSync(path.join(f.dir, 'expected.json'), 'utf8'));

  test('three: the distilled head in Hugging Face and timm names, and the class token alone', () => {
    expect(fixtures.map((f) => f.name)).toEqual(['h33-deit-timm', 'h40-deit-hf', 'h48-deit-hf-cls']);
  });

  test.each(fixtures.map((f) => [f.name, f] as const))(
    "%s: two prefix tokens; embed() is the final-normed cls token, against PyTorch float64; trace has the forward's bits",
    async (name, f) => {
      const m = await loadModel(f.dir, { threads: 2 });
      expect(m.family).toBe('deit');
      expect(m.config.arch?.prefix).toEqual(['cls', 'dist']);
      expect(m.config.arch?.head).toBe(name.endsWith('-cls') ? 'linear' : 'distilled');
      const C = m.inputSize,
        D = m.config.hiddenSize;
      const emb = await m.embed(Array.from({ length: f.batch }, (_, b) => f.input.slice(b * C, (b + 1) * C)));
      const { diff, scale } = maxDiff(emb, expected(f).embeddings);
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      const trace = await m.trace(f.input.slice(0, C));
      expect(trace.logits.data).toEqual((await m.forward(f.input.slice(0, C))).slice(0, m.config.numLabels));
      expect(trace.clsOutput.data).toEqual(emb.slice(0, D));
      expect(trace.distillationToken?.dims).toEqual([D]);
      // the mean of the patch tokens leaves both prefix tokens out
      const mean = await m.embed(f.input.slice(0, C), { pooling: 'mean' });
      const dm = maxDiff(mean, expected(f).mean_embeddings.slice(0, D));
      expect(dm.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, dm.scale));
      expect(trace.input.dims[0]).toBe(trace.patchEmbeddings.dims[0] + 2);
      await m.dispose();
    },
  );

  test('training and quantize refuse it by name', async () => {
    const f = fixtures[0];
    const m = await loadModel(f.dir, { threads: 1 });
    await expect(createTrainer(m.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(
      /training a model with a distilled head \(two classifiers averaged\) is not supported yet/,
    );
    await m.dispose();
    const { quantizeModel } = await import('../src/export/quantize.js');
    const { modelFiles } = await import('../src/io/source.js');
    const { WasmMemory } = await import('../src/runtime/memory.js');
    await expect(quantizeModel(await modelFiles(f.dir), new WasmMemory(false), 'f16')).rejects.toThrow(
      /quantize: this model has a distillation token \(DeiT\), which the Hugging Face ViT layout quantize writes cannot say yet/,
    );
  });

  test('position similarity leaves the prefix tokens out', async () => {
    const m = await loadModel(fixtures[1].dir, { threads: 1 });
    const t = await m.trace(fixtures[1].input.slice(0, m.inputSize));
    const Np = t.patchEmbeddings.dims[0];
    const sim = (await import('../src/index.js')).positionSimilarity(t.positionEmbeddings, 2);
    expect(sim.dims).toEqual([Np, Np]);
    for (let i = 0; i < Np; i++) expect(sim.data[i * Np + i]).toBeCloseTo(1, 5);
    await m.dispose();
  });
});

describe("a model without a classifier (Hugging Face's ViTModel, timm's num_classes=0): embeddings", () => {
  /** A fixture without its classifier's tensors and with the config such a checkpoint has. */
  function headless(name: string, drop: RegExp, config: (c: Record<string, unknown>) => void): Files {
    const files = fixture(name);
    const { header, data } = splitSafetensors(files['model.safetensors'] as Uint8Array);
    for (const k of Object.keys(header)) if (drop.test(k)) delete header[k];
    return withConfig({ ...files, 'model.safetensors': repack(header, data) }, config);
  }
  const cases: [string, string, Files][] = [
    [
      "Hugging Face ViTModel (its config keeps transformers' default labels)",
      'h40-hf',
      headless('h40-hf', /^classifier\./, (c) => {
        c.architectures = ['ViTModel'];
        c.id2label = { 0: 'LABEL_0', 1: 'LABEL_1' };
      }),
    ],
    ['timm num_classes=0', 'h48-timm', headless('h48-timm', /^head\./, (c) => Object.assign(c, { num_classes: 0 }))],
    ['DeiTModel', 'h48-deit-hf-cls', headless('h48-deit-hf-cls', /^classifier\./, () => {})],
  ];

  test.each(cases)(
    "%s: embed() gives the classifier model's embeddings; forward and classify say to use embed",
    async (_, full, files) => {
      const a = await loadModel(path.join(MODELS, full), { threads: 2 });
      const b = await loadModel(files, { threads: 2 });
      expect(b.config.arch?.head).toBe('none');
      expect([b.config.numLabels, b.config.labels]).toEqual([0, []]);
      const x = new Float32Array(b.inputSize * 2).map((_, i) => Math.sin(i / 3));
      const images = [x.subarray(0, b.inputSize), x.subarray(b.inputSize)];
      expect(await b.embed(images)).toEqual(await a.embed(images));
      await expect(b.forward(x, 2)).rejects.toThrow(
        /forward: this model has no classifier .*: use model\.embed\(images\)/,
      );
      await expect(b.classify(images[0] as never)).rejects.toThrow(/classify: this model has no classifier/);
      const t = await b.trace(images[0]);
      expect(t.clsOutput.data).toEqual((await a.trace(images[0])).clsOutput.data);
      expect([t.logits.dims, t.probabilities.dims]).toEqual([[0], [0]]);
      // its ONNX export gives what embed() gives, as pooler_output
      const s = await ort.InferenceSession.create(b.toOnnx());
      const out = await s.run({
        pixel_values: new ort.Tensor('float32', x, [2, b.config.numChannels, ...b.config.imageSize]),
      });
      await s.release();
      const { diff, scale } = maxDiff(out.pooler_output.data as Float32Array, await b.embed(images));
      expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
      await expect(createTrainer(b.config, { threads: 1, maxBatch: 2 })).rejects.toThrow(
        /numLabels must be a positive/, // refused on its labels before its arch: a trainer needs classes
      );
      await Promise.all([a.dispose(), b.dispose()]);
    },
  );

  test('quantize writes it as a ViTModel, and it loads back without a classifier', async () => {
    const { quantizeModel } = await import('../src/export/quantize.js');
    const { modelFiles } = await import('../src/io/source.js');
    const { WasmMemory } = await import('../src/runtime/memory.js');
    const files = await quantizeModel(await modelFiles(cases[0][2]), new WasmMemory(false), 'f16');
    expect(JSON.parse(files['config.json'] as string).architectures).toEqual(['ViTModel']);
    const m = await loadModel(files as Files, { threads: 1 });
    expect(m.config.arch?.head).toBe('none');
    await m.dispose();
  });
});
