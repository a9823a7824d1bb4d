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
