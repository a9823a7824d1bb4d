// Soak: many forwards on one model, then many load/dispose cycles, printing the process's RSS, JS
// heap, OS threads and open file descriptors every K calls, to show that nothing grows without
// bound (leaked workers, listeners, wasm memories, file handles). Not in CI: it takes minutes.
//   node bench/soak.mjs [--model DIR] [--forwards N] [--cycles N] [--every K] [--threads T]
// Run `npm run build` first; run with `node --expose-gc` for heap figures after collection. Threads and fds are read from /proc (Linux); elsewhere they print -.
import { readdirSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: new URL('../assets/mnist-vit/', import.meta.url).pathname },
    forwards: { type: 'string', default: '100000' },
    cycles: { type: 'string', default: '2000' },
    every: { type: 'string', default: '10000' },
    threads: { type: 'string', default: '2' },
  },
});
const forwards = Number(values.forwards),
  cycles = Number(values.cycles),
  every = Number(values.every),
  threads = Number(values.threads);

const mb = (b) => (b / 2 ** 20).toFixed(1);
function threadsNow() {
  try {
    return /Threads:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1];
  } catch {
    return '-';
  }
}
function fdsNow() {
  try {
    return String(readdirSync('/proc/self/fd').length);
  } catch {
    return '-';
  }
}
/** One line of the series; with --expose-gc, after a full collection so the heap shows what is live. */
function row(phase, n, t0) {
  globalThis.gc?.();
  const m = process.memoryUsage();
  console.log(
    [
      phase,
      n,
      mb(m.rss),
      mb(m.heapUsed),
      mb(m.external + m.arrayBuffers),
      threadsNow(),
      fdsNow(),
      ((performance.now() - t0) / 1000).toFixed(1),
    ]
      .map(String)
      .map((s, i) => (i === 0 ? s.padEnd(9) : s.padStart(10)))
      .join(''),
  );
}

console.log(`soak: ${values.model}, ${threads} threads, node ${process.version}`);
console.log(
  ['phase', 'calls', 'rss MB', 'heap MB', 'ext MB', 'threads', 'fds', 's']
    .map((s, i) => (i === 0 ? s.padEnd(9) : s.padStart(10)))
    .join(''),
);
let t0 = performance.now();
const model = await loadModel(values.model, { threads });
const input = new Float32Array(model.inputSize).map((_, i) => Math.sin(i));
const first = Array.from(await model.forward(input));
row('forward', 0, t0);
for (let i = 1; i <= forwards; i++) {
  const out = await model.forward(input);
  if (out[0] !== first[0]) throw new Error(`forward ${i} differs from the first`);
  if (i % every === 0) row('forward', i, t0);
}
await model.dispose();

t0 = performance.now();
const cycleEvery = Math.max(1, Math.round(every / 50));
for (let i = 1; i <= cycles; i++) {
  const m = await loadModel(values.model, { threads });
  await m.forward(input);
  await m.dispose();
  if (i % cycleEvery === 0 || i === 1) row('load', i, t0);
}
