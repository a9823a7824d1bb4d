// int8 GEMM (quantize_rows_u7 + gemm_i8_4x8) against the f32 GEMM (gemm_4x8) at ViT-B/16's shapes,
// one thread, side by side in one process; times include the activation quantization, also timed
// alone beside its scalar reference.
//   node bench/gemm-i8.mjs [--simd simd|relaxed] [--reps N]
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { compileKernels, instantiateKernels } from '../dist/kernels.js';

const { values } = parseArgs({
  options: { simd: { type: 'string', default: 'relaxed' }, reps: { type: 'string', default: '7' } },
});
if (values.simd === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
const k = instantiateKernels((await compileKernels(values.simd)).module, memory);
let top = 65536;
const alloc = (bytes) => {
  const p = top;
  top += Math.ceil(bytes / 64) * 64;
  if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
  return p;
};
const fill = (p, n) => new Float32Array(memory.buffer, p, n).forEach((_, i, a) => (a[i] = Math.sin(i * 0.37)));
const T = 197;
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
console.log(`${values.simd} build, one thread, M = ${T}`);
for (const [name, N, K] of [
  ['qkv', 2304, 768],
  ['fc1', 3072, 768],
  ['fc2', 768, 3072],
]) {
  const a = alloc(T * K * 4),
    c = alloc(T * N * 4),
    w = alloc(Math.ceil(N / 8) * 8 * K * 4),
    b = alloc(Math.ceil(N / 8) * 8 * 4);
  fill(a, T * K);
  fill(w, Math.ceil(N / 8) * 8 * K);
  const aq = alloc(Math.ceil(T / 4) * 4 * K),
    sa = alloc(T * 4),
    za = alloc(T * 4),
    wq = alloc(Math.ceil(N / 8) * 8 * K),
    wsum = alloc(Math.ceil(N / 8) * 32),
    sw = alloc(Math.ceil(N / 8) * 32);
  new Int8Array(memory.buffer, wq, Math.ceil(N / 8) * 8 * K).forEach((_, i, x) => (x[i] = ((i * 37) % 255) - 127));
  new Float32Array(memory.buffer, sw, N).fill(0.01);
  const f32 = () => k.gemm_4x8(a, K, w, b, c, N, T, N, K, 0);
  const i8 = () => {
    k.quantize_rows_u7(a, K, aq, K, sa, za, T, K);
    k.gemm_i8_4x8(aq, sa, za, wq, wsum, sw, b, c, N, T, N, K, 0);
  };
  const quant = () => k.quantize_rows_u7(a, K, aq, K, sa, za, T, K),
    quantRef = () => k.quantize_rows_u7_ref(a, K, aq, K, sa, za, T, K);
  const t = { f32: [], i8: [], quant: [], quantRef: [] };
  for (let r = 0; r < Number(values.reps); r++)
    for (const [key, fn] of [
      ['f32', f32],
      ['i8', i8],
      ['quant', quant],
      ['quantRef', quantRef],
    ]) {
      fn();
      const t0 = performance.now();
      for (let j = 0; j < 3; j++) fn();
      t[key].push((performance.now() - t0) / 3);
    }
  const mf = median(t.f32),
    mi = median(t.i8);
  const gmac = (T * N * K) / 1e9;
  console.log(
    `${name.padEnd(4)} ${N}x${K}: f32 ${mf.toFixed(2)} ms (${(gmac / (mf / 1000)).toFixed(1)} GMAC/s), int8 ${mi.toFixed(2)} ms (${(gmac / (mi / 1000)).toFixed(1)} GMAC/s), int8/f32 ${(mi / mf).toFixed(2)}x; of which row quantization ${median(t.quant).toFixed(3)} ms (scalar reference ${median(t.quantRef).toFixed(3)} ms)`,
  );
}
