// Per-kernel throughput at real model shapes (bench/shapes.json), one thread, in this process, as
// a percentage of this core's ceiling measured in the same run (bench/ceiling.ts): where a
// forward's time goes, and how far each kernel is from the machine.
//   node bench/kernels.mjs [--model vit-b16|…|all] [--simd simd|relaxed] [--rounds N]
// The GEMMs run as the forward runs them: each of L layers has its own weights (so W comes from
// memory, not from a cache warmed by the previous call), cut into the forward's row blocks
// (gemmBlocks). Attention is every head of every row; the int8 rows include quantizing the input;
// the backward rows are one training batch (4 images) through fc1: dX = dY·W and dW += dYᵀ·X, as
// src/nn/ops.ts (linearBackward) runs them (dW over packed copies, their packing included).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import {
  attentionPanelFloats,
  compileKernels,
  EPI,
  gemmBlocks,
  gemmRowBlock,
  instantiateKernels,
  KERNELS,
  kernelName,
} from '../dist/kernels.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'vit-b16' },
    simd: { type: 'string', default: 'relaxed' },
    rounds: { type: 'string', default: '5' },
  },
});
const flavor = values.simd;
if (flavor === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
const SHAPES = JSON.parse(readFileSync(new URL('./shapes.json', import.meta.url), 'utf8'));
const models = values.model === 'all' ? Object.keys(SHAPES).filter((m) => m !== '_') : [values.model];
for (const m of models) if (!SHAPES[m]) throw new Error(`bench/kernels.mjs: no model ${m} in bench/shapes.json`);

// ---- the ceiling, measured beside the kernels (best of 3, before each model) ----
const ceilingWasm = new URL(`../build/bench/ceiling-${flavor}.wasm`, import.meta.url);
const ceil = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(ceilingWasm)), {
  env: { memory: new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true }) },
}).exports;
function ceilings() {
  const best = (fn, opsPerIter) => {
    fn(2e6);
    let top = 0;
    for (let r = 0; r < 3; r++) {
      const t0 = performance.now();
      fn(1e7);
      top = Math.max(top, (1e7 * opsPerIter) / (performance.now() - t0) / 1e6);
    }
    return top;
  };
  return {
    f32: best((n) => ceil.peak(n, 1), 96),
    i8: flavor === 'relaxed' ? best((n) => ceil.peak_i8(n, 1), 384) : NaN,
  };
}

// ---- memory ----
const memory = new WebAssembly.Memory({ initial: 2, maximum: 65536, shared: true });
const k = instantiateKernels((await compileKernels(flavor)).module, memory);
let top = 65536;
function alloc(bytes, fill = true) {
  const p = top;
  top += Math.ceil(bytes / 64) * 64 + 64;
  if (top > memory.buffer.byteLength) memory.grow(Math.ceil((top - memory.buffer.byteLength) / 65536));
  if (fill) new Float32Array(memory.buffer, p, bytes >> 2).forEach((_, i, a) => (a[i] = Math.sin(i * 0.37) * 0.1));
  return p;
}

// ms per call, min and median of `rounds` rounds; each round repeats fn for ≥ 20 ms, after ≥ 200 ms
// of warm-up (V8 starts wasm on its baseline compiler and tiers up in the background).
function measure(rounds, fn) {
  let reps = 0;
  for (const t0 = performance.now(); performance.now() - t0 < 200 || reps < 3; reps++) fn();
  const t1 = performance.now();
  fn();
  reps = Math.max(1, Math.ceil(20 / Math.max(0.001, performance.now() - t1)));
  const ts = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) fn();
    ts.push((performance.now() - t0) / reps);
  }
  ts.sort((a, b) => a - b);
  return { min: ts[0], median: ts[ts.length >> 1] };
}

const rounds = Number(values.rounds);
for (const model of models) {
  const { tokens: T, hidden: D, heads: H, mlp: M, layers: L, what } = SHAPES[model];
  top = 65536; // reuse the memory for each model
  const dh = D / H,
    T8 = Math.ceil(T / 8) * 8,
    pad8 = (n) => Math.ceil(n / 8) * 8;
  const x = alloc(T * M * 4),
    h = alloc(T * M * 4),
    y = alloc(T * 3 * D * 4),
    b = alloc(pad8(M) * 4),
    kv = alloc(attentionPanelFloats(T, dh) * 4),
    s = alloc(4 * T8 * 4);
  const layers = Array.from({ length: L }, () => ({
    qkv: alloc(pad8(3 * D) * D * 4),
    proj: alloc(pad8(D) * D * 4),
    fc1: alloc(pad8(M) * D * 4),
    fc2: alloc(pad8(D) * M * 4),
  }));
  const gemm = (a, w, c, N, K, epi) => {
    for (const [r0, r1, c0, c1] of gemmBlocks(T, N, K, 1, KERNELS.gemm.tile))
      k.gemm_4x8(a + r0 * K * 4, K, w + c0 * K * 4, b + c0 * 4, c + (r0 * N + c0) * 4, N, r1 - r0, c1 - c0, K, epi);
  };
  const c = ceilings();
  const rows = [];
  const row = (label, op, flops, ceiling, fn) => {
    const t = measure(rounds, fn);
    rows.push({ label, name: kernelName(op, flavor), flops, ceiling, ...t });
  };
  const perLayers = (fn) => () => {
    for (const l of layers) fn(l);
  };
  row(
    `qkv  ${T}x${D} -> ${3 * D}`,
    'gemm',
    2 * T * D * 3 * D * L,
    c.f32,
    perLayers((l) => gemm(x, l.qkv, y, 3 * D, D, EPI.STORE)),
  );
  row(
    `proj ${T}x${D} -> ${D}`,
    'gemm',
    2 * T * D * D * L,
    c.f32,
    perLayers((l) => gemm(x, l.proj, y, D, D, EPI.ADD)),
  );
  row(
    `fc1  ${T}x${D} -> ${M} +GELU`,
    'gemm',
    2 * T * D * M * L,
    c.f32,
    perLayers((l) => gemm(x, l.fc1, h, M, D, EPI.GELU)),
  );
  row(
    `fc2  ${T}x${M} -> ${D}`,
    'gemm',
    2 * T * M * D * L,
    c.f32,
    perLayers((l) => gemm(h, l.fc2, y, D, M, EPI.ADD)),
  );
  row(`attention ${H} heads x ${T} rows, dh ${dh}`, 'attention', 4 * T * T * D * L, c.f32, () => {
    for (let l = 0; l < L; l++)
      for (let hh = 0; hh < H; hh++) {
        k.attention_pack_kv(y, kv, T, D, dh, hh);
        k.attention_head(y, kv, x, s, 0, 0, T, D, dh, hh, 1 / Math.sqrt(dh), 0, T);
      }
  });
  row(`layernorm x2 ${T}x${D}`, 'layernorm', 0, NaN, () => {
    for (let l = 0; l < 2 * L; l++) k.layernorm(x, D, y, D, b, b, T, D, 1e-6);
  });
  // int8: one layer's weights, quantized input rows (the forward quantizes each row block's rows)
  {
    const [TM] = KERNELS.gemmI8.tile,
      aq = alloc(Math.ceil(T / TM) * TM * M, false),
      sa = alloc(T * 4),
      za = alloc(T * 4, false),
      wq = alloc(pad8(M) * M, false),
      wsum = alloc(pad8(M) * 4, false),
      sw = alloc(pad8(M) * 4);
    new Int8Array(memory.buffer, wq, pad8(M) * M).forEach((_, i, q) => (q[i] = ((i * 37) % 255) - 127));
    for (const [name, N, K] of [
      ['qkv', 3 * D, D],
      ['fc1', M, D],
      ['fc2', D, M],
    ])
      row(`${name}  int8 ${T}x${K} -> ${N}`, 'gemmI8', 2 * T * K * N, c.i8, () => {
        k.quantize_rows_u7(x, K, aq, K, sa, za, T, K);
        k.gemm_i8_4x8(aq, sa, za, wq, wsum, sw, b, y, N, T, N, K, EPI.STORE);
      });
  }
  // training: a batch of 4 images through fc1's backward (weights unpacked, row-major)
  {
    const R = 4 * T,
      dy = alloc(R * M * 4),
      xs = alloc(R * D * 4),
      dx = alloc(R * D * 4, false),
      w = alloc((M * D + 8) * 4),
      dw = alloc((M * D + 8) * 4);
    // in the row blocks of src/nn/ops.ts (linearBackward)
    row(`fc1 dX ${R}x${M} -> ${D}`, 'gemmStrided', 2 * R * M * D, c.f32, () => {
      for (let r0 = 0, rb = gemmRowBlock(M, 4); r0 < R; r0 += rb)
        k.gemm_4x8_strided(
          dy + r0 * M * 4,
          M * 4,
          4,
          w,
          D * 4,
          dx + r0 * D * 4,
          D,
          Math.min(rb, R - r0),
          D,
          M,
          EPI.STORE,
        );
    });
    const packA = alloc((gemmRowBlock(R, 4) * R + 8) * 4, false),
      packB = alloc(pad8(D) * R * 4, false);
    row(`fc1 dW ${M}x${R} -> ${D} (packed)`, 'gemm', 2 * R * M * D, c.f32, () => {
      k.pack_panels_8(xs, D, packB, R, D);
      for (let n0 = 0, nb = gemmRowBlock(R, 4); n0 < M; n0 += nb) {
        const rows = Math.min(nb, M - n0);
        k.transpose(dy + n0 * 4, M, packA, R, R, rows);
        k.gemm_4x8(packA, R, packB, 0, dw + n0 * D * 4, D, rows, D, R, EPI.ADD);
      }
    });
  }

  console.log(
    `\n${model} (${what}), ${flavor} build, one thread, ${rounds} rounds; ceiling ${c.f32.toFixed(1)} GFLOP/s` +
      `${flavor === 'relaxed' ? ` (FMA), int8 ${c.i8.toFixed(1)} GOP/s` : ' (mul+add chains: a lower bound — see bench/NOTES.md)'}`,
  );
  console.log(
    `${'kernel'.padEnd(22)}${'shape'.padEnd(36)}${'min ms'.padStart(9)}${'median'.padStart(9)}  GFLOP/s  % ceiling`,
  );
  for (const r of rows) {
    const g = r.flops ? r.flops / r.min / 1e6 : NaN;
    console.log(
      `${r.name.padEnd(22)}${r.label.padEnd(36)}${r.min.toFixed(2).padStart(9)}${r.median.toFixed(2).padStart(9)}` +
        `  ${Number.isNaN(g) ? '      -' : g.toFixed(1).padStart(7)}  ${Number.isNaN(g / r.ceiling) ? '-' : `${((100 * g) / r.ceiling).toFixed(0)}%`}`,
    );
  }
  const forward = rows.slice(0, 6).reduce((a, r) => a + r.min, 0);
  console.log(`the forward's ops above: ${forward.toFixed(1)} ms (min) for ${L} layers`);
}
