// Multi-head self-attention core: out_h = softmax(Q_h K_hᵀ · scale) V_h for one (image, head) and a
// range of query rows, so a worker pool can split B·H·T rows. Scores are built one query row at a
// time in scratch and consumed at once: the T×T score matrix is never written out unless asked for.
// T = tokens, D = hidden size, dh = head size, Tp = T rounded up to a multiple of 4.
import { fmadd, hmax, hsum, lane, vexp, exp_f64 } from './simd';

/** Row softmax in place over n floats; any n. */
// @ts-ignore: decorator
@inline function softmax_row(p: usize /* (n) */, n: i32): void {
  const n4 = n & ~3;
  let vm = f32x4.splat(-Infinity);
  let i = 0;
  for (; i < n4; i += 4) vm = f32x4.max(vm, v128.load(p + (<usize>i << 2)));
  let m = hmax(vm);
  for (; i < n; i++) m = max(m, load<f32>(p + (<usize>i << 2)));
  const vmax = f32x4.splat(m);
  let vs = f32x4.splat(0);
  for (i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const e = vexp(f32x4.sub(v128.load(p + o), vmax));
    v128.store(p + o, e); vs = f32x4.add(vs, e);
  }
  let sum = hsum(vs);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const e = lane(vexp(f32x4.splat(load<f32>(p + o) - m)), 0);
    store<f32>(p + o, e); sum += e;
  }
  const inv: f32 = <f32>1.0 / sum, vinv = f32x4.splat(inv);
  for (i = 0; i < n4; i += 4) { const o = <usize>i << 2; v128.store(p + o, f32x4.mul(v128.load(p + o), vinv)); }
  for (; i < n; i++) { const o = <usize>i << 2; store<f32>(p + o, load<f32>(p + o) * inv); }
}

/** x (rows, ld): softmax of the first n columns of every row, in place. */
export function softmax_rows_simd(x: usize, ld: i32, rows: i32, n: i32): void {
  for (let r = 0; r < rows; r++) softmax_row(x + ((<usize>r * ld) << 2), n);
}

/** Scalar f64 reference; same arguments. */
export function softmax_rows_ref(x: usize, ld: i32, rows: i32, n: i32): void {
  for (let r = 0; r < rows; r++) {
    const p = x + ((<usize>r * ld) << 2);
    let m: f64 = -Infinity;
    for (let i = 0; i < n; i++) m = max(m, <f64>load<f32>(p + (<usize>i << 2)));
    let s: f64 = 0;
    for (let i = 0; i < n; i++) s += exp_f64(<f64>load<f32>(p + (<usize>i << 2)) - m);
    for (let i = 0; i < n; i++) {
      const o = p + (<usize>i << 2);
      store<f32>(o, <f32>(exp_f64(<f64>load<f32>(o) - m) / s));
    }
  }
}

/**
 * K_hᵀ of one image, zero-padded to Tp columns, so a score row is a broadcast-multiply over
 * contiguous keys. Packed once per (image, head) before any worker computes that head's rows.
 * qkv (T, 3D), kt (dh, Tp)
 */
export function attention_pack_kt(qkv: usize, kt: usize, T: i32, D: i32, dh: i32, h: i32): void {
  const ld = <usize>(3 * D) << 2, Tp = (T + 3) & ~3, sT = <usize>Tp << 2;
  const k0 = qkv + (<usize>(D + h * dh) << 2);
  for (let j = 0; j < Tp; j++) {
    const kj = k0 + <usize>j * ld;
    for (let d = 0; d < dh; d++) store<f32>(kt + <usize>d * sT + (<usize>j << 2), j < T ? load<f32>(kj + (<usize>d << 2)) : 0);
  }
}

/**
 * Query rows i0 … i1-1 of head h of one image (workers split one head's rows between them).
 * qkv     (T, 3D)        each row is [q | k | v], head h at columns h·dh of each third
 * kt      (dh, Tp)       K_hᵀ from attention_pack_kt
 * out     (T, D)         columns h·dh … h·dh+dh-1 of rows i0 … i1-1 are written
 * scratch (Tp)           per worker: one row of scores
 * probs   (T, T) or 0    where to keep this head's attention map (for inspection)
 */
export function attention_head_simd(qkv: usize, kt: usize, out: usize, scratch: usize, probs: usize,
                                    T: i32, D: i32, dh: i32, h: i32, scale: f32, i0: i32, i1: i32): void {
  const ld = <usize>(3 * D) << 2, ldo = <usize>D << 2;
  const Tp = (T + 3) & ~3, sT = <usize>Tp << 2;
  const q0 = qkv + (<usize>(h * dh) << 2), v0 = q0 + (<usize>(2 * D) << 2);
  const s = scratch;
  const vscale = f32x4.splat(scale);
  const dh4 = dh & ~3;
  for (let i = i0; i < i1; i++) {
    const qi = q0 + <usize>i * ld;
    // scores s[j] = scale · q_i · k_j, 8 keys at a time, then 4
    let j = 0;
    for (; j + 8 <= Tp; j += 8) {
      let a0 = f32x4.splat(0), a1 = a0;
      let pk = kt + (<usize>j << 2);
      for (let d = 0; d < dh; d++) {
        const qd = v128.load32_splat(qi + (<usize>d << 2));
        a0 = fmadd(qd, v128.load(pk), a0); a1 = fmadd(qd, v128.load(pk, 16), a1);
        pk += sT;
      }
      v128.store(s + (<usize>j << 2), f32x4.mul(a0, vscale)); v128.store(s + (<usize>j << 2), f32x4.mul(a1, vscale), 16);
    }
    for (; j < Tp; j += 4) {
      let a0 = f32x4.splat(0);
      let pk = kt + (<usize>j << 2);
      for (let d = 0; d < dh; d++) { a0 = fmadd(v128.load32_splat(qi + (<usize>d << 2)), v128.load(pk), a0); pk += sT; }
      v128.store(s + (<usize>j << 2), f32x4.mul(a0, vscale));
    }
    softmax_row(s, T);
    if (probs) memory.copy(probs + ((<usize>i * T) << 2), s, <usize>T << 2);
    // out_i = Σ_j p_j v_j over the head's columns, 4 at a time, then the odd tail.
    const oi = out + <usize>i * ldo + (<usize>(h * dh) << 2);
    let d = 0;
    for (; d + 8 <= dh4; d += 8) {
      let a0 = f32x4.splat(0), a1 = a0;
      let pv = v0 + (<usize>d << 2);
      for (let jj = 0; jj < T; jj++) {
        const pj = v128.load32_splat(s + (<usize>jj << 2));
        a0 = fmadd(pj, v128.load(pv), a0); a1 = fmadd(pj, v128.load(pv, 16), a1);
        pv += ld;
      }
      v128.store(oi + (<usize>d << 2), a0); v128.store(oi + (<usize>d << 2), a1, 16);
    }
    for (; d < dh4; d += 4) {
      let a0 = f32x4.splat(0);
      let pv = v0 + (<usize>d << 2);
      for (let jj = 0; jj < T; jj++) { a0 = fmadd(v128.load32_splat(s + (<usize>jj << 2)), v128.load(pv), a0); pv += ld; }
      v128.store(oi + (<usize>d << 2), a0);
    }
    for (; d < dh; d++) {
      let acc: f32 = 0;
      let pv = v0 + (<usize>d << 2);
      for (let jj = 0; jj < T; jj++) { acc += load<f32>(s + (<usize>jj << 2)) * load<f32>(pv); pv += ld; }
      store<f32>(oi + (<usize>d << 2), acc);
    }
  }
}

/** Scalar f64 reference; same arguments (kt and scratch unused). */
export function attention_head_ref(qkv: usize, kt: usize, out: usize, scratch: usize, probs: usize,
                                   T: i32, D: i32, dh: i32, h: i32, scale: f32, i0: i32, i1: i32): void {
  const ld = 3 * D;
  for (let i = i0; i < i1; i++) {
    let m: f64 = -Infinity;
    for (let j = 0; j < T; j++) m = max(m, dot_f64(qkv, i * ld + h * dh, j * ld + D + h * dh, dh) * <f64>scale);
    let sum: f64 = 0;
    for (let j = 0; j < T; j++) sum += exp_f64(dot_f64(qkv, i * ld + h * dh, j * ld + D + h * dh, dh) * <f64>scale - m);
    for (let d = 0; d < dh; d++) {
      let acc: f64 = 0;
      for (let j = 0; j < T; j++) {
        const p = exp_f64(dot_f64(qkv, i * ld + h * dh, j * ld + D + h * dh, dh) * <f64>scale - m) / sum;
        acc += p * <f64>load<f32>(qkv + (<usize>(j * ld + 2 * D + h * dh + d) << 2));
        if (probs && d == 0) store<f32>(probs + (<usize>(i * T + j) << 2), <f32>p);
      }
      store<f32>(out + (<usize>(i * D + h * dh + d) << 2), <f32>acc);
    }
  }
}

function dot_f64(base: usize /* floats */, ia: i32, ib: i32, n: i32): f64 {
  let s: f64 = 0;
  for (let k = 0; k < n; k++) s += <f64>load<f32>(base + (<usize>(ia + k) << 2)) * <f64>load<f32>(base + (<usize>(ib + k) << 2));
  return s;
}
