// int8 linear layer (inference): C = epilogue(sa[i] · sw[n] · Σₖ (aq[i,k] − za[i]) · wq[n,k] + bias[n]).
// Activations are quantized per row to u7 (0…127) with their own scale and zero point by
// quantize_rows_u7: 7 bits because relaxed SIMD's i8×i7 dot product is deterministic only while its
// second operand stays in 0…127; a zero point per row because the MLP's second input (GELU's output)
// spans about −0.17…max, where a symmetric scale would leave half the codes unused. The quantizer
// writes them interleaved by blocks of 4 rows, so one load gives the GEMM a k-quad of all 4 rows:
//   aq   (⌈M/4⌉, Kp/4, 4, 4) bytes: per block of 4 rows and k-quad, rows 0–3, each 4 k
// (with 4 broadcast loads a k-quad, V8 keeps all 6 loaded vectors live beside the 8 accumulators and
// spills one; one load and 4 shuffles fit in registers: the GEMM with its quantization 8–12% faster,
// bench/NOTES.md).
// Weights are int8, symmetric, one f32 scale per output channel, packed once at load in panels of 8
// channels with k in quads (K padded to Kp, a multiple of 4, with zero weights):
//   wq   (⌈N/8⌉, Kp/4, 2, 4, 4) bytes: per panel and k-quad, channels 0–3 then 4–7, each 4 k
//   wsum (⌈N/8⌉·8) i32: Σₖ wq[n, k], for the zero point;  sw (⌈N/8⌉·8) f32;  bias (⌈N/8⌉·8) f32 or 0
// The sums are exact integers in both builds, so the plain and the relaxed build give the same bits.
import { gelu_f64 } from './simd';
import { gelu } from './gelu';

// @ts-ignore: decorator
@inline const EPI_ADD = 1;
// @ts-ignore: decorator
@inline const EPI_GELU = 2;

// @ts-ignore: decorator
@inline const QMAX: f32 = 127;

/** Where row i's k-quad 0 sits in aq's layout (see the top of this file); quad j is 16·j further. */
// @ts-ignore: decorator
@inline function aq_row(aq: usize, Kp: i32, i: i32): usize {
  return aq + <usize>(i >> 2) * (<usize>Kp << 2) + (<usize>(i & 3) << 2);
}

/** Byte k of a row whose quad 0 is at q, in aq's layout. */
// @ts-ignore: decorator
@inline function aq_at(q: usize, k: i32): usize {
  return q + (<usize>(k >> 2) << 4) + <usize>(k & 3);
}

/**
 * Per row, over [lo, hi] = [min(a, 0), max(a, 0)]: s = (hi − lo) / 127 (1 for a zero row),
 * z = round(−lo / s), q = clamp(round(a / s) + z, 0, 127), so a ≈ s · (q − z) and 0 is exact;
 * columns K…Kp−1 are set to z (zero). Rows M… of a last, partial block of 4 are not written (the
 * GEMM computes them and throws them away). 16 columns a step: the forward quantizes every input
 * row of every int8 layer (6·D floats per token and layer), which a scalar loop made ~10% of
 * vit-b16's time.
 * a (M, lda) f32 → aq (⌈M/4⌉, Kp/4, 4, 4) u8 with Kp a multiple of 4 (≥ K), sa (M) f32, za (M) i32
 */
export function quantize_rows_u7(a: usize, lda: i32, aq: usize, Kp: i32, sa: usize, za: usize, M: i32, K: i32): void {
  const K16 = K & ~15, K4 = K & ~3;
  for (let i = 0; i < M; i++) {
    const row = a + ((<usize>i * lda) << 2), q = aq_row(aq, Kp, i);
    let vlo = f32x4.splat(0), vhi = vlo;
    let k = 0;
    for (; k < K4; k += 4) {
      const v = v128.load(row + (<usize>k << 2));
      vlo = f32x4.min(vlo, v); vhi = f32x4.max(vhi, v);
    }
    let lo = min(min(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)), min(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)));
    let hi = max(max(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)), max(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)));
    for (; k < K; k++) {
      const v = load<f32>(row + (<usize>k << 2));
      lo = min(lo, v); hi = max(hi, v);
    }
    const s: f32 = hi > lo ? (hi - lo) / QMAX : 1, inv: f32 = 1 / s;
    const z = min(127, max(0, <i32>nearest(-lo * inv)));
    store<f32>(sa + (<usize>i << 2), s);
    store<i32>(za + (<usize>i << 2), z);
    const vinv = f32x4.splat(inv), vz = i32x4.splat(z), top = i8x16.splat(127);
    for (k = 0; k < K16; k += 16) {
      const p = row + (<usize>k << 2);
      const q0 = i32x4.add(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p), vinv))), vz);
      const q1 = i32x4.add(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 16), vinv))), vz);
      const q2 = i32x4.add(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 32), vinv))), vz);
      const q3 = i32x4.add(i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(p, 48), vinv))), vz);
      // saturating narrows clamp below at 0; the min clamps above at 127
      const b = i8x16.min_u(i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(q0, q1), i16x8.narrow_i32x4_s(q2, q3)), top);
      // 4 k-quads, 16 bytes apart in the interleaved layout
      const d = q + (<usize>k << 2);
      v128.store32_lane(d, b, 0); v128.store32_lane(d, b, 1, 16);
      v128.store32_lane(d, b, 2, 32); v128.store32_lane(d, b, 3, 48);
    }
    for (; k < K; k++) {
      const v = <i32>nearest(load<f32>(row + (<usize>k << 2)) * inv) + z;
      store<u8>(aq_at(q, k), <u8>min(127, max(0, v)));
    }
    for (k = K; k < Kp; k++) store<u8>(aq_at(q, k), <u8>z);
  }
}

/** quantize_rows_u7 one element at a time: the reference it must equal byte for byte. */
export function quantize_rows_u7_ref(a: usize, lda: i32, aq: usize, Kp: i32, sa: usize, za: usize, M: i32, K: i32): void {
  for (let i = 0; i < M; i++) {
    const row = a + ((<usize>i * lda) << 2), q = aq + <usize>(i >> 2) * Kp * 4 + <usize>(i & 3) * 4;
    let lo: f32 = 0, hi: f32 = 0;
    for (let k = 0; k < K; k++) {
      const v = load<f32>(row + (<usize>k << 2));
      lo = min(lo, v); hi = max(hi, v);
    }
    const s: f32 = hi > lo ? (hi - lo) / QMAX : 1, inv: f32 = 1 / s;
    const z = min(127, max(0, <i32>nearest(-lo * inv)));
    store<f32>(sa + (<usize>i << 2), s);
    store<i32>(za + (<usize>i << 2), z);
    for (let k = 0; k < K; k++) {
      const v = <i32>nearest(load<f32>(row + (<usize>k << 2)) * inv) + z;
      store<u8>(q + <usize>(k / 4) * 16 + <usize>(k % 4), <u8>min(127, max(0, v)));
    }
    for (let k = K; k < Kp; k++) store<u8>(q + <usize>(k / 4) * 16 + <usize>(k % 4), <u8>z);
  }
}

/**
 * Weights at load (loadModel's weights: 'int8' on an f32/f16/bf16 checkpoint): rows row0…row0+rows−1
 * of W (rows, K) f32, quantized per row as src/runtime/pack.ts quantizeRows defines it, in f32:
 * s = m / 127 with m = max |w| (1 for a zero row), inv = 1 / s, q = clamp(nearest(w · inv), ±127);
 * written into gemm_i8_4x8's packed layout with Σₖ q (wsum) and s (sw) at their channels. K's
 * padding is not written (wq comes zeroed from WasmMemory.alloc). 4 k a step: one packed quad of one channel.
 * w (rows, K) f32 → wq (⌈N/8⌉, Kp/4, 2, 4, 4) i8, wsum (N) i32, sw (N) f32
 */
export function quantize_pack_weights_i8(w: usize, rows: i32, K: i32, wq: usize, Kp: i32, wsum: usize, sw: usize,
                                         row0: i32): void {
  const K4 = K & ~3, quads = <usize>(Kp >> 2), lim = i32x4.splat(127), nlim = i32x4.splat(-127);
  for (let r = 0; r < rows; r++) {
    const row = w + ((<usize>r * K) << 2), n = row0 + r;
    let vm = f32x4.splat(0), k = 0;
    for (; k < K4; k += 4) vm = f32x4.max(vm, f32x4.abs(v128.load(row + (<usize>k << 2))));
    let m = max(max(f32x4.extract_lane(vm, 0), f32x4.extract_lane(vm, 1)), max(f32x4.extract_lane(vm, 2), f32x4.extract_lane(vm, 3)));
    for (; k < K; k++) m = max(m, abs(load<f32>(row + (<usize>k << 2))));
    const s: f32 = m > 0 ? m / QMAX : 1, inv: f32 = 1 / s, vinv = f32x4.splat(inv);
    const base = wq + ((<usize>(n >> 3) * quads * 2 + <usize>((n >> 2) & 1)) << 4) + (<usize>(n & 3) << 2);
    let vsum = i32x4.splat(0), sum = 0;
    for (k = 0; k < K4; k += 4) {
      let q = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(row + (<usize>k << 2)), vinv)));
      q = i32x4.max_s(i32x4.min_s(q, lim), nlim);
      vsum = i32x4.add(vsum, q);
      const b = i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(q, q), i16x8.narrow_i32x4_s(q, q));
      v128.store32_lane(base + (<usize>(k >> 2) << 5), b, 0);
    }
    for (; k < K; k++) {
      const q = min(127, max(-127, <i32>nearest(load<f32>(row + (<usize>k << 2)) * inv)));
      sum += q;
      store<i8>(base + (<usize>(k >> 2) << 5) + <usize>(k & 3), <i8>q);
    }
    sum += i32x4.extract_lane(vsum, 0) + i32x4.extract_lane(vsum, 1) + i32x4.extract_lane(vsum, 2) + i32x4.extract_lane(vsum, 3);
    store<i32>(wsum + (<usize>n << 2), sum);
    store<f32>(sw + (<usize>n << 2), s);
  }
}

/** acc (channels 0–3 and 4–7 of one row, i32) → f32 with both scales, bias, epilogue; first n ≤ 8 columns. */
function finish_row_i8(pc: usize /* (n) */, acc0: v128, acc1: v128, sa: f32, za: i32, pw: usize /* wsum, sw, bias at p*32 */,
                       wsum: usize, sw: usize, bias: usize, n: i32, epi: i32): void {
  const zp = i32x4.splat(za), s = f32x4.splat(sa);
  // Σ (q − z)·w = Σ q·w − z·Σ w
  acc0 = i32x4.sub(acc0, i32x4.mul(zp, v128.load(wsum + pw)));
  acc1 = i32x4.sub(acc1, i32x4.mul(zp, v128.load(wsum + pw, 16)));
  let v0 = f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(acc0), s), v128.load(sw + pw));
  let v1 = f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(acc1), s), v128.load(sw + pw, 16));
  if (bias) { v0 = f32x4.add(v0, v128.load(bias + pw)); v1 = f32x4.add(v1, v128.load(bias + pw, 16)); }
  if (n == 8) {
    if (epi == EPI_ADD) { v0 = f32x4.add(v0, v128.load(pc)); v1 = f32x4.add(v1, v128.load(pc, 16)); }
    v128.store(pc, v0); v128.store(pc, v1, 16);
    return;
  }
  for (let j = 0; j < n; j++) {
    const x = j < 4 ? f32x4_lane(v0, j) : f32x4_lane(v1, j - 4);
    const q = pc + (<usize>j << 2);
    store<f32>(q, epi == EPI_ADD ? load<f32>(q) + x : x);
  }
}

// @ts-ignore: decorator
@inline function f32x4_lane(v: v128, i: i32): f32 {
  if (i == 0) return f32x4.extract_lane(v, 0);
  if (i == 1) return f32x4.extract_lane(v, 1);
  if (i == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}

/**
 * One row of u7 activations against 4 channels × 4 k of int8 weights, accumulated in acc (i32x4,
 * one lane per channel). Relaxed build: the i8×i7 dot product to i16 pairs (at most 2·127·127, no
 * saturation), widened pairwise by a dot product with `ones` (i16x8.splat(1), held in a register:
 * V8 lowers extadd_pairwise to the same pmaddwd but reloads its constant from memory every time).
 * Not i32x4.relaxed_dot_i8x16_i7x16_add_s: Node 20's V8 (11.3) gets it wrong (it ignores the
 * accumulator and doubles the sum; probe in bench/NOTES.md). Plain build: sign-extend to i16, two
 * i16 dot products (each lane a pair of k), then add each channel's pairs.
 */
// @ts-ignore: decorator
@inline export function dot4(w: v128, a: v128, acc: v128, ones: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD)
    return i32x4.add(acc, i32x4.dot_i16x8_s(i16x8.relaxed_dot_i8x16_i7x16_s(w, a), ones));
  const a16 = i16x8.extend_low_i8x16_u(a); // a0 a1 a2 a3 a0 a1 a2 a3
  const lo = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w), a16);  // ch0 k01, ch0 k23, ch1 k01, ch1 k23
  const hi = i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w), a16); // ch2 …, ch3 …
  return i32x4.add(acc, i32x4.add(i32x4.shuffle(lo, hi, 0, 2, 4, 6), i32x4.shuffle(lo, hi, 1, 3, 5, 7)));
}

/**
 * 4×8 tile over u7 activations and packed int8 weights. Any M, N ≥ 0; Kp a multiple of 4. A last,
 * partial block of rows is computed whole and only its first M mod 4 rows stored.
 * aq (⌈M/4⌉, Kp/4, 4, 4) u8, sa (M) f32, za (M) i32 from quantize_rows_u7, wq/wsum/sw/bias as above, c (M, ldc) f32
 */
export function gemm_i8_4x8(aq: usize, sa: usize, za: usize, wq: usize, wsum: usize, sw: usize, bias: usize,
                            c: usize, ldc: i32, M: i32, N: i32, Kp: i32, epi: i32): void {
  const sc = <usize>ldc << 2, panel = <usize>Kp << 3, quads = Kp >> 2;
  const panels = (N + 7) >> 3, ones = i16x8.splat(1);
  for (let p = 0; p < panels; p++) {
    const n = min(8, N - (p << 3)), pw = <usize>p << 5;
    for (let i = 0; i < M; i += 4) {
      let pb = wq + <usize>p * panel, pa = aq + <usize>i * Kp;
      let c00 = i32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (let k = 0; k < quads; k++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16), a4 = v128.load(pa);
        let av = i32x4.shuffle(a4, a4, 0, 0, 0, 0);
        c00 = dot4(b0, av, c00, ones); c01 = dot4(b1, av, c01, ones);
        av = i32x4.shuffle(a4, a4, 1, 1, 1, 1);
        c10 = dot4(b0, av, c10, ones); c11 = dot4(b1, av, c11, ones);
        av = i32x4.shuffle(a4, a4, 2, 2, 2, 2);
        c20 = dot4(b0, av, c20, ones); c21 = dot4(b1, av, c21, ones);
        av = i32x4.shuffle(a4, a4, 3, 3, 3, 3);
        c30 = dot4(b0, av, c30, ones); c31 = dot4(b1, av, c31, ones);
        pb += 32; pa += 16;
      }
      const pc = c + <usize>i * sc + pw, rows = M - i;
      finish_row_i8(pc, c00, c01, load<f32>(sa + (<usize>i << 2)), load<i32>(za + (<usize>i << 2)), pw, wsum, sw, bias, n, epi);
      if (rows > 1) finish_row_i8(pc + sc, c10, c11, load<f32>(sa + (<usize>(i + 1) << 2)), load<i32>(za + (<usize>(i + 1) << 2)), pw, wsum, sw, bias, n, epi);
      if (rows > 2) finish_row_i8(pc + 2 * sc, c20, c21, load<f32>(sa + (<usize>(i + 2) << 2)), load<i32>(za + (<usize>(i + 2) << 2)), pw, wsum, sw, bias, n, epi);
      if (rows > 3) finish_row_i8(pc + 3 * sc, c30, c31, load<f32>(sa + (<usize>(i + 3) << 2)), load<i32>(za + (<usize>(i + 3) << 2)), pw, wsum, sw, bias, n, epi);
    }
  }
  if (epi == EPI_GELU) for (let r = 0; r < M; r++) gelu(c + <usize>r * sc, c + <usize>r * sc, N);
}

/**
 * Scalar reference on unpacked weights, the same arithmetic: exact integer sums, then the scales in
 * the kernel's order (f32), bias, epilogue (GELU in f64, as gemm_ref).
 * aq (⌈M/4⌉, Kp/4, 4, 4) u8, sa (M), za (M), w (N, K) i8 row-major, sw (N), bias (N) or 0, c (M, ldc)
 */
export function gemm_i8_ref(aq: usize, Kp: i32, sa: usize, za: usize, w: usize, sw: usize, bias: usize,
                            c: usize, ldc: i32, M: i32, N: i32, K: i32, epi: i32): void {
  for (let i = 0; i < M; i++) {
    const z = load<i32>(za + (<usize>i << 2)), q = aq + <usize>(i / 4) * Kp * 4 + <usize>(i % 4) * 4;
    for (let j = 0; j < N; j++) {
      let s: i32 = 0;
      for (let k = 0; k < K; k++)
        s += (<i32>load<u8>(q + <usize>(k / 4) * 16 + <usize>(k % 4)) - z) * <i32>load<i8>(w + <usize>j * K + k);
      let v: f32 = <f32>s * load<f32>(sa + (<usize>i << 2)) * load<f32>(sw + (<usize>j << 2));
      if (bias) v += load<f32>(bias + (<usize>j << 2));
      const q = c + ((<usize>i * ldc + j) << 2);
      if (epi == EPI_GELU) v = <f32>gelu_f64(<f64>v);
      else if (epi == EPI_ADD) v += load<f32>(q);
      store<f32>(q, v);
    }
  }
}
