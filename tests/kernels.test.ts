// Every SIMD kernel against its scalar f64 reference at tile edges: sizes equal to, below, above and
// not a multiple of the tile, odd K, strided rows, and canaries around every output.
import v8 from 'node:v8';
import { beforeAll, describe, expect, test } from 'vitest';
import {
  attentionPanelFloats,
  compileKernels,
  EPI,
  hasRelaxedSimd,
  instantiateKernels,
  KERNEL_ARITY,
  KERNELS,
  type KernelExports,
  kernelName,
  type SimdFlavor,
  tileEdges,
} from '../src/runtime/kernels.js';
import { WasmMemory } from '../src/runtime/memory.js';
import { packWeight, paddedSize } from '../src/runtime/pack.js';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // so the relaxed build is tested too
const CANARY = 12345.678;

function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

class Harness {
  mem = new WasmMemory();
  k!: KernelExports;
  rand = rng(42);
  async init(flavor: SimdFlavor) {
    this.k = instantiateKernels((await compileKernels(flavor)).module, this.mem.memory);
  }
  reset() {
    this.mem.reset(65536);
  }
  /** n floats of normal-ish noise × scale, with `pad` canaries after them. */
  put(values: ArrayLike<number>, pad = 16): number {
    const p = this.mem.alloc(values.length + pad);
    const v = this.mem.f32(p, values.length + pad);
    v.set(values);
    v.fill(CANARY, values.length);
    return p;
  }
  noise(n: number, scale = 1): Float32Array {
    return Float32Array.from({ length: n }, () => (this.rand() + this.rand() + this.rand() - 1.5) * 2 * scale);
  }
  get(p: number, n: number) {
    return this.mem.f32(p, n).slice();
  }
  clone(p: number, n: number) {
    return this.put(this.get(p, n));
  }
}

function expectClose(got: Float32Array, want: Float32Array, atol: number, rtol: number, what: string) {
  for (let i = 0; i < want.length; i++) {
    const tol = atol + rtol * Math.abs(want[i]);
    if (!(Math.abs(got[i] - want[i]) <= tol))
      throw new Error(`${what}: element ${i}: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

const flavors: SimdFlavor[] = ['simd', 'relaxed'];

test.each(['simd', 'relaxed', 'single'] as const)(
  'the %s build exports exactly the kernels KERNEL_ARITY lists, each with its arity',
  async (build) => {
    const { module } = await compileKernels(build === 'single' ? 'simd' : build, build !== 'single');
    const k = instantiateKernels(module, new WasmMemory(build !== 'single').memory) as unknown as Record<
      string,
      (...a: number[]) => unknown
    >;
    const names = WebAssembly.Module.exports(module).map((e) => e.name);
    expect(names.sort()).toEqual(Object.keys(KERNEL_ARITY).sort());
    for (const [name, arity] of Object.entries(KERNEL_ARITY)) expect([name, k[name].length]).toEqual([name, arity]);
    // and every kernel and reference the registry names is one of them
    for (const { kernel, ref } of Object.values(KERNELS)) expect(names).toContain(ref ?? kernel);
  },
);

describe.each(flavors)('kernels (%s build)', (flavor) => {
  const h = new Harness();
  beforeAll(async () => {
    expect(flavor === 'simd' || hasRelaxedSimd()).toBe(true);
    await h.init(flavor);
  });

  test('the registry names real exports, and names each kernel by op, tile and arithmetic', () => {
    for (const op of Object.values(KERNELS)) {
      expect(typeof h.k[op.kernel]).toBe('function');
      if (op.ref) expect(typeof h.k[op.ref]).toBe('function');
    }
    expect(kernelName('gemm', flavor)).toBe(flavor === 'relaxed' ? 'gemm_4x8_fma' : 'gemm_4x8_simd');
    expect(kernelName('layernorm', flavor)).toBe('layernorm_simd');
  });

  // sizes around each kernel's register tile, from the registry
  const [GM, GN] = KERNELS.gemm.tile,
    [AR, AK] = KERNELS.attention.tile;

  test.each(tileEdges(GM))(`${kernelName('gemm', flavor)} M=%i over N, K, epilogues, strides`, (M) => {
    for (const N of tileEdges(GN))
      for (const K of [1, 3, 8, 17])
        for (const epi of [EPI.STORE, EPI.ADD, EPI.GELU]) {
          h.reset();
          const lda = K + (M % 2),
            ldc = N + (N % 3);
          const a = h.put(h.noise(M * lda)),
            w = h.noise(N * K),
            bias = h.noise(paddedSize(N));
          bias.fill(0, N);
          const wp = h.put(packWeight(w, N, K)),
            wr = h.put(w),
            bp = h.put(bias);
          const c0 = h.noise(M * ldc);
          const cs = h.put(c0),
            cr = h.put(c0);
          h.k.gemm_4x8(a, lda, wp, bp, cs, ldc, M, N, K, epi);
          h.k.gemm_ref(a, lda, wr, bp, cr, ldc, M, N, K, epi);
          const got = h.get(cs, M * ldc + 16),
            want = h.get(cr, M * ldc + 16);
          expectClose(got, want, 2e-6 * Math.sqrt(K), 1e-6, `gemm M=${M} N=${N} K=${K} epi=${epi}`);
          // columns between N and ldc, and everything after the last row, are untouched
          for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) expect(got[i * ldc + j]).toBe(c0[i * ldc + j]);
          expect(Array.from(got.subarray(M * ldc))).toEqual(Array(16).fill(Math.fround(CANARY)));
        }
  });

  test('gemm with no bias (pointer 0)', () => {
    h.reset();
    const M = 5,
      N = 11,
      K = 9;
    const a = h.put(h.noise(M * K)),
      w = h.noise(N * K);
    const cs = h.put(new Float32Array(M * N)),
      cr = h.put(new Float32Array(M * N));
    h.k.gemm_4x8(a, K, h.put(packWeight(w, N, K)), 0, cs, N, M, N, K, EPI.STORE);
    h.k.gemm_ref(a, K, h.put(w), 0, cr, N, M, N, K, EPI.STORE);
    expectClose(h.get(cs, M * N), h.get(cr, M * N), 1e-5, 1e-6, 'gemm no bias');
  });

  test.each([1, 3, 4, 5, 8, 33, 40, 768])('layernorm D=%i', (D) => {
    for (const rows of [1, 2, 5])
      for (const eps of [1e-12, 1e-6]) {
        h.reset();
        const ldx = D + 3;
        // a large common offset: a one-pass variance would lose digits here
        const x = h.put(h.noise(rows * ldx).map((v) => v * 3 + 50));
        const g = h.put(h.noise(D, 1).map((v) => v + 1)),
          b = h.put(h.noise(D));
        const ys = h.put(new Float32Array(rows * D)),
          yr = h.put(new Float32Array(rows * D));
        h.k.layernorm(x, ldx, ys, D, g, b, rows, D, eps);
        h.k.layernorm_ref(x, ldx, yr, D, g, b, rows, D, eps);
        expectClose(h.get(ys, rows * D + 16), h.get(yr, rows * D + 16), 2e-5, 1e-5, `layernorm D=${D} rows=${rows}`);
      }
  });

  test('gelu: erf within 1e-6 over [-12, 12], tails at every length, special values', () => {
    h.reset();
    const n = 24001;
    const xs = Float32Array.from({ length: n }, (_, i) => -12 + i * 0.001);
    const x = h.put(xs),
      ys = h.put(new Float32Array(n)),
      yr = h.put(new Float32Array(n));
    h.k.gelu(x, ys, n);
    h.k.gelu_ref(x, yr, n);
    const got = h.get(ys, n),
      want = h.get(yr, n);
    let worstErf = 0;
    for (let i = 0; i < n; i++) {
      // gelu = x/2 (1 + erf(x/√2)), so the erf error is the gelu error divided by |x|/2
      if (Math.abs(xs[i]) > 1e-3)
        worstErf = Math.max(
          worstErf,
          Math.abs(got[i] - want[i]) / (Math.abs(xs[i]) / 2) - (1.2e-7 * Math.abs(want[i])) / (Math.abs(xs[i]) / 2),
        );
    }
    console.log(`gelu (${flavor}): worst erf error ${worstErf.toExponential(2)}`);
    expect(worstErf).toBeLessThanOrEqual(1e-6);
    for (const len of [0, 1, 3, 4, 5, 7, 8, 9]) {
      h.reset();
      const v = h.noise(len, 4),
        a = h.put(v),
        s = h.put(new Float32Array(len)),
        r = h.put(new Float32Array(len));
      h.k.gelu(a, s, len);
      h.k.gelu_ref(a, r, len);
      expectClose(h.get(s, len + 16), h.get(r, len + 16), 1e-6, 1e-6, `gelu n=${len}`);
    }
    h.reset();
    const special = Float32Array.from([0, -0, 1e-30, -1e-30, 40, -40, 1e4, -1e4, 3.4e38, -3.4e38]);
    const sp = h.put(special),
      so = h.put(new Float32Array(special.length));
    h.k.gelu(sp, so, special.length);
    const out = h.get(so, special.length);
    special.forEach((v, i) => {
      // tiny |x|: x/2; large x: x; large -x: (-)0 — never NaN or Infinity
      const want = Math.abs(v) < 1 ? v / 2 : Math.max(v, 0);
      expect(Math.abs(out[i] - want)).toBeLessThanOrEqual(Math.abs(want) * 1e-6);
    });
  });

  // quick GELU (CLIP), tanh GELU (SigLIP, gelu_new), SiLU: one sigmoid gate x·σ(a(x + c·x³))
  test.each([
    ['quick_gelu', 1.702, 0],
    ['tanh gelu', 2 * Math.sqrt(2 / Math.PI), 0.044715],
    ['silu', 1, 0],
  ] as const)(
    'act_gate %s: the gate σ within 3e-7 of the f64 reference over [-30, 30], every tail, special values',
    (name, a, c) => {
      h.reset();
      const n = 60001;
      const xs = Float32Array.from({ length: n }, (_, i) => -30 + i * 0.001);
      const x = h.put(xs),
        ys = h.put(new Float32Array(n)),
        yr = h.put(new Float32Array(n));
      h.k.act_gate(x, ys, n, a, c);
      h.k.act_gate_ref(x, yr, n, a, c);
      const got = h.get(ys, n),
        want = h.get(yr, n);
      // y = x·σ, so the gate's error is y's divided by |x| (less the f32 rounding of y itself); in the
      // deep negative tail σ is tiny and its relative error grows with |z| (f32's z), its absolute not
      let worst = 0;
      for (let i = 0; i < n; i++)
        if (Math.abs(xs[i]) > 1e-3)
          worst = Math.max(worst, (Math.abs(got[i] - want[i]) - 1.2e-7 * Math.abs(want[i])) / Math.abs(xs[i]));
      console.log(`act_gate ${name} (${flavor}): worst gate error ${worst.toExponential(2)}`);
      expect(worst).toBeLessThanOrEqual(3e-7);
      for (const len of [0, 1, 3, 4, 5, 7, 8, 9]) {
        h.reset();
        const v = h.noise(len, 4),
          p = h.put(v),
          s2 = h.put(new Float32Array(len)),
          r2 = h.put(new Float32Array(len));
        h.k.act_gate(p, s2, len, a, c);
        h.k.act_gate_ref(p, r2, len, a, c);
        expectClose(h.get(s2, len + 16), h.get(r2, len + 16), 1e-6, 1e-6, `act_gate n=${len}`);
      }
      h.reset();
      const special = Float32Array.from([0, -0, 1e-30, -1e-30, 100, -100, 1e4, -1e4, 3.4e38, -3.4e38]);
      const sp = h.put(special),
        so = h.put(new Float32Array(special.length));
      h.k.act_gate(sp, so, special.length, a, c);
      const out = h.get(so, special.length);
      special.forEach((v, i) => {
        // tiny |x|: x/2; large x: x; large -x: (-)0 — never NaN or Infinity
        const want = Math.abs(v) < 1 ? v / 2 : Math.max(v, 0);
        expect(Math.abs(out[i] - want)).toBeLessThanOrEqual(Math.abs(want) * 1e-6);
      });
    },
  );

  // SwiGLU (DINOv2-giant): silu of the first half times the second, row by row
  test("act_glu: gate(x[:, :M]) ⊙ x[:, M:] at every tail width, several rows, within 1e-6 of the f64 reference and of torch's formula", () => {
    for (const rows of [1, 2, 5])
      for (const M of [1, 3, 4, 5, 7, 8, 9, 33]) {
        h.reset();
        const v = h.noise(rows * 2 * M, 4),
          x = h.put(v),
          ys = h.put(new Float32Array(rows * M)),
          yr = h.put(new Float32Array(rows * M));
        h.k.act_glu(x, ys, rows, M, 1, 0);
        h.k.act_glu_ref(x, yr, rows, M, 1, 0);
        // 16 floats past the end: nothing written beyond y
        const got = h.get(ys, rows * M + 16);
        expectClose(got, h.get(yr, rows * M + 16), 1e-6, 1e-6, `act_glu rows=${rows} M=${M}`);
        // silu(x1)·x2 written straight from torch's Dinov2SwiGLUFFN, in f64
        const want = Float32Array.from({ length: rows * M }, (_, i) => {
          const r = Math.floor(i / M),
            j = i % M,
            x1 = v[r * 2 * M + j],
            x2 = v[r * 2 * M + M + j];
          return (x1 / (1 + Math.exp(-x1))) * x2;
        });
        expectClose(got.subarray(0, rows * M), want, 1e-6, 1e-6, `act_glu vs silu(x1)·x2 rows=${rows} M=${M}`);
      }
  });

  test('act_relu: max(x, 0) at every tail length, NaN kept', () => {
    for (const len of [0, 1, 3, 4, 5, 7, 8, 9, 33]) {
      h.reset();
      const v = h.noise(len, 4);
      if (len > 2) v[2] = Number.NaN;
      const p = h.put(v),
        s2 = h.put(new Float32Array(len)),
        r2 = h.put(new Float32Array(len));
      h.k.act_relu(p, s2, len);
      h.k.act_relu_ref(p, r2, len);
      const got = h.get(s2, len),
        want = Array.from(v, (x) => (x > 0 || Number.isNaN(x) ? x : 0));
      expect(Array.from(got)).toEqual(want);
      expect(Array.from(h.get(r2, len))).toEqual(want);
    }
  });

  test.each([1, 2, 3, 4, 5, 8, 9, 17, 197])('softmax n=%i', (n) => {
    h.reset();
    const rows = 3,
      ld = n + 2;
    const x0 = h.noise(rows * ld, 10);
    const s = h.put(x0),
      r = h.put(x0);
    h.k.softmax_rows(s, ld, rows, n);
    h.k.softmax_rows_ref(r, ld, rows, n);
    const got = h.get(s, rows * ld + 16);
    expectClose(got, h.get(r, rows * ld + 16), 1e-6, 1e-5, `softmax n=${n}`);
    for (let i = 0; i < rows; i++) {
      expect(got.subarray(i * ld, i * ld + n).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      for (let j = n; j < ld; j++) expect(got[i * ld + j]).toBe(x0[i * ld + j]);
    }
  });

  test.each([...new Set([...tileEdges(AR), ...tileEdges(AK), 2, 50])].sort((a, b) => a - b))(
    `${kernelName('attention', flavor)} T=%i`,
    (T) => {
      for (const [H, dh] of [
        [1, 1],
        [2, 3],
        [3, 4],
        [2, 5],
        [2, 8],
        [3, 11],
        [2, 19],
        [1, 64],
      ]) {
        h.reset();
        const D = H * dh,
          T8 = Math.ceil(T / 8) * 8;
        const qkv = h.put(h.noise(T * 3 * D, 1.5));
        const os = h.put(new Float32Array(T * D)),
          or = h.put(new Float32Array(T * D));
        const ps = h.put(new Float32Array(T * T)),
          pr = h.put(new Float32Array(T * T));
        const F = attentionPanelFloats(T, dh),
          kv = h.put(new Float32Array(F)),
          scratch = h.put(new Float32Array(4 * T8)),
          biasRows = h.put(h.noise(T * T, 2)); // BEiT's relative position bias, (T, T)
        const all = h.get(qkv, T * 3 * D);
        for (let head = 0; head < H; head++) {
          h.k.attention_pack_kv(qkv, kv, T, D, dh, head);
          const got = h.get(kv, F + 16);
          for (let d = 0; d < dh; d++)
            for (let j = 0; j < T8; j++) {
              expect(got[(j >> 3) * dh * 8 + d * 8 + (j & 7)]).toBe(j < T ? all[j * 3 * D + D + head * dh + d] : 0);
            }
          // V_h's whole groups of 8 columns, (T, 8) each, after K_hᵀ's panels
          for (let d = 0; d < (dh & ~7); d++)
            for (let j = 0; j < T; j++) {
              expect(got[dh * T8 + (d >> 3) * T * 8 + j * 8 + (d & 7)]).toBe(all[j * 3 * D + 2 * D + head * dh + d]);
            }
          expect(got[F]).toBe(Math.fround(CANARY));
          // the simd kernel in two row ranges, as two workers would split it; every other case with a bias
          const mid = Math.floor(T / 3) | 1,
            bias = (head + T) % 2 ? biasRows : 0;
          h.k.attention_head(qkv, kv, os, scratch, ps, bias, T, D, dh, head, 1 / Math.sqrt(dh), 0, Math.min(mid, T));
          h.k.attention_head(qkv, kv, os, scratch, ps, bias, T, D, dh, head, 1 / Math.sqrt(dh), Math.min(mid, T), T);
          h.k.attention_head_ref(qkv, 0, or, 0, pr, bias, T, D, dh, head, 1 / Math.sqrt(dh), 0, T);
          expectClose(
            h.get(ps, T * T + 16),
            h.get(pr, T * T + 16),
            1e-6,
            1e-5,
            `attention probs T=${T} H=${H} dh=${dh} head=${head}`,
          );
        }
        expectClose(h.get(os, T * D + 16), h.get(or, T * D + 16), 1e-5, 1e-5, `attention T=${T} H=${H} dh=${dh}`);
      }
    },
  );

  test('patchify and embed_tokens equal their references exactly', () => {
    for (const [B, C, Hp, Wp, p] of [
      [1, 1, 4, 4, 2],
      [2, 3, 20, 25, 5],
      [2, 3, 16, 16, 4],
      [1, 3, 24, 24, 8],
      [2, 1, 28, 28, 7],
      [1, 3, 9, 6, 3],
    ]) {
      h.reset();
      const Np = (Hp / p) * (Wp / p),
        K = C * p * p,
        D = 13,
        T = Np + 1;
      const img = h.put(h.noise(B * C * Hp * Wp));
      const ps = h.put(new Float32Array(B * Np * K)),
        pr = h.put(new Float32Array(B * Np * K));
      h.k.patchify(img, ps, B, C, Hp, Wp, p);
      h.k.patchify_ref(img, pr, B, C, Hp, Wp, p);
      expect(h.get(ps, B * Np * K + 16)).toEqual(h.get(pr, B * Np * K + 16));
      const pe = h.put(h.noise(B * Np * D)),
        cls = h.put(h.noise(D)),
        pos = h.put(h.noise(T * D));
      const xs = h.put(new Float32Array(B * T * D)),
        xr = h.put(new Float32Array(B * T * D));
      h.k.embed_tokens(pe, cls, pos, xs, B, T, D);
      h.k.embed_tokens_ref(pe, cls, pos, xr, B, T, D);
      expect(h.get(xs, B * T * D + 16)).toEqual(h.get(xr, B * T * D + 16));
    }
  });
});

// ---- backward kernels (training): against their f64 references at tile edges, and the gradient
// formulas against finite differences of the forward references.
describe.each(flavors)('backward kernels (%s build)', (flavor) => {
  const h = new Harness();
  beforeAll(async () => {
    await h.init(flavor);
  });

  const [SM, SN] = KERNELS.gemmStrided.tile;
  test.each(tileEdges(SM))(`${kernelName('gemmStrided', flavor)} M=%i: dX = dY·W and dW = dYᵀ·X layouts`, (M) => {
    for (const N of tileEdges(SN))
      for (const K of [1, 3, 8, 13])
        for (const epi of [EPI.STORE, EPI.ADD]) {
          h.reset();
          // dX (M, K) = dY (M, N) · W (N, K): A rows of dY, B rows of W
          const dy = h.put(h.noise(M * N)),
            w = h.put(h.noise(N * K));
          const c0 = h.noise(M * K),
            cs = h.put(c0),
            cr = h.put(c0);
          h.k.gemm_4x8_strided(dy, N * 4, 4, w, K * 4, cs, K, M, K, N, epi);
          h.k.gemm_strided_ref(dy, N * 4, 4, w, K * 4, cr, K, M, K, N, epi);
          expectClose(
            h.get(cs, M * K + 16),
            h.get(cr, M * K + 16),
            2e-6 * Math.sqrt(N),
            1e-6,
            `dX M=${M} N=${N} K=${K}`,
          );
          // dW (N, K) = dYᵀ (N, M) · X (M, K): A is dY read down its columns
          const x = h.put(h.noise(M * K));
          const w0 = h.noise(N * K),
            ws = h.put(w0),
            wr = h.put(w0);
          h.k.gemm_4x8_strided(dy, 4, N * 4, x, K * 4, ws, K, N, K, M, epi);
          h.k.gemm_strided_ref(dy, 4, N * 4, x, K * 4, wr, K, N, K, M, epi);
          expectClose(
            h.get(ws, N * K + 16),
            h.get(wr, N * K + 16),
            2e-6 * Math.sqrt(M),
            1e-6,
            `dW M=${M} N=${N} K=${K}`,
          );
        }
  });

  test.each(tileEdges(4))(
    'transpose and pack_panels_8 rows=%i: copies as laid out, nothing written past them',
    (rows) => {
      for (const cols of [...tileEdges(4), ...tileEdges(8)]) {
        h.reset();
        const ld = cols + 3,
          src = h.noise(rows * ld),
          ps = h.put(src);
        const ldd = rows + 2,
          t = h.put(new Float32Array(cols * ldd));
        h.k.transpose(ps, ld, t, ldd, rows, cols);
        const got = h.get(t, cols * ldd + 16);
        for (let c = 0; c < cols; c++)
          for (let r = 0; r < ldd; r++) expect(got[c * ldd + r]).toBe(r < rows ? src[r * ld + c] : 0);
        expect(got[cols * ldd]).toBe(Math.fround(CANARY));
        const P = Math.ceil(cols / 8),
          pp = h.put(new Float32Array(P * rows * 8));
        h.k.pack_panels_8(ps, ld, pp, rows, cols);
        const packed = h.get(pp, P * rows * 8 + 16);
        for (let p = 0; p < P; p++)
          for (let r = 0; r < rows; r++)
            for (let j = 0; j < 8; j++)
              expect(packed[(p * rows + r) * 8 + j]).toBe(8 * p + j < cols ? src[r * ld + 8 * p + j] : 0);
        expect(packed[P * rows * 8]).toBe(Math.fround(CANARY));
      }
    },
  );

  // dW = dYᵀ·X as linearBackward runs it (X's panels, dYᵀ transposed, gemm_4x8) gives the strided
  // kernel's bits: the same chain of multiply-adds per output, in the same order
  test.each(tileEdges(SM))('dW through packed operands M=%i equals the strided kernel bit for bit', (M) => {
    for (const N of tileEdges(SN))
      for (const K of [1, 3, 8, 13]) {
        h.reset();
        const dy = h.put(h.noise(M * N)),
          x = h.put(h.noise(M * K)),
          w0 = h.noise(N * K),
          ws = h.put(w0),
          wp = h.put(w0);
        h.k.gemm_4x8_strided(dy, 4, N * 4, x, K * 4, ws, K, N, K, M, EPI.ADD);
        const pa = h.put(new Float32Array(N * M)),
          pb = h.put(new Float32Array(Math.ceil(K / 8) * 8 * M));
        h.k.pack_panels_8(x, K, pb, M, K);
        h.k.transpose(dy, N, pa, M, M, N);
        h.k.gemm_4x8(pa, M, pb, 0, wp, K, N, K, M, EPI.ADD);
        expect(h.get(wp, N * K + 16)).toEqual(h.get(ws, N * K + 16));
      }
  });

  test.each([1, 3, 4, 5, 13])('colsum N=%i', (N) => {
    for (const M of [1, 2, 7]) {
      h.reset();
      const dy = h.put(h.noise(M * N)),
        b0 = h.noise(N),
        bs = h.put(b0),
        br = h.put(b0);
      h.k.colsum(dy, bs, M, N);
      h.k.colsum_ref(dy, br, M, N);
      expectClose(h.get(bs, N + 16), h.get(br, N + 16), 1e-6, 1e-6, `colsum M=${M} N=${N}`);
    }
  });

  test.each([1, 3, 4, 5, 8, 33])('layernorm backward D=%i: reference and finite differences', (D) => {
    for (const rows of [1, 3]) {
      h.reset();
      const ldx = D + 2,
        eps = 1e-5;
      const xv = h.noise(rows * ldx).map((v) => v * 2 + 3),
        gv = h.noise(D).map((v) => v + 1),
        dyv = h.noise(rows * D);
      const x = h.put(xv),
        g = h.put(gv),
        dy = h.put(dyv);
      const dx0 = h.noise(rows * ldx),
        dxs = h.put(dx0),
        dxr = h.put(dx0);
      const dgs = h.put(new Float32Array(D)),
        dbs = h.put(new Float32Array(D)),
        dgr = h.put(new Float32Array(D)),
        dbr = h.put(new Float32Array(D));
      h.k.layernorm_bwd(x, ldx, dy, dxs, g, dgs, dbs, rows, D, eps);
      h.k.layernorm_bwd_ref(x, ldx, dy, dxr, g, dgr, dbr, rows, D, eps);
      expectClose(h.get(dxs, rows * ldx + 16), h.get(dxr, rows * ldx + 16), 1e-5, 1e-5, `layernorm dx D=${D}`);
      expectClose(h.get(dgs, D + 16), h.get(dgr, D + 16), 1e-5, 1e-5, 'dgamma');
      expectClose(h.get(dbs, D + 16), h.get(dbr, D + 16), 1e-5, 1e-5, 'dbeta');
      // d/dx of Σ dy·LN(x), computed in f64 in JS, at row 0
      const ln = (row: number[]) => {
        const m = row.reduce((a, b) => a + b, 0) / D,
          v = row.reduce((a, b) => a + (b - m) ** 2, 0) / D;
        return row.map((xi, i) => ((xi - m) / Math.sqrt(v + eps)) * gv[i]);
      };
      const row = Array.from(xv.subarray(0, D)),
        dxk = h.get(dxs, D);
      for (let i = 0; i < D; i++) {
        const f = (d: number) => {
          const r = row.slice();
          r[i] += d;
          return ln(r).reduce((a, y, j) => a + y * dyv[j], 0);
        };
        const num = (f(1e-4) - f(-1e-4)) / 2e-4;
        expect(Math.abs(dxk[i] - dx0[i] - num)).toBeLessThan(2e-3 * Math.max(1, Math.abs(num)));
      }
    }
  });

  test('gelu backward: reference, finite differences, every tail length', () => {
    for (const n of [1, 3, 4, 5, 9, 401]) {
      h.reset();
      const xv = Float32Array.from({ length: n }, (_, i) => -6 + (12 * i) / Math.max(1, n - 1));
      const x = h.put(xv),
        dy = h.put(h.noise(n)),
        ds = h.put(new Float32Array(n)),
        dr = h.put(new Float32Array(n));
      h.k.gelu_bwd(x, dy, ds, n);
      h.k.gelu_bwd_ref(x, dy, dr, n);
      expectClose(h.get(ds, n + 16), h.get(dr, n + 16), 2e-6, 1e-5, `gelu bwd n=${n}`);
    }
    // derivative of the f64 reference forward, by central differences
    h.reset();
    const xs = Float32Array.from({ length: 41 }, (_, i) => -4 + i * 0.2),
      n = xs.length;
    const x = h.put(xs),
      ones = h.put(new Float32Array(n).fill(1)),
      d = h.put(new Float32Array(n));
    const xp = h.put(xs.map((v) => v + 1e-2)),
      xm = h.put(xs.map((v) => v - 1e-2)),
      yp = h.put(new Float32Array(n)),
      ym = h.put(new Float32Array(n));
    h.k.gelu_bwd(x, ones, d, n);
    h.k.gelu_ref(xp, yp, n);
    h.k.gelu_ref(xm, ym, n);
    const got = h.get(d, n),
      a = h.get(yp, n),
      b = h.get(ym, n);
    for (let i = 0; i < n; i++)
      expect(Math.abs(got[i] - (a[i] - b[i]) / (Math.fround(xs[i] + 1e-2) - Math.fround(xs[i] - 1e-2)))).toBeLessThan(
        2e-4,
      );
  });

  test.each([1, 2, 5, 17])('attention backward T=%i: reference and finite differences', (T) => {
    for (const [H, dh] of [
      [1, 1],
      [2, 3],
      [2, 4],
      [3, 5],
      [1, 16],
    ]) {
      h.reset();
      const D = H * dh,
        scale = 1 / Math.sqrt(dh),
        T8 = Math.ceil(T / 8) * 8;
      const qv = h.noise(T * 3 * D),
        qkv = h.put(qv),
        dov = h.noise(T * D),
        dout = h.put(dov);
      const probs = h.put(new Float32Array(H * T * T)),
        out = h.put(new Float32Array(T * D));
      const ds = h.put(new Float32Array(T * 3 * D)),
        dr = h.put(new Float32Array(T * 3 * D)),
        scratch = h.put(new Float32Array(4 * T8));
      // the bias's gradient accumulates into what is there (a second image's would add to it)
      const start = h.noise(H * T * T),
        db = h.put(start),
        dbr = h.put(start);
      for (let head = 0; head < H; head++) {
        h.k.attention_head_ref(qkv, 0, out, 0, probs + head * T * T * 4, 0, T, D, dh, head, scale, 0, T);
        h.k.attention_bwd(
          qkv,
          probs + head * T * T * 4,
          dout,
          ds,
          scratch,
          T,
          D,
          dh,
          head,
          scale,
          db + head * T * T * 4,
        );
        h.k.attention_bwd_ref(
          qkv,
          probs + head * T * T * 4,
          dout,
          dr,
          0,
          T,
          D,
          dh,
          head,
          scale,
          dbr + head * T * T * 4,
        );
      }
      const got = h.get(ds, T * 3 * D);
      expectClose(got, h.get(dr, T * 3 * D), 2e-5, 1e-4, `attention bwd T=${T} H=${H} dh=${dh}`);
      expectClose(h.get(db, H * T * T), h.get(dbr, H * T * T), 2e-5, 1e-4, `attention bias bwd T=${T} H=${H} dh=${dh}`);
      // finite differences of Σ dout·attention(qkv) for a few inputs, through the f64 reference forward
      const loss = (vals: Float32Array) => {
        const p = h.put(vals),
          o = h.put(new Float32Array(T * D)),
          pr = h.put(new Float32Array(T * T));
        for (let head = 0; head < H; head++) h.k.attention_head_ref(p, 0, o, 0, pr, 0, T, D, dh, head, scale, 0, T);
        return h.get(o, T * D).reduce((a, v, i) => a + v * dov[i], 0);
      };
      for (const idx of [0, D + 1, 2 * D + D - 1, (T - 1) * 3 * D + D].filter((i) => i < T * 3 * D)) {
        const e = 1e-2,
          up = qv.slice(),
          dn = qv.slice();
        up[idx] += e;
        dn[idx] -= e;
        const num = (loss(up) - loss(dn)) / (Math.fround(qv[idx] + e) - Math.fround(qv[idx] - e));
        expect(Math.abs(got[idx] - num), `d/dqkv[${idx}] T=${T} H=${H} dh=${dh}`).toBeLessThan(
          2e-3 * Math.max(1, Math.abs(num)),
        );
      }
    }
  });

  test('softmax + cross-entropy: loss, gradient, finite differences', () => {
    for (const [B, L] of [
      [1, 1],
      [1, 2],
      [3, 5],
      [4, 10],
      [2, 1000],
    ]) {
      h.reset();
      const zv = h.noise(B * L, 4),
        z = h.put(zv),
        labels = h.mem.alloc(B + 4);
      new Int32Array(h.mem.memory.buffer, labels, B).set(Array.from({ length: B }, (_, b) => (b * 7) % L));
      const gs = h.put(new Float32Array(B * L)),
        gr = h.put(new Float32Array(B * L));
      const ls = h.k.softmax_xent(z, labels, gs, B, L),
        lr = h.k.softmax_xent_ref(z, labels, gr, B, L);
      expect(Math.abs(ls - lr)).toBeLessThan(1e-6 * Math.max(1, lr));
      const got = h.get(gs, B * L);
      expectClose(got, h.get(gr, B * L + 16).subarray(0, B * L), 1e-7, 1e-5, `xent B=${B} L=${L}`);
      if (L <= 10)
        for (let i = 0; i < B * L; i++) {
          const e = 1e-2,
            up = zv.slice(),
            dn = zv.slice();
          up[i] += e;
          dn[i] -= e;
          const num =
            (h.k.softmax_xent_ref(h.put(up), labels, h.put(new Float32Array(B * L)), B, L) -
              h.k.softmax_xent_ref(h.put(dn), labels, h.put(new Float32Array(B * L)), B, L)) /
            (Math.fround(zv[i] + e) - Math.fround(zv[i] - e));
          expect(Math.abs(got[i] - num)).toBeLessThan(1e-4);
        }
    }
  });

  test('embed_tokens backward', () => {
    for (const [B, T, D] of [
      [1, 2, 1],
      [2, 5, 7],
      [3, 17, 16],
    ]) {
      h.reset();
      const dx = h.put(h.noise(B * T * D));
      const pes = h.put(new Float32Array(B * (T - 1) * D)),
        per = h.put(new Float32Array(B * (T - 1) * D));
      const c0 = h.noise(D),
        p0 = h.noise(T * D);
      const cs = h.put(c0),
        cr = h.put(c0),
        ps = h.put(p0),
        pr = h.put(p0);
      h.k.embed_tokens_bwd(dx, pes, cs, ps, B, T, D);
      h.k.embed_tokens_bwd_ref(dx, per, cr, pr, B, T, D);
      expect(h.get(pes, B * (T - 1) * D + 16)).toEqual(h.get(per, B * (T - 1) * D + 16));
      expectClose(h.get(cs, D + 16), h.get(cr, D + 16), 1e-6, 1e-6, 'dcls');
      expectClose(h.get(ps, T * D + 16), h.get(pr, T * D + 16), 1e-6, 1e-6, 'dpos');
    }
  });
});
