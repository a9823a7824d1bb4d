// Activation recomputation against keeping every activation: one training step of a 224-px shape
// (deit-tiny, deit-small or vit-b16) on 2 threads, the two interleaved, median ms and their ratio.
// node bench/ab-recompute.mjs [deit-tiny|deit-small|vit-b16] [batch] [rounds]
import { createTrainer } from '../dist/index.js';

const name = process.argv[2] ?? 'deit-tiny',
  B = Number(process.argv[3] ?? 8),
  rounds = Number(process.argv[4] ?? 5);
const D = { 'deit-tiny': [192, 3], 'deit-small': [384, 6], 'vit-b16': [768, 12] }[name];
const dims = {
  imageSize: [224, 224],
  patchSize: 16,
  numChannels: 3,
  hiddenSize: D[0],
  numLayers: 12,
  numHeads: D[1],
  intermediateSize: 4 * D[0],
  numLabels: 10,
  layerNormEps: 1e-12,
};
const x = new Float32Array(B * 3 * 224 * 224).map((_, i) => Math.sin(i));
const y = Array.from({ length: B }, (_, i) => i % 10);
const t = {
  kept: await createTrainer(dims, { maxBatch: B, threads: 2 }),
  recompute: await createTrainer(dims, { maxBatch: B, threads: 2, recompute: true }),
};
const ms = { kept: [], recompute: [] };
for (let r = 0; r < rounds; r++)
  for (const k of r % 2 ? ['recompute', 'kept'] : ['kept', 'recompute']) {
    const t0 = performance.now();
    await t[k].step(x, y);
    ms[k].push(performance.now() - t0);
  }
const med = (a) => a.slice().sort((p, q) => p - q)[a.length >> 1];
console.log(
  name,
  'batch',
  B,
  'ms median kept',
  med(ms.kept).toFixed(0),
  'recompute',
  med(ms.recompute).toFixed(0),
  'ratio',
  (med(ms.recompute) / med(ms.kept)).toFixed(3),
);
await t.kept.dispose();
await t.recompute.dispose();
