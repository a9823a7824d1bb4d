// Fine-tuning other families than the plain ViT, from their Hugging Face checkpoints, in their
// classification forms (src/train/spec.ts): BeitForImageClassification (relative position bias
// tables per layer or shared, a key without bias, LayerScale, the pooler's norm on the patch mean
// or the cls token), DeiTForImageClassification (a distillation token),
// Dinov2ForImageClassification (LayerScale trained apart from W; the classifier on cls ⊕ mean),
// CLIPForImageClassification (pre-norm, quick GELU, no patch bias, the un-normed patch mean) and
// SiglipForImageClassification (no class token, tanh GELU, the mean of the normed tokens). One
// step's loss and every gradient against PyTorch float64 autograd (generate.py train-families),
// finite differences, a few steps, the model written and read back, a new head, other sizes.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { encodeSafetensors, readSafetensorsHeader, TensorReader } from '../src/io/safetensors.js';
import { modelFiles } from '../src/io/source.js';
import { createTrainer } from '../src/train/create.js';
import { expectGradients, FIXTURES, readF32, readI32 } from './helpers.js';

const DIR = path.join(FIXTURES, 'train-families');
const f32 = readF32,
  i32 = readI32;

async function tensors(dir: string | Record<string, Uint8Array | string>, file: string) {
  const src = await (await modelFiles(dir)).open(file);
  const t = await readSafetensorsHeader(src),
    r = new TensorReader(t.values()),
    out = new Map<string, Float32Array>();
  for (const [name, info] of t) if (info.dtype === 'F32') out.set(name, (await r.read(info)).slice());
  await src.close();
  return out;
}

const FAMILIES = ['deit', 'dinov2', 'dinov2-reg', 'clip', 'siglip', 'beit', 'beit-shared'] as const;
const ARCHITECTURES = {
  deit: 'DeiTForImageClassification',
  dinov2: 'Dinov2ForImageClassification',
  'dinov2-reg': 'Dinov2WithRegistersForImageClassification',
  clip: 'CLIPForImageClassification',
  siglip: 'SiglipForImageClassification',
  beit: 'BeitForImageClassification',
  'beit-shared': 'BeitForImageClassification',
};
/** A parameter of each family whose gradient the finite differences check (index 3 of it). */
const PROBED = {
  deit: 'deit.embeddings.distillation_token',
  dinov2: 'dinov2.encoder.layer.1.layer_scale1.lambda1',
  'dinov2-reg': 'dinov2_with_registers.embeddings.register_tokens',
  clip: 'vision_model.pre_layrnorm.weight',
  siglip: 'vision_model.embeddings.position_embedding.weight',
  beit: 'beit.encoder.layer.1.attention.attention.relative_position_bias.relative_position_bias_table',
  'beit-shared': 'beit.encoder.relative_position_bias.relative_position_bias_table',
};

describe.each(FAMILIES)('%s', (family) => {
  const dir = path.join(DIR, family);
  const exp = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const x = f32(path.join(dir, 'input.f32')),
    y = i32(path.join(dir, 'labels.i32'));

  test.each([0, 0.1])(
    'loss and every parameter gradient within 1e-4 of PyTorch float64 (label smoothing %s)',
    async (smoothing) => {
      const t = await createTrainer(null, { from: dir, maxBatch: 3, labelSmoothing: smoothing });
      expect(t.family).toBe(family.replace(/-shared|-reg/, ''));
      const loss = t.lossAndGradients(x, y),
        want = smoothing ? exp.loss_smoothing : exp.loss;
      expect(Math.abs(loss - want)).toBeLessThanOrEqual(1e-5 * Math.abs(want));
      const ours = t.gradients(),
        theirs = await tensors(dir, smoothing ? 'grads-smoothing.safetensors' : 'grads.safetensors');
      const worst = expectGradients(ours, theirs);
      console.log(
        `${family}${smoothing ? ' (smoothing)' : ''}: loss ${loss} vs ${want}; worst gradient ${worst.toExponential(2)} of scale`,
      );
    },
  );

  test(`finite differences of the loss agree with ${PROBED[family]}'s gradient`, async () => {
    const t = await createTrainer(null, { from: dir, maxBatch: 3 });
    t.lossAndGradients(x, y);
    const g = t.gradients().get(PROBED[family])![3];
    const params = await tensors(dir, 'model.safetensors');
    const src = await (await modelFiles(dir)).open('model.safetensors'),
      shapes = new Map([...(await readSafetensorsHeader(src))].map(([k, v]) => [k, v.shape]));
    await src.close();
    const lossAt = async (delta: number) => {
      const edited = new Map(params);
      const v = edited.get(PROBED[family])!.slice();
      v[3] += delta;
      edited.set(PROBED[family], v);
      const files = {
        'config.json': readFileSync(path.join(dir, 'config.json'), 'utf8'),
        'model.safetensors': encodeSafetensors(
          [...edited].map(([name, data]) => ({ name, shape: shapes.get(name)!, data })),
        ),
      };
      return (await createTrainer(null, { from: files, maxBatch: 3 })).lossAndGradients(x, y);
    };
    const e = 1e-2,
      num = ((await lossAt(e)) - (await lossAt(-e))) / (2 * e);
    expect(Math.abs(g - num)).toBeLessThan(3e-3 * Math.max(1e-2, Math.abs(num)) + 3e-5);
  });

  test('the forward is the loaded model’s; steps lower the loss; the model written loads as its family and classifies as trained', async () => {
    const model = await loadModel(dir, { threads: 1 });
    const t = await createTrainer(null, { from: dir, maxBatch: 3, lr: 3e-3, threads: 2 });
    const z0 = await t.logits(x, 3),
      zm = await model.forward(x, 3);
    for (let i = 0; i < z0.length; i++)
      expect(Math.abs(z0[i] - zm[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(zm[i])));
    const losses: number[] = [];
    for (let s = 0; s < 12; s++) losses.push(await t.step(x, y));
    expect(losses[11]).toBeLessThan(losses[0] * 0.6);
    const files = t.files();
    const config = JSON.parse(files['config.json'] as string);
    expect(config.architectures).toEqual([ARCHITECTURES[family]]);
    const back = await loadModel(files, { threads: 1 });
    expect(back.family).toBe(family.replace(/-shared|-reg/, ''));
    expect(back.config.labels).toEqual(model.config.labels);
    const zb = await back.forward(x, 3),
      zt = await t.logits(x, 3);
    for (let i = 0; i < zt.length; i++)
      expect(Math.abs(zb[i] - zt[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(zt[i])));
    // what the family's checkpoint carries that training does not read goes back as it was
    const written = await readSafetensorsHeader(await (await modelFiles(files)).open('model.safetensors'));
    const source = await readSafetensorsHeader(await (await modelFiles(dir)).open('model.safetensors'));
    expect([...written.keys()].sort()).toEqual([...source.keys()].sort());
    await Promise.all([model.dispose(), back.dispose(), t.dispose()]);
  });

  test('a new head for other classes; at another image size its positions resized as its library does', async () => {
    const t = await createTrainer(null, { from: dir, maxBatch: 3, newHead: true, labels: ['a', 'b'], seed: 4 });
    expect(t.dims.numLabels).toBe(2);
    expect(JSON.parse(t.files()['config.json'] as string).id2label).toEqual({ 0: 'a', 1: 'b' });
    const yy = Int32Array.from(y, (v) => v % 2);
    expect(Number.isFinite(await t.step(x, yy))).toBe(true);
    // at 16×16 (16 patches instead of 9): the trainer's forward is the loaded model's at that size
    const size: [number, number] = [16, 16];
    const base = await loadModel(dir, { threads: 1 });
    if (family.startsWith('beit')) {
      await expect(createTrainer({ ...base.config, imageSize: size }, { from: dir, maxBatch: 1 })).rejects.toThrow(
        /fine-tuning a BEiT at 16x16 \(its tables are for 12x12\) is not supported yet/,
      );
      await base.dispose();
      return;
    }
    const resized = await createTrainer({ ...base.config, imageSize: size }, { from: dir, maxBatch: 1 });
    const m = await loadModel(dir, { threads: 1, imageSize: size });
    const xs = new Float32Array(m.inputSize).map((_, i) => Math.sin(i * 0.37));
    const za = await resized.logits(xs, 1),
      zb = await m.forward(xs, 1);
    for (let i = 0; i < za.length; i++)
      expect(Math.abs(za[i] - zb[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(zb[i])));
    expect(JSON.parse(resized.files()['config.json'] as string)).toMatchObject(
      family === 'clip' || family === 'siglip' ? { vision_config: { image_size: 16 } } : { image_size: 16 },
    );
    await Promise.all([base.dispose(), m.dispose()]);
  });
});

test('what fine-tuning cannot compute yet is refused by name: a SwiGLU MLP, timm names', async () => {
  await expect(
    createTrainer(null, { from: path.join(FIXTURES, 'dinov2/h40-dinov2-swiglu'), newHead: true, labels: ['a', 'b'] }),
  ).rejects.toThrow(/fine-tuning a dinov2 model with a gated MLP \(SwiGLU\) is not supported yet/);
  // a Dinov2WithRegistersModel (no prefix, no classifier) becomes the classifier's model, prefixed
  const reg = await createTrainer(null, {
    from: path.join(FIXTURES, 'dinov2/h48-dinov2reg'),
    newHead: true,
    labels: ['a', 'b'],
  });
  const names = [...reg.parameters().keys()];
  expect(names).toContain('dinov2_with_registers.embeddings.register_tokens');
  expect(names.filter((k) => !/^(dinov2_with_registers\.|classifier\.)/.test(k))).toEqual([]);
  // (its config says qkv_bias false: the biases are held at zero, not parameters)
  expect(names.filter((k) => k.endsWith('query.bias'))).toEqual([]);
  expect(JSON.parse(reg.files()['config.json'] as string).architectures).toEqual([
    'Dinov2WithRegistersForImageClassification',
  ]);
  await expect(
    createTrainer(null, { from: path.join(FIXTURES, 'models/h33-deit-timm'), newHead: true, labels: ['a', 'b'] }),
  ).rejects.toThrow(/deit checkpoint in timm names: fine-tuning reads Hugging Face names; a linear probe/);
  await expect(createTrainer(null, { from: path.join(FIXTURES, 'clip/h40-clip') })).rejects.toThrow(
    /has no CLIPForImageClassification classifier to go on training: fine-tune it with a new head/,
  );
});
