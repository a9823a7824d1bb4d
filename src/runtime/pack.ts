/**
 * Weight packing for gemm_4x8: W (N, K) row-major → ⌈N/8⌉ panels of (K, 8), zero-padded past
 * N, so the kernel reads 8 output features per k with two aligned v128 loads.
 */

/** Floats a packed (N, K) weight occupies. */
export const packedSize = (N: number, K: number) => Math.ceil(N / 8) * 8 * K;
/** Floats a padded bias of N features occupies. */
export const paddedSize = (N: number) => Math.ceil(N / 8) * 8;

/**
 * Writes rows `src` (rows, K) of W into the packed buffer `dst` at output features row0 … row0+rows-1.
 * Several calls fill one fused weight (HF's separate query/key/value into one QKV panel set).
 */
export function packRows(dst: Float32Array, src: Float32Array, row0: number, rows: number, K: number): void {
  for (let r = 0; r < rows; r++) {
    const n = row0 + r,
      base = (n >> 3) * K * 8 + (n & 7);
    const s = r * K;
    for (let k = 0; k < K; k++) dst[base + k * 8] = src[s + k];
  }
}

/** {@link packRows} of int8 rows `q` (rows, K) dequantized on the way: W[n, k] = scale[r] · q[r, k]. */
export function packRowsScaled(
  dst: Float32Array,
  q: ArrayLike<number>,
  scale: Float32Array,
  row0: number,
  rows: number,
  K: number,
): void {
  for (let r = 0; r < rows; r++) {
    const n = row0 + r,
      base = (n >> 3) * K * 8 + (n & 7),
      s = scale[r];
    for (let k = 0; k < K; k++) dst[base + k * 8] = s * q[r * K + k];
  }
}

/** Packs a whole W (N, K) into a fresh array (tests and tools). */
export function packWeight(w: Float32Array, N: number, K: number): Float32Array {
  const out = new Float32Array(packedSize(N, K));
  packRows(out, w, 0, N, K);
  return out;
}

/** W (N, K) back out of gemm_4x8's packed panels. */
export function unpackWeight(packed: Float32Array, N: number, K: number): Float32Array {
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const base = (n >> 3) * K * 8 + (n & 7);
    for (let k = 0; k < K; k++) w[n * K + k] = packed[base + k * 8];
  }
  return w;
}

/**
 * Where output channel n's weight k sits in gemm_i8_4x8's packed layout (see packRowsI8), with
 * `quads` = Kp / 4: the channel's base, then (k >> 2) · 32 + (k & 3) further.
 */
const i8Base = (n: number, quads: number) => ((n >> 3) * quads * 2 + ((n >> 2) & 1)) * 16 + (n & 3) * 4;
const i8At = (base: number, k: number) => base + (k >> 2) * 32 + (k & 3);

/** Bytes gemm_i8_4x8's packed (N, K) int8 weight occupies, and K padded to its k-quads. */
export function packedSizeI8(N: number, K: number): { bytes: number; Kp: number } {
  const Kp = Math.ceil(K / 4) * 4;
  return { bytes: Math.ceil(N / 8) * 8 * Kp, Kp };
}

/**
 * Writes int8 rows `src` (rows, K; integer values, e.g. an I8 tensor read as floats) into gemm_i8_4x8's
 * layout `dst` at output channels row0 … row0+rows−1: panels of 8 channels, k in quads, K padded to
 * Kp (a multiple of 4) with zeros: (⌈N/8⌉, Kp/4, 2, 4, 4) bytes; and each channel's Σₖ w into `wsum`
 * (the kernel needs it for the activations' zero point). Like {@link packRows}, several calls fill
 * one fused weight. `dst` must start zeroed (the padding is not written).
 */
export function packRowsI8(
  dst: Int8Array,
  wsum: Int32Array,
  src: ArrayLike<number>,
  row0: number,
  rows: number,
  K: number,
): void {
  const quads = Math.ceil(K / 4);
  for (let r = 0; r < rows; r++) {
    const n = row0 + r,
      base = i8Base(n, quads);
    let sum = 0;
    for (let k = 0; k < K; k++) {
      const v = src[r * K + k];
      dst[i8At(base, k)] = v;
      sum += v;
    }
    wsum[n] = sum;
  }
}

/** Packs a whole int8 W (N, K) into fresh arrays (tests and tools); wsum padded to ⌈N/8⌉·8. */
export function packWeightI8(q: Int8Array, N: number, K: number): { wq: Int8Array; wsum: Int32Array; Kp: number } {
  const { bytes, Kp } = packedSizeI8(N, K),
    wq = new Int8Array(bytes),
    wsum = new Int32Array(Math.ceil(N / 8) * 8);
  packRowsI8(wq, wsum, q, 0, N, K);
  return { wq, wsum, Kp };
}

/** gemm_i8_4x8's packed weights back to (N, K) row-major: the inverse of {@link packWeightI8}. */
export function unpackWeightI8(wq: Int8Array, N: number, K: number): Int8Array {
  const quads = Math.ceil(K / 4),
    q = new Int8Array(N * K);
  for (let n = 0; n < N; n++) {
    const base = i8Base(n, quads);
    for (let k = 0; k < K; k++) q[n * K + k] = wq[i8At(base, k)];
  }
  return q;
}

/** int8 rows back to f32: out[r, k] = scale[r] · q[r, k], for rows of K (`out` may be `q` itself). */
export function dequantizeRows(q: ArrayLike<number>, scale: Float32Array, K: number, out: Float32Array): Float32Array {
  for (let r = 0; r < scale.length; r++) for (let k = 0; k < K; k++) out[r * K + k] = scale[r] * q[r * K + k];
  return out;
}

/**
 * Symmetric per-row int8, in f32 arithmetic (the rule the loader's wasm kernel
 * quantize_pack_weights_i8 follows to the bit): s = m / 127 with m = max |row| (1 for a zero row),
 * q = round(w · (1 / s)) to nearest, ties to even, within ±127. `into` (at least N·K, N) reuses
 * buffers; the results are views of them.
 */
export function quantizeRows(
  w: Float32Array,
  N: number,
  K: number,
  into?: { q: Int8Array; scale: Float32Array },
): { q: Int8Array; scale: Float32Array } {
  const q = into ? into.q.subarray(0, N * K) : new Int8Array(N * K),
    scale = into ? into.scale.subarray(0, N) : new Float32Array(N);
  const f = Math.fround;
  for (let n = 0; n < N; n++) {
    const o = n * K;
    let m = 0;
    for (let k = 0; k < K; k++) m = Math.max(m, Math.abs(w[o + k]));
    const s = m > 0 ? f(m / 127) : 1,
      inv = f(1 / s);
    scale[n] = s;
    for (let k = 0; k < K; k++) {
      const v = f(w[o + k] * inv);
      let r = Math.round(v); // half up; ties go to even below
      if (r - v === 0.5 && r % 2 !== 0) r -= 1;
      q[o + k] = Math.max(-127, Math.min(127, r));
    }
  }
  return { q, scale };
}
