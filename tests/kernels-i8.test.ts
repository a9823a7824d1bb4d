// The int8 GEMM (assembly/gemm_i8.ts) against its scalar reference at tile edges, in both builds:
// the sums are exact integers, so the kernel must match the reference (and the other build) to the
// bit, GELU aside; and the u7 row quantizer (scale and zero point per row) against the same rule
// written here.
import v8 from 'node:v8';
import { describe, expect, test } from 'vitest';
import { quantizeRows } from '../src/export/quantize.js';
import {
  compileKernels,
  EPI,
  instantiateKernels,
  type KernelExports,
  type SimdFlavor,
  tileEdges,
} from '../src/runtime/kernels.js';
import { WasmMemory } from '../src/runtime/memory.js';
import { packWeightI8 } from '../src/runtime/pack.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Round half to even, as f32.nearest. */
const nearest = (x: number) => {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

async function kernels(flavor: SimdFlavor) {
  const mem = new WasmMemory();
  return { mem, k: instantiateKernels((await compileKernels(flavor)).module, mem.memory) as KernelExports };
}

const CANARY = 12345.678;

/** One case in one build: returns the kernel's and the reference's outputs (with canaries after C). */
function run(
  { mem, k }: { mem: WasmMemory; k: KernelExports },
  M: number,
  N: number,
  K: number,
  epi: number,
  seed: number,
): { got: Float32Array; want: Float32Array; scales: Float32Array } {
  mem.reset(65536);
  const rand = rng(seed);
  // rows of every kind the zero point meets: centred (with outliers), all positive, all negative, zero
  const shift = [0, 3, -3, 0.5];
  const a = Float32Array.from({ length: M * K }, (_, j) => {
    const row = Math.floor(j / K);
    if (row % 7 === 6) return 0;
    return (rand() - 0.5) * 4 * (rand() < 0.05 ? 10 : 1) + shift[row % 4];
  });
  const w = Float32Array.from({ length: N * K }, () => rand() - 0.5);
  const { q, scale } = quantizeRows(w, N, K);
  const { wq, wsum, Kp } = packWeightI8(q, N, K);
  const bytes = (n: number) => mem.alloc(Math.ceil(n / 4) + 16);
  const u8 = (p: number, n: number) => new Uint8Array(mem.memory.buffer, p, n);
  const f32 = (p: number, n: number) => mem.f32(p, n);
  // aq interleaved by blocks of 4 rows: row i's byte k at aqAt(i, k)
  const aqBytes = Math.ceil(M / 4) * 4 * Kp,
    aqAt = (i: number, k: number) => (i >> 2) * 4 * Kp + (k >> 2) * 16 + (i & 3) * 4 + (k & 3),
    ldc = N + 3;
  const pa = mem.alloc(M * K),
    paq = bytes(aqBytes),
    psa = mem.alloc(M + 4),
    pza = mem.alloc(M + 4);
  f32(pa, M * K).set(a);
  // the rows of a partial last block are never written: garbage there (codes above 127 too) must not
  // reach the output
  u8(paq, aqBytes).fill(0xff);
  k.quantize_rows_u7(pa, K, paq, Kp, psa, pza, M, K);
  // the SIMD quantizer equals its scalar reference byte for byte
  const qr = bytes(aqBytes),
    sr = mem.alloc(M + 4),
    zr = mem.alloc(M + 4);
  u8(qr, aqBytes).fill(0xff);
  k.quantize_rows_u7_ref(pa, K, qr, Kp, sr, zr, M, K);
  expect(Array.from(u8(paq, aqBytes)), 'quantize_rows_u7 vs its reference').toEqual(Array.from(u8(qr, aqBytes)));
  expect(Array.from(u8(psa, 4 * M)), 'scales vs the reference').toEqual(Array.from(u8(sr, 4 * M)));
  expect(Array.from(u8(pza, 4 * M)), 'zero points vs the reference').toEqual(Array.from(u8(zr, 4 * M)));
  const pwq = bytes(wq.length),
    pw = bytes(N * K),
    pwsum = mem.alloc(wsum.length),
    psw = mem.alloc(wsum.length),
    pb = mem.alloc(wsum.length);
  new Int8Array(mem.memory.buffer, pwq, wq.length).set(wq);
  new Int8Array(mem.memory.buffer, pw, q.length).set(q);
  new Int32Array(mem.memory.buffer, pwsum, wsum.length).set(wsum);
  f32(psw, N).set(scale);
  f32(pb, N).set(Float32Array.from({ length: N }, () => rand() - 0.5));
  const start = Float32Array.from({ length: M * ldc + 8 }, (_, i) => (i < M * ldc ? rand() - 0.5 : CANARY));
  const pc = mem.alloc(start.length),
    pr = mem.alloc(start.length);
  f32(pc, start.length).set(start);
  f32(pr, start.length).set(start);
  k.gemm_i8_4x8(paq, psa, pza, pwq, pwsum, psw, pb, pc, ldc, M, N, Kp, epi);
  k.gemm_i8_ref(paq, Kp, psa, pza, pw, psw, pb, pr, ldc, M, N, K, epi);
  // the quantizer, row by row, against the rule
  const sa = f32(psa, M).slice(),
    za = new Int32Array(mem.memory.buffer, pza, M).slice(),
    aq = u8(paq, aqBytes).slice();
  for (let i = 0; i < M; i++) {
    let lo = 0,
      hi = 0;
    for (let j = 0; j < K; j++) {
      lo = Math.min(lo, a[i * K + j]);
      hi = Math.max(hi, a[i * K + j]);
    }
    const s = hi > lo ? Math.fround(Math.fround(hi - lo) / 127) : 1;
    expect(sa[i]).toBe(s);
    const inv = Math.fround(1 / s),
      z = Math.min(127, Math.max(0, nearest(Math.fround(-lo * inv))));
    expect(za[i]).toBe(z);
    for (let j = 0; j < Kp; j++) {
      const want = j < K ? Math.min(127, Math.max(0, nearest(Math.fround(a[i * K + j] * inv)) + z)) : z;
      if (aq[aqAt(i, j)] !== want) throw new Error(`quantize row ${i} col ${j}: got ${aq[aqAt(i, j)]}, want ${want}`);
    }
  }
  return { got: f32(pc, start.length).slice(), want: f32(pr, start.length).slice(), scales: sa };
}

const Ms = tileEdges(4),
  Ns = [1, 7, 8, 9, 17],
  Ks = [1, 3, 4, 5, 15, 16, 17, 37, 64];

describe('gemm_i8_4x8', () => {
  const results = new Map<string, Float32Array>();
  for (const flavor of ['simd', 'relaxed'] as SimdFlavor[]) {
    test(`${flavor} build: equals gemm_i8_ref bit for bit (store, residual add), GELU within 1e-6`, async () => {
      const h = await kernels(flavor);
      let seed = 1;
      for (const M of Ms)
        for (const N of Ns)
          for (const K of Ks)
            for (const epi of [EPI.STORE, EPI.ADD, EPI.GELU]) {
              const { got, want } = run(h, M, N, K, epi, seed++);
              const what = `M=${M} N=${N} K=${K} epi=${epi}`;
              if (epi === EPI.GELU) {
                for (let i = 0; i < want.length; i++)
                  if (!(Math.abs(got[i] - want[i]) <= 1e-6 + 1e-6 * Math.abs(want[i])))
                    throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]}`);
              } else expect(Array.from(got), what).toEqual(Array.from(want));
              expect(got[got.length - 1], `${what}: canary`).toBe(Math.fround(CANARY));
              const prev = results.get(what);
              if (prev) expect(Array.from(got), `${what}: the two builds differ`).toEqual(Array.from(prev));
              results.set(what, got);
            }
    });
  }
});

describe('quantize_pack_weights_i8 (int8 weights quantized as they load)', () => {
  for (const flavor of ['simd', 'relaxed'] as SimdFlavor[]) {
    test(`${flavor} build: equals quantizeRows + packWeightI8 byte for byte, ties to even, at quad edges`, async () => {
      const { mem, k } = await kernels(flavor);
      for (const N of [1, 7, 8, 9, 17])
        for (const K of [1, 3, 4, 5, 15, 16, 17, 37, 64]) {
          mem.reset(65536);
          const rand = rng(N * 100 + K);
          // row 0 all zero; row 1 of max 127 with half-integers (exact ties after scaling by 1);
          // the rest random with an outlier now and then
          const w = Float32Array.from({ length: N * K }, (_, i) => {
            const r = Math.floor(i / K);
            if (r === 0) return 0;
            if (r === 1) return i % K === 0 ? 127 : (i % 7) - 3.5;
            return (rand() - 0.5) * (rand() < 0.05 ? 20 : 1);
          });
          const { q, scale } = quantizeRows(w, N, K);
          const want = packWeightI8(q, N, K);
          const { Kp } = want,
            bytes = Math.ceil(N / 8) * 8 * Kp;
          const pw = mem.alloc(N * K),
            pwq = mem.alloc(bytes / 4),
            pwsum = mem.alloc(Math.ceil(N / 8) * 8),
            psw = mem.alloc(Math.ceil(N / 8) * 8);
          mem.f32(pw, N * K).set(w);
          new Int8Array(mem.memory.buffer, pwq, bytes).fill(0);
          // in two calls, as the loader's row blocks come
          const half = Math.floor(N / 2);
          k.quantize_pack_weights_i8(pw, half, K, pwq, Kp, pwsum, psw, 0);
          k.quantize_pack_weights_i8(pw + half * K * 4, N - half, K, pwq, Kp, pwsum, psw, half);
          const what = `N=${N} K=${K}`;
          expect(Array.from(new Int8Array(mem.memory.buffer, pwq, bytes)), what).toEqual(Array.from(want.wq));
          expect(Array.from(new Int32Array(mem.memory.buffer, pwsum, N)), what).toEqual(
            Array.from(want.wsum.subarray(0, N)),
          );
          expect(Array.from(mem.f32(psw, N)), what).toEqual(Array.from(scale));
        }
    });
  }
  test('ties go to the even integer', () => {
    const { q } = quantizeRows(Float32Array.from([127, 2.5, -2.5, 1.5, -1.5, 0.5, -0.5]), 1, 7);
    expect(Array.from(q)).toEqual([127, 2, -2, 2, -2, 0, 0]);
  });
});
