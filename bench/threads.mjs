// 1-thread vs N-thread forward latency of a DeiT-Tiny-shaped model (192 hidden, 12 layers, 3 heads,
// 224 px, patch 16), measured side by side in one process: runs alternate between the models so
// both see the same machine state. Usage: node bench/threads.mjs [--threads 1,2] [--runs 20] [--preset deit-tiny]
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { PRESETS, randomModelFiles } from '../dist/presets.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1,2' },
    runs: { type: 'string', default: '20' },
    preset: { type: 'string', default: 'deit-tiny' },
    simd: { type: 'string', default: 'simd' },
  },
});
if (values.simd === 'relaxed') (await import('node:v8')).setFlagsFromString('--experimental-wasm-relaxed-simd');
const threads = values.threads.split(',').map(Number),
  runs = Number(values.runs),
  dims = PRESETS[values.preset];
const files = randomModelFiles(dims, 1);
const models = [];
for (const t of threads) models.push(await loadModel(files, { threads: t, simd: values.simd }));
const input = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.37));
const times = models.map(() => []);
for (const m of models) for (let i = 0; i < 3; i++) await m.forward(input, 1); // warm-up: V8 tiers wasm up while it runs
let ref;
for (let r = 0; r < runs; r++) {
  for (const [i, m] of models.entries()) {
    const t0 = performance.now();
    const out = await m.forward(input, 1);
    times[i].push(performance.now() - t0);
    if (!ref) ref = out;
    else if (out.some((v, j) => v !== ref[j])) throw new Error(`threads=${threads[i]} gave different logits`);
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
const base = median(times[0]);
console.log(`${values.preset}, batch 1, ${runs} runs each, ${values.simd} build, node ${process.version}`);
console.log('threads  median ms    min ms  speedup');
for (const [i, t] of threads.entries()) {
  console.log(
    `${String(t).padStart(7)}  ${median(times[i]).toFixed(1).padStart(9)}  ${Math.min(...times[i])
      .toFixed(1)
      .padStart(8)}  ${(base / median(times[i])).toFixed(2).padStart(6)}x`,
  );
}
for (const m of models) await m.dispose();
