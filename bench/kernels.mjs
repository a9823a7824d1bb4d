// Per-kernel throughput at a preset's real shapes (one thread, in this process): where a forward's
// time goes. Usage: node bench/kernels.mjs [--preset deit-tiny] [--simd simd|relaxed]
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { compileKernels, instantiateKernels, KERNELS, kernelName } from '../dist/kernels.js';
import { PRESETS } from '../dist/presets.js';

const { values } = parseArgs({
  options: { preset: { type: 'string', default: 'deit-tiny' }, simd: { type: 'string', default: 'simd' } },
});
if (values.simd === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const d = PRESETS[values.preset],
  D = d.hiddenSize,
  M = d.intermediateSize,
  H = d.numHeads,
  dh = D / H;
const T = (d.imageSize[0] / d.patchSize) ** 2 + 1,
  T8 = Math.ceil(T / 8) * 8;
const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
const k = instantiateKernels((await compileKernels(values.simd)).module, memory);
// rows are labelled and called through the kernel registry: op, tile and arithmetic of this build
const K = (op) => k[KERNELS[op].kernel];
const name = (op) => kernelName(op, values.simd).padEnd(20);
let top = 65536;
const alloc = (n) => {
  const p = top;
  top += Math.ceil((n * 4) / 64) * 64;
  if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
  new Float32Array(memory.buffer, p, n).fill(0.01);
  return p;
};
const x = alloc(T * M),
  y = alloc(T * 3 * D),
  w = alloc(Math.ceil((3 * D) / 8) * 8 * M),
  b = alloc(4 * M),
  kt = alloc(D * T8),
  s = alloc(4 * T8);
function time(name, flops, fn) {
  for (let i = 0; i < 20; i++) fn();
  const n = 30,
    t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  const ms = (performance.now() - t0) / n;
  console.log(
    `${name.padEnd(34)} ${ms.toFixed(3).padStart(8)} ms  ${flops ? `${(flops / ms / 1e6).toFixed(1).padStart(6)} GFLOP/s` : ''}`,
  );
  return ms;
}
console.log(`${values.preset} shapes, ${values.simd} build, one thread; per layer:`);
let total = 0;
total += time(`${name('gemm')} qkv  ${T}x${D} -> ${3 * D}`, 2 * T * D * 3 * D, () =>
  K('gemm')(x, D, w, b, y, 3 * D, T, 3 * D, D, 0),
);
total += time(`${name('gemm')} proj ${T}x${D} -> ${D}`, 2 * T * D * D, () => K('gemm')(x, D, w, b, y, D, T, D, D, 1));
total += time(`${name('gemm')} fc1  ${T}x${D} -> ${M} +gelu`, 2 * T * D * M, () =>
  K('gemm')(x, D, w, b, y, M, T, M, D, 2),
);
total +=
  time(`${name('gemm')} fc1  ${T}x${D} -> ${M} (no gelu)`, 2 * T * D * M, () =>
    K('gemm')(x, D, w, b, y, M, T, M, D, 0),
  ) * 0;
total += time(`${name('gemm')} fc2  ${T}x${M} -> ${D}`, 2 * T * M * D, () => K('gemm')(x, M, w, b, y, D, T, D, M, 1));
total += time(`${name('attention')} ${H} heads x ${T} rows, dh ${dh}`, 4 * T * T * D, () => {
  for (let h = 0; h < H; h++) {
    K('attentionPackKt')(y, kt, T, D, dh, h);
    K('attention')(y, kt, x, s, 0, T, D, dh, h, 0.125, 0, T);
  }
});
total += time(`${name('layernorm')} x2 ${T}x${D}`, 0, () => {
  K('layernorm')(x, D, y, D, w, b, T, D, 1e-6);
  K('layernorm')(x, D, y, D, w, b, T, D, 1e-6);
});
console.log(`sum per layer ${total.toFixed(3)} ms; x ${d.numLayers} layers = ${(total * d.numLayers).toFixed(1)} ms`);
