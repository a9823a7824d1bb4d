// Linear probes of every family (src/model/probe.ts): the checkpoint written in its family's own
// classification form reads exactly the features the probe trained on (logits = features · Wᵀ + b
// for Hugging Face's ViT, ViTModel, DeiT, DINOv2 with and without registers, BEiT, CLIP, SigLIP,
// and timm's names); the probe's head gradients equal the trainer's (checked against PyTorch) and
// finite differences; a probe learns a separable set and its saved model predicts as it did.
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { readSafetensorsHeader } from '../src/io/safetensors.js';
import { modelFiles } from '../src/io/source.js';
import { linearProbe, openProbe } from '../src/model/probe.js';
import { createTrainer } from '../src/train/create.js';
import { HeadTrainer } from '../src/train/head.js';
import { FIXTURES, readF32, readI32 } from './helpers.js';

/** Deterministic pixels in −1…1. */
function pixels(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return ((s >>> 0) / 2 ** 32) * 2 - 1;
  });
}

const CASES: [string, string, string, string][] = [
  // fixture, family, what the written config.json's architectures say, the classifier's name
  ['models/h33-hf', 'vit', 'ViTForImageClassification', 'classifier.weight'],
  ['pooler/h33-vitmodel', 'vit', 'ViTForImageClassification', 'classifier.weight'],
  ['models/h40-deit-hf', 'deit', 'DeiTForImageClassification', 'classifier.weight'],
  ['dinov2/h40-dinov2', 'dinov2', 'Dinov2ForImageClassification', 'classifier.weight'],
  ['dinov2/h48-dinov2reg', 'dinov2', 'Dinov2WithRegistersForImageClassification', 'classifier.weight'],
  ['beit/h40-beit', 'beit', 'BeitForImageClassification', 'classifier.weight'],
  ['clip/h40-clip', 'clip', 'CLIPForImageClassification', 'classifier.weight'],
  ['clip/h33-clip-vision', 'clip', 'CLIPForImageClassification', 'classifier.weight'],
  ['siglip/h40-siglip', 'siglip', 'SiglipForImageClassification', 'classifier.weight'],
  ['models/h33-timm', 'vit', '', 'head.weight'],
  ['timm-variants/h33-timm-map', 'vit', '', 'head.weight'],
  ['models/h33-deit-timm', 'deit', '', 'head.weight'],
];

describe.each(CASES)('%s', (fixture, family, arch, headName) => {
  test(`written as ${arch || "timm's names"}: its logits are the features the probe reads, through the new classifier`, async () => {
    const labels = ['ant', 'bee', 'cat'];
    const t = await openProbe(path.join(FIXTURES, fixture), labels, { threads: 1 });
    const m0 = t.model,
      F = t.features,
      n = m0.inputSize;
    expect(m0.family).toBe(family);
    expect(F).toBe(family === 'dinov2' ? 2 * m0.config.hiddenSize : m0.config.hiddenSize);
    const x = pixels(2 * n, 7);
    const feats = await m0.embed([x.subarray(0, n), x.subarray(n)], { pooling: 'head' });
    expect(feats.length).toBe(2 * F);
    const W = pixels(3 * F, 11).map((v) => v * 0.3),
      b = Float32Array.of(0.1, -0.2, 0.3);
    const files = t.files(W, b);
    const config = JSON.parse(files['config.json'] as string);
    if (arch) expect(config.architectures).toEqual([arch]);
    else expect([config.num_classes, config.label_names]).toEqual([3, labels]);
    const m = await loadModel(files, { threads: 2 });
    expect(m.config.labels).toEqual(labels);
    const z = await m.forward(x, 2);
    for (let i = 0; i < 2; i++)
      for (let j = 0; j < 3; j++) {
        let s = b[j];
        for (let k = 0; k < F; k++) s += W[j * F + k] * feats[i * F + k];
        expect(Math.abs(z[i * 3 + j] - s), `image ${i}, class ${j}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(s)));
      }
    // the backbone is the checkpoint's own: what it embeds is unchanged by the new head
    const src = await loadModel(path.join(FIXTURES, fixture), { threads: 1 });
    const a = src.config.arch!,
      pooling = a.pooling === 'mean' || a.prefix[0] !== 'cls' ? 'mean' : 'cls';
    expect(Array.from(await m.embed([x.subarray(0, n)], { pooling }))).toEqual(
      Array.from(await src.embed([x.subarray(0, n)], { pooling })),
    );
    const header = await readSafetensorsHeader(await (await modelFiles(files)).open('model.safetensors'));
    expect(header.has(headName)).toBe(true);
    await Promise.all([m0.dispose(), m.dispose(), src.dispose()]);
  });
});

test("checkpoints without a classifier form vit-wasm writes (open_clip's, torchvision's) are refused by name", async () => {
  await expect(openProbe(path.join(FIXTURES, 'open-clip/h40-openclip'), ['a', 'b'])).rejects.toThrow(
    /open_clip checkpoints have no classifier form vit-wasm writes/,
  );
  await expect(openProbe(path.join(FIXTURES, 'models/h33-torchvision'), ['a', 'b'])).rejects.toThrow(
    /torchvision checkpoints have no classifier form/,
  );
  await expect(openProbe(path.join(FIXTURES, 'models/h33-hf'), ['a'])).rejects.toThrow(/2 or more classes/);
});

test("the probe's head gradients are the trainer's (checked against PyTorch) and match finite differences", async () => {
  const dir = path.join(FIXTURES, 'train', 't20');
  const x = readF32(path.join(dir, 'input.f32')),
    y = readI32(path.join(dir, 'labels.i32'));
  for (const smoothing of [0, 0.1]) {
    const trainer = await createTrainer(null, { from: dir, maxBatch: 3, freeze: 'all', labelSmoothing: smoothing });
    const loss = trainer.lossAndGradients(x, y),
      g = trainer.gradients(),
      p = trainer.parameters();
    const model = await loadModel(dir, { threads: 1 });
    const n = model.inputSize,
      feats = await model.embed(
        [0, 1, 2].map((i) => x.subarray(i * n, (i + 1) * n)),
        { pooling: 'head' },
      );
    const L = model.config.numLabels,
      F = model.config.hiddenSize;
    const head = new HeadTrainer(F, L, { labelSmoothing: smoothing });
    head.W.set(p.get('classifier.weight')!);
    head.b.set(p.get('classifier.bias')!);
    const r = head.lossAndGradients(feats, y, [0, 1, 2]);
    expect(Math.abs(r.loss / 3 - loss)).toBeLessThan(1e-5 * loss);
    const gW = g.get('classifier.weight')!,
      gb = g.get('classifier.bias')!;
    const scale = Math.max(...Array.from(gW, Math.abs));
    for (let i = 0; i < gW.length; i++) expect(Math.abs(r.gW[i] - gW[i])).toBeLessThan(1e-5 * scale);
    for (let j = 0; j < L; j++) expect(Math.abs(r.gb[j] - gb[j])).toBeLessThan(1e-5 * scale);
    // central differences of the float64 loss
    for (const [which, i] of [
      ['W', 5],
      ['W', 40],
      ['b', 1],
    ] as const) {
      const P = which === 'W' ? head.W : head.b,
        v = P[i],
        e = 1e-5;
      P[i] = v + e;
      const up = head.lossAndGradients(feats, y, [0, 1, 2]).loss;
      P[i] = v - e;
      const down = head.lossAndGradients(feats, y, [0, 1, 2]).loss;
      P[i] = v;
      const want = (up - down) / (2 * e) / 3,
        got = which === 'W' ? r.gW[i] : r.gb[i];
      expect(Math.abs(got - want)).toBeLessThan(1e-7 + 1e-5 * Math.abs(want));
    }
    await model.dispose();
  }
});

test('linearProbe learns a separable set; its saved model predicts what its head did', async () => {
  const dir = path.join(FIXTURES, 'dinov2/h40-dinov2');
  const probeModel = await loadModel(dir, { threads: 1 }),
    n = probeModel.inputSize;
  await probeModel.dispose();
  // three classes of images: noise around three different base images
  const bases = [0, 1, 2].map((c) => pixels(n, 100 + c));
  const example = (c: number, k: number) => {
    const noise = pixels(n, 1000 * c + k);
    return { image: bases[c].map((v, i) => v + 0.3 * noise[i]), label: c };
  };
  const train = Array.from({ length: 24 }, (_, i) => example(i % 3, i)),
    val = Array.from({ length: 9 }, (_, i) => example(i % 3, 100 + i));
  const seen: number[] = [];
  const probe = await linearProbe(dir, train, {
    labels: ['one', 'two', 'three'],
    validation: val,
    epochs: 30,
    batchSize: 8,
    lr: 0.05,
    load: { threads: 2 },
    onEmbed: (done) => seen.push(done),
  });
  expect(seen.at(-1)).toBe(24);
  expect(probe.epochs).toHaveLength(30);
  expect(probe.epochs[29].loss).toBeLessThan(probe.epochs[0].loss * 0.5);
  expect(probe.epochs[29].validationAccuracy).toBe(1);
  const m = await loadModel(probe.files(), { threads: 1 });
  const x = new Float32Array(9 * n);
  val.forEach((e, i) => x.set(e.image, i * n));
  const z = await m.forward(x, 9);
  const predicted = val.map((_, i) => {
    const row = Array.from(z.subarray(i * 3, i * 3 + 3));
    return row.indexOf(Math.max(...row));
  });
  expect(predicted).toEqual(val.map((e) => e.label));
  await m.dispose();
  await expect(linearProbe(dir, [{ image: bases[0], label: 5 }], { labels: ['a', 'b'] })).rejects.toThrow(
    /example 0 has label 5, not a class 0…1/,
  );
});
