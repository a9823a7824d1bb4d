// Linear layer: C = epilogue(A · Wᵀ + bias).
// M = rows (tokens), N = output features, K = input features.
// W is packed once at load (src/runtime/pack.ts) into ⌈N/8⌉ panels of K×8 floats so the 4×8 tile reads 8
// consecutive output features per k with two aligned v128 loads; A is read in place and broadcast.
// The regions between `// >>> tile…` and `// <<< tile…` are stamped out by scripts/gen-tiles.mjs from
// its one 4×8 tile and one 1×8 tail (shared with attention.ts): edit the tile there.
import { fmadd, lane, gelu_f64 } from './simd';
import { gelu4 } from './gelu';

// Epilogues (mirrored in src/runtime/kernels.ts, EPI): what happens to acc + bias before it lands in C.
// @ts-ignore: decorator
@inline const EPI_STORE = 0;  // C = acc
// @ts-ignore: decorator
@inline const EPI_ADD = 1;    // C += acc        (residual connection)
// @ts-ignore: decorator
@inline const EPI_GELU = 2;   // C = gelu(acc)   (MLP up-projection)

/**
 * Stores one row of an 8-wide tile: adds the bias, then the residual (EPI_ADD) or GELU (EPI_GELU, on
 * the registers: the row is not read back), writes the first n ≤ 8 columns.
 */
function finish_row(pc: usize /* (n) row of C */, v0: v128, v1: v128, pbias: usize /* (8) or 0 */, n: i32, epi: i32): void {
  if (pbias) { v0 = f32x4.add(v0, v128.load(pbias)); v1 = f32x4.add(v1, v128.load(pbias, 16)); }
  if (epi == EPI_GELU) { v0 = gelu4(v0); v1 = gelu4(v1); }
  if (n == 8) {
    if (epi == EPI_ADD) { v0 = f32x4.add(v0, v128.load(pc)); v1 = f32x4.add(v1, v128.load(pc, 16)); }
    v128.store(pc, v0); v128.store(pc, v1, 16);
    return;
  }
  // Partial panel: scalar stores, so we never read or write past column N of this row.
  for (let j = 0; j < n; j++) {
    const x = j < 4 ? lane(v0, j) : lane(v1, j - 4);
    const q = pc + (<usize>j << 2);
    store<f32>(q, epi == EPI_ADD ? load<f32>(q) + x : x);
  }
}

/**
 * 4×8 register tile (8 accumulators), mul+add or relaxed FMA by build. Any M, N, K ≥ 0.
 * Panel-outer: each K×8 panel of W is fetched once and swept by all M rows (4 at a time, then a
 * 1-row tail) while it sits in L1/L2, so W streams from memory once per call; A (M × K) is re-read
 * per panel, from L2/L3. The caller bounds M so that A stays in cache (src/nn/work.ts, gemmTiles).
 * a    (M, lda)       activations, lda ≥ K
 * wp   (⌈N/8⌉, K, 8)  packed weights, zero-padded past N
 * bias (⌈N/8⌉·8)      zero-padded, or 0 for none
 * c    (M, ldc)       output (read too when epi = EPI_ADD)
 */
export function gemm_4x8(a: usize, lda: i32, wp: usize, bias: usize, c: usize, ldc: i32,
                              M: i32, N: i32, K: i32, epi: i32): void {
  const sa = <usize>lda << 2, sc = <usize>ldc << 2, panel = <usize>K << 5;
  const panels = (N + 7) >> 3, M4 = M & ~3;
  for (let p = 0; p < panels; p++) {
    const n = min(8, N - (p << 3)), pw = wp + <usize>p * panel, pbias = bias ? bias + (<usize>p << 5) : 0;
    const c0 = c + (<usize>p << 5);
    let i = 0;
    for (; i < M4; i += 4) {
      let pb = pw, pa = a + <usize>i * sa;
      // >>> tile4x8 i=k n=K a=pa sa=sa da=4 b=pb db=32
      let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let av = v128.load32_splat(pa);
        c00 = fmadd(av, b0, c00); c01 = fmadd(av, b1, c01);
        av = v128.load32_splat(pa + sa);
        c10 = fmadd(av, b0, c10); c11 = fmadd(av, b1, c11);
        av = v128.load32_splat(pa + 2 * sa);
        c20 = fmadd(av, b0, c20); c21 = fmadd(av, b1, c21);
        av = v128.load32_splat(pa + 3 * sa);
        c30 = fmadd(av, b0, c30); c31 = fmadd(av, b1, c31);
        pb += 32; pa += 4;
      }
      // <<< tile4x8
      const pc = c0 + <usize>i * sc;
      finish_row(pc, c00, c01, pbias, n, epi);
      finish_row(pc + sc, c10, c11, pbias, n, epi);
      finish_row(pc + 2 * sc, c20, c21, pbias, n, epi);
      finish_row(pc + 3 * sc, c30, c31, pbias, n, epi);
    }
    // Remaining 1–3 rows: a 1×8 tile.
    for (; i < M; i++) {
      let pb = pw, pa = a + <usize>i * sa;
      // >>> tile1x8 i=k n=K a=pa da=4 b=pb db=32
      let c00 = f32x4.splat(0), c01 = c00;
      for (let k = 0; k < K; k++) {
        const av = v128.load32_splat(pa);
        c00 = fmadd(av, v128.load(pb), c00); c01 = fmadd(av, v128.load(pb, 16), c01);
        pb += 32; pa += 4;
      }
      // <<< tile1x8
      finish_row(c0 + <usize>i * sc, c00, c01, pbias, n, epi);
    }
  }
}

/**
 * Scalar f64 reference on the unpacked weights.
 * a (M, lda), w (N, K) row-major as in the checkpoint, bias (N) or 0, c (M, ldc)
 */
export function gemm_ref(a: usize, lda: i32, w: usize, bias: usize, c: usize, ldc: i32,
                         M: i32, N: i32, K: i32, epi: i32): void {
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s: f64 = bias ? <f64>load<f32>(bias + (<usize>j << 2)) : 0;
      for (let k = 0; k < K; k++) {
        s += <f64>load<f32>(a + ((<usize>i * lda + k) << 2)) * <f64>load<f32>(w + ((<usize>j * K + k) << 2));
      }
      const q = c + ((<usize>i * ldc + j) << 2);
      if (epi == EPI_GELU) s = gelu_f64(s);
      else if (epi == EPI_ADD) s += <f64>load<f32>(q);
      store<f32>(q, <f32>s);
    }
  }
}

// ---- backward: the same 4×8 register tile over arbitrary strides, so the two gradient products
// read their operands in place: dX = dY·W (A = dY rows, B = W rows) and dW = dYᵀ·X (A = dY columns,
// B = X rows). Strides are in bytes. B rows are read 8 floats at a time: keep 8 floats of slack
// after B (src/train/core.ts, trainLayout, pads every training buffer).

/**
 * C (M, N) = A · B (+ C when epi = EPI_ADD), A[i, k] at a + i·ai + k·ak, B[k, j] at b + k·bk + j·4.
 * Panel-outer like gemm_4x8: each 8-column panel of B is swept by all M rows, so B is read once
 * per call; the caller bounds M so that A's rows stay in cache (src/nn/ops.ts, linearBackward).
 * c (M, ldc)
 */
export function gemm_4x8_strided(a: usize, ai: i32, ak: i32, b: usize, bk: i32, c: usize, ldc: i32,
                                      M: i32, N: i32, K: i32, epi: i32): void {
  const sai = <usize>ai, sak = <usize>ak, sbk = <usize>bk, sc = <usize>ldc << 2, panels = (N + 7) >> 3, M4 = M & ~3;
  for (let p = 0; p < panels; p++) {
    const n = min(8, N - (p << 3));
    for (let i = 0; i < M4; i += 4) {
      let pb = b + (<usize>p << 5), pa = a + <usize>i * sai;
      // >>> tile4x8 i=k n=K a=pa sa=sai da=sak b=pb db=sbk
      let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (let k = 0; k < K; k++) {
        const b0 = v128.load(pb), b1 = v128.load(pb, 16);
        let av = v128.load32_splat(pa);
        c00 = fmadd(av, b0, c00); c01 = fmadd(av, b1, c01);
        av = v128.load32_splat(pa + sai);
        c10 = fmadd(av, b0, c10); c11 = fmadd(av, b1, c11);
        av = v128.load32_splat(pa + 2 * sai);
        c20 = fmadd(av, b0, c20); c21 = fmadd(av, b1, c21);
        av = v128.load32_splat(pa + 3 * sai);
        c30 = fmadd(av, b0, c30); c31 = fmadd(av, b1, c31);
        pb += sbk; pa += sak;
      }
      // <<< tile4x8
      const pc = c + <usize>i * sc + (<usize>p << 5);
      finish_row(pc, c00, c01, 0, n, epi); finish_row(pc + sc, c10, c11, 0, n, epi);
      finish_row(pc + 2 * sc, c20, c21, 0, n, epi); finish_row(pc + 3 * sc, c30, c31, 0, n, epi);
    }
  }
  for (let i = M4; i < M; i++) {
    for (let p = 0; p < panels; p++) {
      let pb = b + (<usize>p << 5), pa = a + <usize>i * sai;
      // >>> tile1x8 i=k n=K a=pa da=sak b=pb db=sbk
      let c00 = f32x4.splat(0), c01 = c00;
      for (let k = 0; k < K; k++) {
        const av = v128.load32_splat(pa);
        c00 = fmadd(av, v128.load(pb), c00); c01 = fmadd(av, v128.load(pb, 16), c01);
        pb += sbk; pa += sak;
      }
      // <<< tile1x8
      finish_row(c + <usize>i * sc + (<usize>p << 5), c00, c01, 0, min(8, N - (p << 3)), epi);
    }
  }
}

/** Scalar f64 reference; same arguments. */
export function gemm_strided_ref(a: usize, ai: i32, ak: i32, b: usize, bk: i32, c: usize, ldc: i32,
                                 M: i32, N: i32, K: i32, epi: i32): void {
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) {
    let s: f64 = 0;
    for (let k = 0; k < K; k++) s += <f64>load<f32>(a + <usize>i * ai + <usize>k * ak) * <f64>load<f32>(b + <usize>k * bk + (<usize>j << 2));
    const q = c + ((<usize>i * ldc + j) << 2);
    store<f32>(q, <f32>(epi == EPI_ADD ? s + <f64>load<f32>(q) : s));
  }
}

// ---- packing for the weight gradient dW = dYᵀ·X: both operands made contiguous, so it runs on
// gemm_4x8 (A = dYᵀ row-major, W = X's column panels). Read in place, dY's columns sit a row of dY
// apart (12 KB for a 3072-wide MLP) and X's panels a row of X apart: two cache misses per k, which
// held the strided kernel to 20–40% of the ceiling (bench/NOTES.md). Copies: no arithmetic.

/** dst (cols, ldd) = srcᵀ for src (rows, ld): 4×4 blocks through registers, then the edges. */
export function transpose(src: usize, ld: i32, dst: usize, ldd: i32, rows: i32, cols: i32): void {
  const ls = <usize>ld << 2, lt = <usize>ldd << 2, R4 = rows & ~3, C4 = cols & ~3;
  for (let r = 0; r < R4; r += 4) {
    const s = src + <usize>r * ls, d = dst + (<usize>r << 2);
    for (let c = 0; c < C4; c += 4) {
      const o = <usize>c << 2;
      const x0 = v128.load(s + o), x1 = v128.load(s + ls + o), x2 = v128.load(s + 2 * ls + o), x3 = v128.load(s + 3 * ls + o);
      const t0 = i32x4.shuffle(x0, x1, 0, 4, 1, 5), t1 = i32x4.shuffle(x2, x3, 0, 4, 1, 5);
      const t2 = i32x4.shuffle(x0, x1, 2, 6, 3, 7), t3 = i32x4.shuffle(x2, x3, 2, 6, 3, 7);
      const q = d + <usize>c * lt;
      v128.store(q, i64x2.shuffle(t0, t1, 0, 2)); v128.store(q + lt, i64x2.shuffle(t0, t1, 1, 3));
      v128.store(q + 2 * lt, i64x2.shuffle(t2, t3, 0, 2)); v128.store(q + 3 * lt, i64x2.shuffle(t2, t3, 1, 3));
    }
    for (let c = C4; c < cols; c++)
      for (let i = 0; i < 4; i++) store<f32>(d + <usize>c * lt + (<usize>i << 2), load<f32>(s + <usize>i * ls + (<usize>c << 2)));
  }
  for (let r = R4; r < rows; r++)
    for (let c = 0; c < cols; c++) store<f32>(dst + <usize>c * lt + (<usize>r << 2), load<f32>(src + <usize>r * ls + (<usize>c << 2)));
}

/** dst (⌈cols/8⌉, rows, 8) = src (rows, ld)'s columns in panels of 8, zero past cols: gemm_4x8's W layout. */
export function pack_panels_8(src: usize, ld: i32, dst: usize, rows: i32, cols: i32): void {
  const ls = <usize>ld << 2, panels = (cols + 7) >> 3;
  for (let p = 0; p < panels; p++) {
    const n = min(8, cols - (p << 3)), s = src + (<usize>p << 5), d = dst + <usize>p * (<usize>rows << 5);
    for (let r = 0; r < rows; r++) {
      const from = s + <usize>r * ls, to = d + (<usize>r << 5);
      if (n == 8) { v128.store(to, v128.load(from)); v128.store(to, v128.load(from, 16), 16); continue; }
      for (let j = 0; j < 8; j++) store<f32>(to + (<usize>j << 2), j < n ? load<f32>(from + (<usize>j << 2)) : 0);
    }
  }
}

/** Bias gradient: db (N) += Σ_m dy (M, N). */
export function colsum(dy: usize, db: usize, M: i32, N: i32): void {
  const N4 = N & ~3, ld = <usize>N << 2;
  let j = 0;
  for (; j < N4; j += 4) {
    let acc = v128.load(db + (<usize>j << 2));
    let p = dy + (<usize>j << 2);
    for (let m = 0; m < M; m++) { acc = f32x4.add(acc, v128.load(p)); p += ld; }
    v128.store(db + (<usize>j << 2), acc);
  }
  for (; j < N; j++) {
    let acc = load<f32>(db + (<usize>j << 2));
    for (let m = 0; m < M; m++) acc += load<f32>(dy + ((<usize>m * N + j) << 2));
    store<f32>(db + (<usize>j << 2), acc);
  }
}

/** Scalar f64 reference; same arguments. */
export function colsum_ref(dy: usize, db: usize, M: i32, N: i32): void {
  for (let j = 0; j < N; j++) {
    let s = <f64>load<f32>(db + (<usize>j << 2));
    for (let m = 0; m < M; m++) s += <f64>load<f32>(dy + ((<usize>m * N + j) << 2));
    store<f32>(db + (<usize>j << 2), <f32>s);
  }
}
