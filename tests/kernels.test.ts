// Every SIMD kernel against its scalar f64 reference at tile edges: sizes equal to, below, above and
// not a multiple of the tile, odd K, strided rows, and canaries around every output.
import v8 from 'node:v8';
import { beforeAll, describe, expect, test } from 'vitest';
import { EPI, KERNELS, compileKernels, hasRelaxedSimd, instantiateKernels, type KernelExports, type SimdFlavor } from '../src/kernels.js';
import { WasmMemory } from '../src/memory.js';
import { packWeight, paddedSize } from '../src/pack.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // so the relaxed build is tested too
const CANARY = 12345.678;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32; };
}

class Harness {
  mem = new WasmMemory();
  k!: KernelExports;
  rand = rng(42);
  async init(flavor: SimdFlavor) { this.k = instantiateKernels((await compileKernels(flavor)).module, this.mem.memory); }
  reset() { this.mem.reset(65536); }
  /** n floats of normal-ish noise × scale, with `pad` canaries after them. */
  put(values: ArrayLike<number>, pad = 16): number {
    const p = this.mem.alloc(values.length + pad);
    const v = this.mem.f32(p, values.length + pad);
    v.set(values); v.fill(CANARY, values.length);
    return p;
  }
  noise(n: number, scale = 1): Float32Array {
    return Float32Array.from({ length: n }, () => (this.rand() + this.rand() + this.rand() - 1.5) * 2 * scale);
  }
  get(p: number, n: number) { return this.mem.f32(p, n).slice(); }
  clone(p: number, n: number) { return this.put(this.get(p, n)); }
}

function expectClose(got: Float32Array, want: Float32Array, atol: number, rtol: number, what: string) {
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol)) throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

const flavors: SimdFlavor[] = ['simd', 'relaxed'];

describe.each(flavors)('kernels (%s build)', (flavor) => {
  const h = new Harness();
  beforeAll(async () => {
    expect(flavor === 'simd' || hasRelaxedSimd()).toBe(true);
    await h.init(flavor);
  });

  test('the registry names real exports', () => {
    for (const op of Object.values(KERNELS)) {
      expect(typeof h.k[op.simd]).toBe('function');
      if (op.ref) expect(typeof h.k[op.ref]).toBe('function');
    }
  });

  test.each([1, 3, 4, 5, 8, 9, 13])('gemm M=%i over N, K, epilogues, strides', (M) => {
    for (const N of [1, 7, 8, 9, 16, 17, 23]) for (const K of [1, 3, 8, 17]) for (const epi of [EPI.STORE, EPI.ADD, EPI.GELU]) {
      h.reset();
      const lda = K + (M % 2), ldc = N + (N % 3);
      const a = h.put(h.noise(M * lda)), w = h.noise(N * K), bias = h.noise(paddedSize(N));
      bias.fill(0, N);
      const wp = h.put(packWeight(w, N, K)), wr = h.put(w), bp = h.put(bias);
      const c0 = h.noise(M * ldc);
      const cs = h.put(c0), cr = h.put(c0);
      h.k.gemm_4x8_simd(a, lda, wp, bp, cs, ldc, M, N, K, epi);
      h.k.gemm_ref(a, lda, wr, bp, cr, ldc, M, N, K, epi);
      const got = h.get(cs, M * ldc + 16), want = h.get(cr, M * ldc + 16);
      expectClose(got, want, 2e-6 * Math.sqrt(K), 1e-6, `gemm M=${M} N=${N} K=${K} epi=${epi}`);
      // columns between N and ldc, and everything after the last row, are untouched
      for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) expect(got[i * ldc + j]).toBe(c0[i * ldc + j]);
      expect(Array.from(got.subarray(M * ldc))).toEqual(Array(16).fill(Math.fround(CANARY)));
    }
  });

  test('gemm with no bias (pointer 0)', () => {
    h.reset();
    const M = 5, N = 11, K = 9;
    const a = h.put(h.noise(M * K)), w = h.noise(N * K);
    const cs = h.put(new Float32Array(M * N)), cr = h.put(new Float32Array(M * N));
    h.k.gemm_4x8_simd(a, K, h.put(packWeight(w, N, K)), 0, cs, N, M, N, K, EPI.STORE);
    h.k.gemm_ref(a, K, h.put(w), 0, cr, N, M, N, K, EPI.STORE);
    expectClose(h.get(cs, M * N), h.get(cr, M * N), 1e-5, 1e-6, 'gemm no bias');
  });

  test.each([1, 3, 4, 5, 8, 33, 40, 768])('layernorm D=%i', (D) => {
    for (const rows of [1, 2, 5]) for (const eps of [1e-12, 1e-6]) {
      h.reset();
      const ldx = D + 3;
      // a large common offset: a one-pass variance would lose digits here
      const x = h.put(h.noise(rows * ldx).map((v) => v * 3 + 50));
      const g = h.put(h.noise(D, 1).map((v) => v + 1)), b = h.put(h.noise(D));
      const ys = h.put(new Float32Array(rows * D)), yr = h.put(new Float32Array(rows * D));
      h.k.layernorm_simd(x, ldx, ys, D, g, b, rows, D, eps);
      h.k.layernorm_ref(x, ldx, yr, D, g, b, rows, D, eps);
      expectClose(h.get(ys, rows * D + 16), h.get(yr, rows * D + 16), 2e-5, 1e-5, `layernorm D=${D} rows=${rows}`);
    }
  });

  test('gelu: erf within 1e-6 over [-12, 12], tails at every length, special values', () => {
    h.reset();
    const n = 24001;
    const xs = Float32Array.from({ length: n }, (_, i) => -12 + i * 0.001);
    const x = h.put(xs), ys = h.put(new Float32Array(n)), yr = h.put(new Float32Array(n));
    h.k.gelu_simd(x, ys, n);
    h.k.gelu_ref(x, yr, n);
    const got = h.get(ys, n), want = h.get(yr, n);
    let worstErf = 0;
    for (let i = 0; i < n; i++) {
      // gelu = x/2 (1 + erf(x/√2)), so the erf error is the gelu error divided by |x|/2
      if (Math.abs(xs[i]) > 1e-3) worstErf = Math.max(worstErf, Math.abs(got[i] - want[i]) / (Math.abs(xs[i]) / 2) - 1.2e-7 * Math.abs(want[i]) / (Math.abs(xs[i]) / 2));
    }
    console.log(`gelu (${flavor}): worst erf error ${worstErf.toExponential(2)}`);
    expect(worstErf).toBeLessThanOrEqual(1e-6);
    for (const len of [0, 1, 3, 4, 5, 7, 8, 9]) {
      h.reset();
      const v = h.noise(len, 4), a = h.put(v), s = h.put(new Float32Array(len)), r = h.put(new Float32Array(len));
      h.k.gelu_simd(a, s, len); h.k.gelu_ref(a, r, len);
      expectClose(h.get(s, len + 16), h.get(r, len + 16), 1e-6, 1e-6, `gelu n=${len}`);
    }
    h.reset();
    const special = Float32Array.from([0, -0, 1e-30, -1e-30, 40, -40, 1e4, -1e4, 3.4e38, -3.4e38]);
    const sp = h.put(special), so = h.put(new Float32Array(special.length));
    h.k.gelu_simd(sp, so, special.length);
    const out = h.get(so, special.length);
    special.forEach((v, i) => {
      // tiny |x|: x/2; large x: x; large -x: (-)0 — never NaN or Infinity
      const want = Math.abs(v) < 1 ? v / 2 : v > 0 ? v : 0;
      expect(Math.abs(out[i] - want)).toBeLessThanOrEqual(Math.abs(want) * 1e-6);
    });
  });

  test.each([1, 2, 3, 4, 5, 8, 9, 17, 197])('softmax n=%i', (n) => {
    h.reset();
    const rows = 3, ld = n + 2;
    const x0 = h.noise(rows * ld, 10);
    const s = h.put(x0), r = h.put(x0);
    h.k.softmax_rows_simd(s, ld, rows, n);
    h.k.softmax_rows_ref(r, ld, rows, n);
    const got = h.get(s, rows * ld + 16);
    expectClose(got, h.get(r, rows * ld + 16), 1e-6, 1e-5, `softmax n=${n}`);
    for (let i = 0; i < rows; i++) {
      expect(got.subarray(i * ld, i * ld + n).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (let j = n; j < ld; j++) expect(got[i * ld + j]).toBe(x0[i * ld + j]);
    }
  });

  test.each([1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 50])('attention T=%i', (T) => {
    for (const [H, dh] of [[1, 1], [2, 3], [3, 4], [2, 5], [2, 8], [3, 11], [2, 19], [1, 64]]) {
      h.reset();
      const D = H * dh, T8 = Math.ceil(T / 8) * 8;
      const qkv = h.put(h.noise(T * 3 * D, 1.5));
      const os = h.put(new Float32Array(T * D)), or = h.put(new Float32Array(T * D));
      const ps = h.put(new Float32Array(T * T)), pr = h.put(new Float32Array(T * T));
      const kt = h.put(new Float32Array(dh * T8)), scratch = h.put(new Float32Array(4 * T8));
      const all = h.get(qkv, T * 3 * D);
      for (let head = 0; head < H; head++) {
        h.k.attention_pack_kt(qkv, kt, T, D, dh, head);
        const got = h.get(kt, dh * T8 + 16);
        for (let d = 0; d < dh; d++) for (let j = 0; j < T8; j++) {
          expect(got[(j >> 3) * dh * 8 + d * 8 + (j & 7)]).toBe(j < T ? all[j * 3 * D + D + head * dh + d] : 0);
        }
        expect(got[dh * T8]).toBe(Math.fround(CANARY));
        // the simd kernel in two row ranges, as two workers would split it
        const mid = Math.floor(T / 3) | 1;
        h.k.attention_head_simd(qkv, kt, os, scratch, ps, T, D, dh, head, 1 / Math.sqrt(dh), 0, Math.min(mid, T));
        h.k.attention_head_simd(qkv, kt, os, scratch, ps, T, D, dh, head, 1 / Math.sqrt(dh), Math.min(mid, T), T);
        h.k.attention_head_ref(qkv, 0, or, 0, pr, T, D, dh, head, 1 / Math.sqrt(dh), 0, T);
        expectClose(h.get(ps, T * T + 16), h.get(pr, T * T + 16), 1e-6, 1e-5, `attention probs T=${T} H=${H} dh=${dh} head=${head}`);
      }
      expectClose(h.get(os, T * D + 16), h.get(or, T * D + 16), 1e-5, 1e-5, `attention T=${T} H=${H} dh=${dh}`);
    }
  });

  test('patchify and embed_tokens equal their references exactly', () => {
    for (const [B, C, Hp, Wp, p] of [[1, 1, 4, 4, 2], [2, 3, 20, 25, 5], [2, 3, 16, 16, 4], [1, 3, 24, 24, 8], [2, 1, 28, 28, 7], [1, 3, 9, 6, 3]]) {
      h.reset();
      const Np = (Hp / p) * (Wp / p), K = C * p * p, D = 13, T = Np + 1;
      const img = h.put(h.noise(B * C * Hp * Wp));
      const ps = h.put(new Float32Array(B * Np * K)), pr = h.put(new Float32Array(B * Np * K));
      h.k.patchify_simd(img, ps, B, C, Hp, Wp, p);
      h.k.patchify_ref(img, pr, B, C, Hp, Wp, p);
      expect(h.get(ps, B * Np * K + 16)).toEqual(h.get(pr, B * Np * K + 16));
      const pe = h.put(h.noise(B * Np * D)), cls = h.put(h.noise(D)), pos = h.put(h.noise(T * D));
      const xs = h.put(new Float32Array(B * T * D)), xr = h.put(new Float32Array(B * T * D));
      h.k.embed_tokens_simd(pe, cls, pos, xs, B, T, D);
      h.k.embed_tokens_ref(pe, cls, pos, xr, B, T, D);
      expect(h.get(xs, B * T * D + 16)).toEqual(h.get(xr, B * T * D + 16));
    }
  });
});
