// Training against PyTorch autograd (fixtures from tests/fixtures/generate.py): one step's loss and
// EVERY parameter gradient; then a finite-difference check through the whole model, and the loss
// falling over a few steps.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { readSafetensorsHeader, TensorReader } from '../src/io/safetensors.js';
import { modelFiles } from '../src/io/source.js';
import { createTrainer } from '../src/train/create.js';
import { expectGradients, FIXTURES, readF32, readI32 } from './helpers.js';

const TRAIN = path.join(FIXTURES, 'train');
const f32 = readF32,
  i32 = readI32;

async function torchGrads(dir: string, file = 'grads.safetensors'): Promise<Map<string, Float32Array>> {
  const src = await (await modelFiles(dir)).open(file);
  const t = await readSafetensorsHeader(src),
    r = new TensorReader(t.values()),
    out = new Map<string, Float32Array>();
  for (const [name, info] of t) out.set(name, (await r.read(info)).slice());
  await src.close();
  return out;
}

describe.each(['t20', 't24'])('one training step against PyTorch float64 autograd (%s)', (name) => {
  const dir = path.join(TRAIN, name);
  test.each([
    ['', 0],
    [' (label smoothing 0.1)', 0.1],
  ])('loss and every parameter gradient within 1e-4 relative%s', async (what, smoothing) => {
    const exp = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
    if (smoothing) expect(exp.smoothing).toBe(smoothing);
    const want = smoothing ? exp.loss_smoothing : exp.loss;
    const t = await createTrainer(null, { from: dir, maxBatch: exp.batch, labelSmoothing: smoothing });
    const loss = t.lossAndGradients(f32(path.join(dir, 'input.f32')), i32(path.join(dir, 'labels.i32')));
    expect(Math.abs(loss - want)).toBeLessThanOrEqual(1e-4 * Math.abs(want));
    const ours = t.gradients(),
      theirs = await torchGrads(dir, smoothing ? 'grads-smoothing.safetensors' : 'grads.safetensors');
    const worst = expectGradients(ours, theirs);
    console.log(
      `${name}${what}: loss ${loss} vs ${want}; worst gradient error ${worst.toExponential(2)} of each tensor's scale`,
    );
  });
});

test.each([0, 0.2])(
  'gradients match finite differences of the loss through the whole model (label smoothing %s)',
  async (labelSmoothing) => {
    const dir = path.join(TRAIN, 't24');
    const x = f32(path.join(dir, 'input.f32')),
      y = i32(path.join(dir, 'labels.i32'));
    const t = await createTrainer(null, { from: dir, maxBatch: 2, labelSmoothing });
    t.lossAndGradients(x, y);
    const grads = t.gradients(),
      params = t.parameters();
    // perturb a few parameters of different kinds through a second trainer started from edited weights
    for (const [name, idx] of [
      ['vit.encoder.layer.0.attention.attention.key.weight', 5],
      ['vit.embeddings.position_embeddings', 30],
      ['vit.encoder.layer.0.layernorm_after.weight', 3],
      ['vit.embeddings.patch_embeddings.projection.weight', 17],
      ['classifier.bias', 1],
    ] as const) {
      const lossAt = async (delta: number) => {
        const files: Record<string, Uint8Array | string> = {
          'config.json': readFileSync(path.join(dir, 'config.json'), 'utf8'),
        };
        const edited = new Map(params);
        const v = edited.get(name)!.slice();
        v[idx] += delta;
        edited.set(name, v);
        const { encodeSafetensors } = await import('../src/io/safetensors.js');
        files['model.safetensors'] = encodeSafetensors(
          [...edited].map(([n, data]) => ({ name: n, shape: [data.length], data })),
        );
        const u = await createTrainer(null, { from: files, maxBatch: 2, labelSmoothing });
        return u.lossAndGradients(x, y);
      };
      const e = 1e-2;
      const num = ((await lossAt(e)) - (await lossAt(-e))) / (2 * e);
      expect(Math.abs(grads.get(name)![idx] - num), name).toBeLessThan(2e-3 * Math.max(1e-2, Math.abs(num)) + 2e-5);
    }
  },
);

test('the loss falls over a few steps, and the trained model loads for inference with the same logits, to the bit', async () => {
  const dir = path.join(TRAIN, 't20');
  const x = f32(path.join(dir, 'input.f32')),
    y = i32(path.join(dir, 'labels.i32'));
  const t = await createTrainer(null, { from: dir, maxBatch: 3, lr: 3e-3, warmupSteps: 2, totalSteps: 20 });
  const losses: number[] = [];
  for (let i = 0; i < 20; i++) losses.push(await t.step(x, y));
  expect(losses[19]).toBeLessThan(losses[0] * 0.5);
  expect(t.learningRate(1)).toBeCloseTo(1.5e-3, 10);
  expect(t.learningRate(20)).toBeCloseTo(0, 10);
  const logits = await t.logits(x, 3);
  const model = await loadModel(t.files(), { threads: 1, simd: 'simd' });
  const inf = await model.forward(x, 3);
  expect(Array.from(new Uint32Array(inf.buffer))).toEqual(Array.from(new Uint32Array(logits.buffer)));
  await model.dispose();
});

test("gradient accumulation: a batch over maxBatch is micro-batches whose gradients add up to the one-pass batch mean (and PyTorch's)", async () => {
  const dir = path.join(TRAIN, 't20');
  const exp = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
  const x = f32(path.join(dir, 'input.f32')),
    y = i32(path.join(dir, 'labels.i32'));
  expect(exp.batch).toBe(3);
  const whole = await createTrainer(null, { from: dir, maxBatch: 3 }),
    micro = await createTrainer(null, { from: dir, maxBatch: 1 }),
    pairs = await createTrainer(null, { from: dir, maxBatch: 2 });
  const l3 = whole.lossAndGradients(x, y),
    l1 = micro.lossAndGradients(x, y),
    l2 = pairs.lossAndGradients(x, y);
  expect(Math.abs(l1 - l3)).toBeLessThan(1e-6 * Math.abs(l3));
  expect(Math.abs(l2 - l3)).toBeLessThan(1e-6 * Math.abs(l3));
  expect(Math.abs(l1 - exp.loss)).toBeLessThanOrEqual(1e-4 * Math.abs(exp.loss));
  const theirs = await torchGrads(dir),
    a = whole.gradients();
  // (the key bias's gradient is zero up to rounding: no tensor's scale counts as below 1e-3 of the largest, as above)
  const largest = Math.max(...[...theirs.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  for (const t of [micro, pairs]) {
    const b = t.gradients();
    for (const [k, g] of theirs) {
      const scale = Math.max(1e-3 * largest, ...Array.from(g, Math.abs));
      let worst = 0;
      for (let i = 0; i < g.length; i++) worst = Math.max(worst, Math.abs(b.get(k)![i] - a.get(k)![i]));
      expect(worst, k).toBeLessThan(1e-5 * scale + 1e-6 * largest);
    }
  }
  // steps: the same update whoever runs the micro-batches (a worker of its own computes them in the same order)
  const inline = await createTrainer(null, { from: dir, maxBatch: 2, lr: 3e-3 });
  const SAB = globalThis.SharedArrayBuffer;
  delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
  let hosted: Awaited<ReturnType<typeof createTrainer>>;
  try {
    hosted = await createTrainer(null, { from: dir, maxBatch: 2, lr: 3e-3, isolate: true });
  } finally {
    globalThis.SharedArrayBuffer = SAB;
  }
  const pooled = await createTrainer(null, { from: dir, maxBatch: 2, lr: 3e-3, threads: 2 }),
    pooledAgain = await createTrainer(null, { from: dir, maxBatch: 2, lr: 3e-3, threads: 2 }),
    onePass = await createTrainer(null, { from: dir, maxBatch: 3, lr: 3e-3 });
  const bits = (v: Float32Array) => Array.from(new Uint32Array(v.slice().buffer));
  for (let s = 0; s < 3; s++) {
    const [li, lh, lp, lq, lo] = await Promise.all(
      [inline, hosted, pooled, pooledAgain, onePass].map((t) => t.step(x, y)),
    );
    expect(lh).toBe(li);
    expect(lq).toBe(lp);
    expect(Math.abs(lp - li)).toBeLessThan(1e-5 * li);
    expect(Math.abs(lo - li)).toBeLessThan(1e-5 * li);
    expect(Array.from(hosted.lastPredictions())).toEqual(Array.from(inline.lastPredictions()));
    expect(Array.from(pooled.lastPredictions())).toHaveLength(3);
  }
  expect(inline.stepCount).toBe(3);
  const pi = inline.parameters(),
    ph = hosted.parameters(),
    pp = pooled.parameters(),
    pq = pooledAgain.parameters(),
    po = onePass.parameters();
  for (const [k, v] of pi) {
    expect(bits(ph.get(k)!), k).toEqual(bits(v));
    expect(bits(pq.get(k)!), k).toEqual(bits(pp.get(k)!));
    // Adam normalises each step: parameters whose gradient is ~0 (the key bias) move by rounding noise
    if (k.includes('key.bias')) continue;
    for (const o of [pp.get(k)!, po.get(k)!]) {
      let worst = 0;
      for (let i = 0; i < v.length; i++) worst = Math.max(worst, Math.abs(o[i] - v[i]));
      expect(worst, k).toBeLessThan(1e-4);
    }
  }
  await expect(
    inline.step(new Float32Array((2 * 1024 * x.length) / 3 + x.length / 3), new Int32Array(2049)),
  ).rejects.toThrow(/batch 2049 is outside 1…2048 \(1024 micro-batches of maxBatch\)/);
  await Promise.all([hosted.dispose(), pooled.dispose(), pooledAgain.dispose()]);
});

test.each([
  ['t20', path.join(TRAIN, 't20')],
  ['a DINOv2 (LayerScale, cls ⊕ mean)', path.join(FIXTURES, 'train-families', 'dinov2')],
])('activation recomputation gives the same bits as keeping every activation (%s), in less memory', async (_, dir) => {
  const x = f32(path.join(dir, 'input.f32')),
    y = i32(path.join(dir, 'labels.i32'));
  const bits = (v: Float32Array) => Array.from(new Uint32Array(v.slice().buffer));
  const kept = await createTrainer(null, { from: dir, maxBatch: 3 }),
    again = await createTrainer(null, { from: dir, maxBatch: 3, recompute: true });
  expect(again.lossAndGradients(x, y)).toBe(kept.lossAndGradients(x, y));
  const gk = kept.gradients(),
    ga = again.gradients();
  for (const [k, v] of gk) expect(bits(ga.get(k)!), k).toEqual(bits(v));
  const pooled = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2 }),
    pooledAgain = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2, recompute: true });
  for (let s = 0; s < 2; s++) expect(await pooledAgain.step(x, y)).toBe(await pooled.step(x, y));
  const pp = pooled.parameters(),
    pa = pooledAgain.parameters();
  for (const [k, v] of pp) expect(bits(pa.get(k)!), k).toEqual(bits(v));
  await Promise.all([pooled.dispose(), pooledAgain.dispose()]);
  // the layers share one set of intermediates: a deit-small at batch 32 (224 px) needs a third of the memory
  const { trainLayout } = await import('../src/train/core.js');
  const { plainSpec } = await import('../src/train/spec.js');
  const { PRESETS } = await import('../src/io/presets.js');
  const dims = PRESETS['deit-small'];
  const size = (r: boolean) => trainLayout(dims, plainSpec(dims).params, 32, 1, 0, r).end;
  console.log(
    `deit-small, batch 32: ${(size(false) / 2 ** 30).toFixed(2)} GiB kept, ${(size(true) / 2 ** 30).toFixed(2)} GiB recomputed`,
  );
  expect(size(true)).toBeLessThan(size(false) * 0.4);
});

describe('data-parallel training on a worker pool', () => {
  const dir = path.join(TRAIN, 't20');
  const x = f32(path.join(dir, 'input.f32')),
    y = i32(path.join(dir, 'labels.i32'));

  test('2 workers give the 1-thread gradients and update (up to summation order), reproducibly', async () => {
    const one = await createTrainer(null, { from: dir, maxBatch: 3 });
    const two = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2 });
    const again = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2 });
    expect([one.threads, two.threads]).toEqual([1, 2]);
    const l1 = await one.step(x, y),
      l2 = await two.step(x, y);
    await again.step(x, y);
    expect(Math.abs(l1 - l2)).toBeLessThan(1e-6);
    const g1 = one.gradients(),
      g2 = two.gradients();
    const largest = Math.max(...[...g1.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
    for (const [k, g] of g1) {
      // (the key bias's gradient is zero up to rounding: no tensor's scale counts as below 1e-3 of the largest)
      const h = g2.get(k)!,
        scale = Math.max(1e-3 * largest, ...Array.from(g, Math.abs));
      for (let i = 0; i < g.length; i++) expect(Math.abs(g[i] - h[i]), k).toBeLessThanOrEqual(1e-4 * scale);
    }
    for (let s = 0; s < 3; s++) {
      await two.step(x, y);
      await again.step(x, y);
    }
    const p2 = two.parameters(),
      pa = again.parameters();
    for (const [k, v] of p2) expect(Buffer.from(v.buffer).equals(Buffer.from(pa.get(k)!.buffer)), k).toBe(true);
    // the pool's logits: every float equal to a fresh one-thread trainer's forward from the same parameters, to the bit
    const logits = await two.logits(x, 3);
    const files = two.files(),
      copy = await createTrainer(null, { from: files, maxBatch: 3 });
    expect(Array.from(new Uint32Array(logits.buffer))).toEqual(
      Array.from(new Uint32Array((await copy.logits(x, 3)).buffer)),
    );
    await two.dispose();
    await again.dispose();
  });

  test('concurrent steps run one after another in call order, each on its own batch: exactly the serial results', async () => {
    const serial = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2 });
    const concurrent = await createTrainer(null, { from: dir, maxBatch: 3, threads: 2 });
    const batches = [0, 1, 2, 3].map((k) => x.map((v, i) => v * (1 + 0.1 * k) + 0.01 * Math.sin(i + k)));
    const want: number[] = [],
      wantPreds: number[][] = [];
    for (const b of batches) {
      want.push(await serial.step(b, y));
      wantPreds.push(Array.from(serial.lastPredictions()));
    }
    // one buffer, overwritten right after each call: each step must have taken its inputs when called
    const buf = new Float32Array(x.length),
      labels = Int32Array.from(y);
    const calls = batches.map((b) => {
      buf.set(b);
      return concurrent.step(buf, labels);
    });
    buf.fill(NaN);
    labels.fill(0);
    const got = await Promise.all(calls);
    expect(got).toEqual(want);
    expect(Array.from(concurrent.lastPredictions())).toEqual(wantPreds[3]);
    expect(concurrent.stepCount).toBe(4);
    const ps = serial.parameters(),
      pc = concurrent.parameters();
    for (const [k, v] of ps) expect(Buffer.from(v.buffer).equals(Buffer.from(pc.get(k)!.buffer)), k).toBe(true);
    await serial.dispose();
    await concurrent.dispose();
  });
  test("isolated one-thread trainers (a worker on shared memory; a worker with its own memory where SharedArrayBuffer is missing) give the calling thread's bits", async () => {
    const inline = await createTrainer(null, { from: dir, maxBatch: 3, seed: 0 });
    const pooled = await createTrainer(null, { from: dir, maxBatch: 3, isolate: true });
    const SAB = globalThis.SharedArrayBuffer;
    // what a page without COOP/COEP (or WebKitGTK) has: no SharedArrayBuffer at all
    delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer;
    let hosted: Awaited<ReturnType<typeof createTrainer>>;
    try {
      hosted = await createTrainer(null, { from: dir, maxBatch: 3, isolate: true });
    } finally {
      globalThis.SharedArrayBuffer = SAB;
    }
    expect([inline.runsIn, pooled.runsIn, hosted.runsIn]).toEqual(['calling thread', 'workers', 'worker']);
    const bits = (a: Float32Array) => Array.from(new Uint32Array(a.slice().buffer));
    const batches = [0, 1, 2].map((k) => x.map((v, i) => v * (1 + 0.1 * k) + 0.01 * Math.cos(i * k)));
    for (const b of batches) {
      const want = await inline.step(b, y);
      // two calls at once on the hosted trainer: its steps stay in call order
      const [p, h] = await Promise.all([pooled.step(b, y), hosted.step(b, y)]);
      expect([p, h]).toEqual([want, want]);
      expect(Array.from(hosted.lastPredictions())).toEqual(Array.from(inline.lastPredictions()));
    }
    const want = inline.parameters();
    for (const t of [pooled, hosted]) {
      const got = t.parameters();
      for (const [k, v] of want) expect(bits(got.get(k)!), k).toEqual(bits(v));
      expect(bits(await t.logits(x, 3))).toEqual(bits(await inline.logits(x, 3)));
      expect((await t.evaluate(x, y)).loss).toBe((await inline.evaluate(x, y)).loss);
    }
    // the hosted trainer's files are its parameters: a model loaded from them classifies as the inline one
    const a = await loadModel(inline.files(), { threads: 1 }),
      b = await loadModel(hosted.files(), { threads: 1 });
    expect(bits(await b.forward(x, 3))).toEqual(bits(await a.forward(x, 3)));
    await Promise.all([a.dispose(), b.dispose()]);
    expect(() => hosted.gradients()).toThrow(/runs in a worker of its own/);
    await expect(hosted.step(x, [0, 1, 99])).rejects.toThrow(/label 2 is 99/);
    await pooled.dispose();
    await hosted.dispose();
  });
  test("freeze: 'all' trains the classifier only (a linear probe), N the last N blocks, the final norm and the head", async () => {
    const before = (await createTrainer(null, { from: dir, maxBatch: 3 })).parameters();
    const probe = await createTrainer(null, { from: dir, maxBatch: 3, freeze: 'all' });
    const last = await createTrainer(null, { from: dir, maxBatch: 3, freeze: 1 });
    for (let s = 0; s < 2; s++) {
      await probe.step(x, y);
      await last.step(x, y);
    }
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer).equals(Buffer.from(b.buffer));
    const layers = Math.max(...[...before.keys()].map((k) => Number(/\.layer\.(\d+)\./.exec(k)?.[1] ?? -1))) + 1;
    expect(layers).toBeGreaterThan(1);
    const p = probe.parameters(),
      q = last.parameters();
    for (const [k, v] of before) {
      expect(same(p.get(k)!, v), `probe ${k}`).toBe(!k.startsWith('classifier.'));
      const trains =
        k.startsWith('classifier.') || k.startsWith('vit.layernorm.') || k.includes(`.layer.${layers - 1}.`);
      // (a bias whose gradient is exactly zero, the key's, does not move either way)
      if (!k.includes('.key.bias')) expect(same(q.get(k)!, v), `last block ${k}`).toBe(!trains);
    }
    await expect(createTrainer(null, { from: dir, freeze: layers + 1 })).rejects.toThrow(
      new RegExp(`freeze must be 'none', 'all' or a number of trained blocks 0…${layers}, got ${layers + 1}`),
    );
  });
  test('newHead with labels: a head for those classes from a checkpoint; labels that do not match the classes are refused', async () => {
    const t = await createTrainer(null, { from: dir, maxBatch: 3, newHead: true, labels: ['cat', 'dog'] });
    expect(t.dims.numLabels).toBe(2);
    expect(t.parameters().get('classifier.weight')!.length).toBe(2 * t.dims.hiddenSize);
    const cfg = JSON.parse(t.files()['config.json'] as string);
    expect(cfg.id2label).toEqual({ 0: 'cat', 1: 'dog' });
    // a loaded model's config (its own 5 classes) with a new head: the labels size it
    const m = await loadModel(dir, { threads: 1 });
    const u = await createTrainer(m.config, { from: dir, maxBatch: 3, newHead: true, labels: ['cat', 'dog'] });
    expect(u.dims.numLabels).toBe(2);
    await m.dispose();
    await expect(createTrainer(null, { from: dir, labels: ['cat', 'dog'] })).rejects.toThrow(
      /2 labels for \d+ classes \(to train a new head for other classes, pass newHead: true\)/,
    );
  });
  test("layerDecay scales each depth's AdamW step by decay^(L + 1 − depth): embeddings the most, the head not at all", async () => {
    const p0 = (await createTrainer(null, { from: dir, maxBatch: 3 })).parameters();
    const plain = await createTrainer(null, { from: dir, maxBatch: 3 }),
      decayed = await createTrainer(null, { from: dir, maxBatch: 3, layerDecay: 0.5 });
    await plain.step(x, y);
    await decayed.step(x, y);
    const a = plain.parameters(),
      b = decayed.parameters();
    const L = Math.max(...[...p0.keys()].map((k) => Number(/\.layer\.(\d+)\./.exec(k)?.[1] ?? -1))) + 1;
    let checked = 0;
    for (const [k, v0] of p0) {
      const block = /\.layer\.(\d+)\./.exec(k),
        depth = block ? Number(block[1]) + 1 : k.includes('.embeddings.') ? 0 : L + 1,
        want = 0.5 ** (L + 1 - depth);
      for (let i = 0; i < v0.length; i += 7) {
        const d1 = a.get(k)![i] - v0[i],
          d2 = b.get(k)![i] - v0[i];
        if (Math.abs(d1) < 1e-5) continue; // a step lost in rounding says nothing about its scale
        expect(Math.abs(d2 / d1 - want), `${k}[${i}]`).toBeLessThan(1e-2 * want); // (f32 rounding of the updated values)
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    await expect(createTrainer(null, { from: dir, layerDecay: 1.5 })).rejects.toThrow(
      /layerDecay must be a number in \(0, 1\], got 1.5/,
    );
  });
});
