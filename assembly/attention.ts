// Multi-head self-attention core: out_h = softmax(Q_h K_hᵀ · scale) V_h for one (image, head) and a
// range of query rows, so a worker pool can split B·H·T rows. Scores are built one query row at a
// time in scratch and consumed at once: the T×T score matrix is never written out unless asked for.
// T = tokens, D = hidden size, dh = head size. QKᵀ and P·V use the 4×8 register tile and 1×8 tail of
// gemm.ts, stamped out by scripts/gen-tiles.mjs (the `// >>> tile…` regions).
import { CST, fmadd, hmax, hsum, lane, vexp, exp_f64, log_f64 } from './simd';

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
  const log2e = v128.load32_splat(CST, 0), magic = v128.load32_splat(CST, 4), nhi = v128.load32_splat(CST, 8), nlo = v128.load32_splat(CST, 12);
  const c5 = v128.load32_splat(CST, 16), c4 = v128.load32_splat(CST, 20), c3 = v128.load32_splat(CST, 24), c2 = v128.load32_splat(CST, 28);
  const c1 = v128.load32_splat(CST, 32), cut = v128.load32_splat(CST, 36);
  let vs = f32x4.splat(0);
  for (i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const e = vexp(f32x4.sub(v128.load(p + o), vmax), log2e, magic, nhi, nlo, c5, c4, c3, c2, c1, cut);
    v128.store(p + o, e); vs = f32x4.add(vs, e);
  }
  let sum = hsum(vs);
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const e = lane(vexp(f32x4.splat(load<f32>(p + o) - m), log2e, magic, nhi, nlo, c5, c4, c3, c2, c1, cut), 0);
    store<f32>(p + o, e); sum += e;
  }
  const inv: f32 = <f32>1.0 / sum, vinv = f32x4.splat(inv);
  for (i = 0; i < n4; i += 4) { const o = <usize>i << 2; v128.store(p + o, f32x4.mul(v128.load(p + o), vinv)); }
  for (; i < n; i++) { const o = <usize>i << 2; store<f32>(p + o, load<f32>(p + o) * inv); }
}

/** x (rows, ld): softmax of the first n columns of every row, in place. */
export function softmax_rows(x: usize, ld: i32, rows: i32, n: i32): void {
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
 * K_hᵀ and V_h of one image in GEMM panels, so that both products of attention_head read their
 * right-hand side contiguously, as gemm_4x8 reads W: K_hᵀ, for each block of 8 keys, (dh, 8)
 * floats, keys past T zero (a block of query rows times a panel is the 4×8 register tile); then
 * V_h, for each whole group of 8 of its dh columns, (T, 8) floats (P·V's tile reads one row of a
 * group per key; V's columns past the last whole group stay in qkv). Packed once per (image, head)
 * before any worker computes that head's rows.
 * qkv (T, 3D), kv: kt (⌈T/8⌉, dh, 8) then vp (⌊dh/8⌋, T, 8), attentionPanelFloats(T, dh) floats
 */
export function attention_pack_kv(qkv: usize, kv: usize, T: i32, D: i32, dh: i32, h: i32): void {
  const ld = <usize>(3 * D) << 2, k0 = qkv + (<usize>(D + h * dh) << 2), T8 = (T + 7) & ~7;
  for (let j = 0; j < T8; j++) {
    const kj = k0 + <usize>j * ld, dst = kv + <usize>(j >> 3) * (<usize>dh << 5) + (<usize>(j & 7) << 2);
    for (let d = 0; d < dh; d++) store<f32>(dst + (<usize>d << 5), j < T ? load<f32>(kj + (<usize>d << 2)) : 0);
  }
  const v0 = k0 + (<usize>D << 2), vp = kv + (<usize>(dh * T8) << 2);
  for (let g = 0; g < dh >> 3; g++) {
    const dst = vp + <usize>g * (<usize>T << 5), src = v0 + (<usize>g << 5);
    for (let j = 0; j < T; j++) {
      const vj = src + <usize>j * ld, o = dst + (<usize>j << 5);
      v128.store(o, v128.load(vj)); v128.store(o, v128.load(vj, 16), 16);
    }
  }
}

/**
 * Query rows i0 … i1-1 of head h of one image, 4 rows at a time: scores (4, T) = scale·Q·Kᵀ with the
 * 4×8 tile over K panels, row softmax, then out (4, dh) = P·V with a 4×8 tile over V's rows.
 * qkv     (T, 3D)        each row is [q | k | v], head h at columns h·dh of each third
 * kv      K_hᵀ and V_h panels from attention_pack_kv
 * out     (T, D)         columns h·dh … h·dh+dh-1 of rows i0 … i1-1 are written
 * scratch (4, T8)        per worker: four rows of scores, T8 = T rounded up to 8
 * probs   (T, T) or 0    where to keep this head's attention map (for inspection)
 * bias    (T, T) or 0    added to the scaled scores before softmax (BEiT's relative position bias)
 */
export function attention_head(qkv: usize, kv: usize, out: usize, scratch: usize, probs: usize, bias: usize,
                                    T: i32, D: i32, dh: i32, h: i32, scale: f32, i0: i32, i1: i32): void {
  const ld = <usize>(3 * D) << 2, ldo = <usize>D << 2, T8 = (T + 7) & ~7, ls = <usize>T8 << 2;
  const vp = kv + (<usize>(dh * T8) << 2);
  const panels = T8 >> 3, panel = <usize>dh << 5;
  const q0 = qkv + (<usize>(h * dh) << 2), v0 = q0 + (<usize>(2 * D) << 2), o0 = out + (<usize>(h * dh) << 2);
  const vscale = f32x4.splat(scale);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const qi = q0 + <usize>i * ld;
    for (let p = 0; p < panels; p++) {
      let pk = kv + <usize>p * panel, pq = qi;
      // >>> tile4x8 i=d n=dh a=pq sa=ld da=4 b=pk db=32
      let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (let d = 0; d < dh; d++) {
        const b0 = v128.load(pk), b1 = v128.load(pk, 16);
        let av = v128.load32_splat(pq);
        c00 = fmadd(av, b0, c00); c01 = fmadd(av, b1, c01);
        av = v128.load32_splat(pq + ld);
        c10 = fmadd(av, b0, c10); c11 = fmadd(av, b1, c11);
        av = v128.load32_splat(pq + 2 * ld);
        c20 = fmadd(av, b0, c20); c21 = fmadd(av, b1, c21);
        av = v128.load32_splat(pq + 3 * ld);
        c30 = fmadd(av, b0, c30); c31 = fmadd(av, b1, c31);
        pk += 32; pq += 4;
      }
      // <<< tile4x8
      const ps = scratch + (<usize>p << 5);
      v128.store(ps, f32x4.mul(c00, vscale)); v128.store(ps, f32x4.mul(c01, vscale), 16);
      v128.store(ps + ls, f32x4.mul(c10, vscale)); v128.store(ps + ls, f32x4.mul(c11, vscale), 16);
      v128.store(ps + 2 * ls, f32x4.mul(c20, vscale)); v128.store(ps + 2 * ls, f32x4.mul(c21, vscale), 16);
      v128.store(ps + 3 * ls, f32x4.mul(c30, vscale)); v128.store(ps + 3 * ls, f32x4.mul(c31, vscale), 16);
    }
    for (let r = 0; r < 4; r++) {
      if (bias) add_row(scratch + <usize>r * ls, bias + ((<usize>(i + r) * T) << 2), T);
      softmax_row(scratch + <usize>r * ls, T);
      if (probs) memory.copy(probs + ((<usize>(i + r) * T) << 2), scratch + <usize>r * ls, <usize>T << 2);
    }
    pv_rows(scratch, ls, vp, v0, ld, o0 + <usize>i * ldo, ldo, 4, T, dh);
  }
  for (; i < i1; i++) {
    const qi = q0 + <usize>i * ld;
    for (let p = 0; p < panels; p++) {
      let pk = kv + <usize>p * panel, pq = qi;
      // >>> tile1x8 i=d n=dh a=pq da=4 b=pk db=32
      let c00 = f32x4.splat(0), c01 = c00;
      for (let d = 0; d < dh; d++) {
        const av = v128.load32_splat(pq);
        c00 = fmadd(av, v128.load(pk), c00); c01 = fmadd(av, v128.load(pk, 16), c01);
        pk += 32; pq += 4;
      }
      // <<< tile1x8
      const ps = scratch + (<usize>p << 5);
      v128.store(ps, f32x4.mul(c00, vscale)); v128.store(ps, f32x4.mul(c01, vscale), 16);
    }
    if (bias) add_row(scratch, bias + ((<usize>i * T) << 2), T);
    softmax_row(scratch, T);
    if (probs) memory.copy(probs + ((<usize>i * T) << 2), scratch, <usize>T << 2);
    pv_rows(scratch, ls, vp, v0, ld, o0 + <usize>i * ldo, ldo, 1, T, dh);
  }
}

/** p (n) += b (n): a row of the attention bias onto a row of scores. */
// @ts-ignore: decorator
@inline function add_row(p: usize, b: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(p + o, f32x4.add(v128.load(p + o), v128.load(b + o))); }
  for (; j < n; j++) { const o = <usize>j << 2; store<f32>(p + o, load<f32>(p + o) + load<f32>(b + o)); }
}

/**
 * out (R, dh) = P (R, T) · V (T, dh) for R = 4 or 1 rows: each whole group of 8 output columns
 * with the 4×8 (or 1×8) tile over V's packed panels, then the last dh mod 8 columns 4, then 1 at a
 * time from V in place (stride ld).
 * p (R, lp), vp (⌊dh/8⌋, T, 8), v (T, ld), out (R, ldo)
 */
// @ts-ignore: decorator
@inline function pv_rows(p: usize, lp: usize, vp: usize, v: usize, ld: usize, out: usize, ldo: usize, R: i32, T: i32, dh: i32): void {
  let d = 0;
  if (R == 4) {
    for (; d + 8 <= dh; d += 8) {
      let pv = vp + <usize>(d >> 3) * (<usize>T << 5), pp = p;
      // >>> tile4x8 i=j n=T a=pp sa=lp da=4 b=pv db=32
      let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
      for (let j = 0; j < T; j++) {
        const b0 = v128.load(pv), b1 = v128.load(pv, 16);
        let av = v128.load32_splat(pp);
        c00 = fmadd(av, b0, c00); c01 = fmadd(av, b1, c01);
        av = v128.load32_splat(pp + lp);
        c10 = fmadd(av, b0, c10); c11 = fmadd(av, b1, c11);
        av = v128.load32_splat(pp + 2 * lp);
        c20 = fmadd(av, b0, c20); c21 = fmadd(av, b1, c21);
        av = v128.load32_splat(pp + 3 * lp);
        c30 = fmadd(av, b0, c30); c31 = fmadd(av, b1, c31);
        pv += 32; pp += 4;
      }
      // <<< tile4x8
      const po = out + (<usize>d << 2);
      v128.store(po, c00); v128.store(po, c01, 16); v128.store(po + ldo, c10); v128.store(po + ldo, c11, 16);
      v128.store(po + 2 * ldo, c20); v128.store(po + 2 * ldo, c21, 16); v128.store(po + 3 * ldo, c30); v128.store(po + 3 * ldo, c31, 16);
    }
  }
  // the rest, one row at a time
  const d8 = d;
  for (let r = 0; r < R; r++) {
    const pr = p + <usize>r * lp, orow = out + <usize>r * ldo;
    d = d8;
    for (; d + 8 <= dh; d += 8) {
      let pv = vp + <usize>(d >> 3) * (<usize>T << 5), pp = pr;
      // >>> tile1x8 i=j n=T a=pp da=4 b=pv db=32
      let c00 = f32x4.splat(0), c01 = c00;
      for (let j = 0; j < T; j++) {
        const av = v128.load32_splat(pp);
        c00 = fmadd(av, v128.load(pv), c00); c01 = fmadd(av, v128.load(pv, 16), c01);
        pv += 32; pp += 4;
      }
      // <<< tile1x8
      v128.store(orow + (<usize>d << 2), c00); v128.store(orow + (<usize>d << 2), c01, 16);
    }
    for (; d + 4 <= dh; d += 4) {
      let pv = v + (<usize>d << 2), pp = pr;
      let c0 = f32x4.splat(0);
      for (let j = 0; j < T; j++) { c0 = fmadd(v128.load32_splat(pp), v128.load(pv), c0); pv += ld; pp += 4; }
      v128.store(orow + (<usize>d << 2), c0);
    }
    for (; d < dh; d++) {
      let pv = v + (<usize>d << 2), pp = pr;
      let acc: f32 = 0;
      for (let j = 0; j < T; j++) { acc += load<f32>(pp) * load<f32>(pv); pv += ld; pp += 4; }
      store<f32>(orow + (<usize>d << 2), acc);
    }
  }
}

/** Scalar f64 reference; same arguments (kv and scratch unused). */
export function attention_head_ref(qkv: usize, kv: usize, out: usize, scratch: usize, probs: usize, bias: usize,
                                   T: i32, D: i32, dh: i32, h: i32, scale: f32, i0: i32, i1: i32): void {
  const ld = 3 * D;
  for (let i = i0; i < i1; i++) {
    let m: f64 = -Infinity;
    for (let j = 0; j < T; j++) m = max(m, score_f64(qkv, bias, i, j, ld, D, dh, h, T, scale));
    let sum: f64 = 0;
    for (let j = 0; j < T; j++) sum += exp_f64(score_f64(qkv, bias, i, j, ld, D, dh, h, T, scale) - m);
    for (let d = 0; d < dh; d++) {
      let acc: f64 = 0;
      for (let j = 0; j < T; j++) {
        const p = exp_f64(score_f64(qkv, bias, i, j, ld, D, dh, h, T, scale) - m) / sum;
        acc += p * <f64>load<f32>(qkv + (<usize>(j * ld + 2 * D + h * dh + d) << 2));
        if (probs && d == 0) store<f32>(probs + (<usize>(i * T + j) << 2), <f32>p);
      }
      store<f32>(out + (<usize>(i * D + h * dh + d) << 2), <f32>acc);
    }
  }
}

/** Query i's score for key j in f64: q·k · scale, plus the bias where there is one. */
function score_f64(qkv: usize, bias: usize, i: i32, j: i32, ld: i32, D: i32, dh: i32, h: i32, T: i32, scale: f32): f64 {
  const s = dot_f64(qkv, i * ld + h * dh, j * ld + D + h * dh, dh) * <f64>scale;
  return bias ? s + <f64>load<f32>(bias + (<usize>(i * T + j) << 2)) : s;
}

function dot_f64(base: usize /* floats */, ia: i32, ib: i32, n: i32): f64 {
  let s: f64 = 0;
  for (let k = 0; k < n; k++) s += <f64>load<f32>(base + (<usize>(ia + k) << 2)) * <f64>load<f32>(base + (<usize>(ib + k) << 2));
  return s;
}

/**
 * Backward of one head h of one image, from the attention map the forward kept:
 * dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P ⊙ (dP − rowsum(dP ⊙ P)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
 * qkv (T, 3D), probs (T, T), dout (T, D) head h at columns h·dh, dqkv (T, 3D) head h's q, k, v
 * columns overwritten, scratch (T) per worker. dbias (T, T), unless 0: += dS, the gradient of a
 * bias added to the scaled scores (BEiT's relative position bias). Vectorised over dh, 4 at a
 * time, scalar tail.
 */
export function attention_bwd(qkv: usize, probs: usize, dout: usize, dqkv: usize, scratch: usize,
                                   T: i32, D: i32, dh: i32, h: i32, scale: f32, dbias: usize): void {
  const ld = <usize>(3 * D) << 2, ldo = <usize>D << 2, dh4 = dh & ~3;
  const q0 = qkv + (<usize>(h * dh) << 2), k0 = q0 + (<usize>D << 2), v0 = k0 + (<usize>D << 2);
  const dq0 = dqkv + (<usize>(h * dh) << 2), dk0 = dq0 + (<usize>D << 2), dv0 = dk0 + (<usize>D << 2);
  const do0 = dout + (<usize>(h * dh) << 2);
  for (let j = 0; j < T; j++) for (let d = 0; d < dh; d++) {
    const o = <usize>j * ld + (<usize>d << 2);
    store<f32>(dk0 + o, 0); store<f32>(dv0 + o, 0);
  }
  for (let i = 0; i < T; i++) {
    const pi = probs + ((<usize>i * T) << 2), doi = do0 + <usize>i * ldo, qi = q0 + <usize>i * ld, dqi = dq0 + <usize>i * ld;
    // dP row and the row sum Σ_j P·dP
    let rs: f32 = 0;
    for (let j = 0; j < T; j++) {
      const vj = v0 + <usize>j * ld;
      let acc = f32x4.splat(0), d = 0;
      for (; d < dh4; d += 4) acc = fmadd(v128.load(doi + (<usize>d << 2)), v128.load(vj + (<usize>d << 2)), acc);
      let dp = hsum(acc);
      for (; d < dh; d++) dp += load<f32>(doi + (<usize>d << 2)) * load<f32>(vj + (<usize>d << 2));
      store<f32>(scratch + (<usize>j << 2), dp);
      rs += load<f32>(pi + (<usize>j << 2)) * dp;
    }
    // dS row → dQ_i, dK_j, and dV_j += P_ij dO_i
    let dq = f32x4.splat(0);
    for (let d = 0; d < dh4; d += 4) v128.store(dqi + (<usize>d << 2), dq);
    for (let d = dh4; d < dh; d++) store<f32>(dqi + (<usize>d << 2), 0);
    for (let j = 0; j < T; j++) {
      const p = load<f32>(pi + (<usize>j << 2));
      const dz = p * (load<f32>(scratch + (<usize>j << 2)) - rs), ds = dz * scale;
      if (dbias) { const o = dbias + ((<usize>(i * T + j)) << 2); store<f32>(o, load<f32>(o) + dz); }
      const kj = k0 + <usize>j * ld, dkj = dk0 + <usize>j * ld, dvj = dv0 + <usize>j * ld;
      const vds = f32x4.splat(ds), vp = f32x4.splat(p);
      let d = 0;
      for (; d < dh4; d += 4) {
        const o = <usize>d << 2;
        v128.store(dqi + o, fmadd(vds, v128.load(kj + o), v128.load(dqi + o)));
        v128.store(dkj + o, fmadd(vds, v128.load(qi + o), v128.load(dkj + o)));
        v128.store(dvj + o, fmadd(vp, v128.load(doi + o), v128.load(dvj + o)));
      }
      for (; d < dh; d++) {
        const o = <usize>d << 2;
        store<f32>(dqi + o, load<f32>(dqi + o) + ds * load<f32>(kj + o));
        store<f32>(dkj + o, load<f32>(dkj + o) + ds * load<f32>(qi + o));
        store<f32>(dvj + o, load<f32>(dvj + o) + p * load<f32>(doi + o));
      }
    }
  }
}

/** Scalar f64 reference; same arguments (scratch unused). */
export function attention_bwd_ref(qkv: usize, probs: usize, dout: usize, dqkv: usize, scratch: usize,
                                  T: i32, D: i32, dh: i32, h: i32, scale: f32, dbias: usize): void {
  const ld = 3 * D;
  if (dbias) for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    const o = at(dbias, i, j, T);
    store<f32>(o, <f32>(<f64>load<f32>(o) + ds_ref(qkv, probs, dout, i, j, T, D, dh, h)));
  }
  for (let j = 0; j < T; j++) for (let d = 0; d < dh; d++) {
    let dv: f64 = 0, dk: f64 = 0;
    for (let i = 0; i < T; i++) {
      const p = <f64>load<f32>(at(probs, i, j, T));
      dv += p * <f64>load<f32>(at(dout, i, h * dh + d, D));
      dk += ds_ref(qkv, probs, dout, i, j, T, D, dh, h) * <f64>scale * <f64>load<f32>(at(qkv, i, h * dh + d, ld));
    }
    store<f32>(at(dqkv, j, 2 * D + h * dh + d, ld), <f32>dv);
    store<f32>(at(dqkv, j, D + h * dh + d, ld), <f32>dk);
  }
  for (let i = 0; i < T; i++) for (let d = 0; d < dh; d++) {
    let dq: f64 = 0;
    for (let j = 0; j < T; j++) dq += ds_ref(qkv, probs, dout, i, j, T, D, dh, h) * <f64>scale * <f64>load<f32>(at(qkv, j, D + h * dh + d, ld));
    store<f32>(at(dqkv, i, h * dh + d, ld), <f32>dq);
  }
}

// @ts-ignore: decorator
@inline function at(base: usize, row: i32, col: i32, stride: i32): usize { return base + (<usize>(row * stride + col) << 2); }

/** dS[i, j] = P_ij (dP_ij − Σ_l P_il dP_il), dP_ij = dO_i · V_j, in f64. */
function ds_ref(qkv: usize, probs: usize, dout: usize, i: i32, j: i32, T: i32, D: i32, dh: i32, h: i32): f64 {
  let rs: f64 = 0, dpj: f64 = 0;
  for (let l = 0; l < T; l++) {
    let dp: f64 = 0;
    for (let d = 0; d < dh; d++) dp += <f64>load<f32>(dout + (<usize>(i * D + h * dh + d) << 2)) * <f64>load<f32>(qkv + (<usize>(l * 3 * D + 2 * D + h * dh + d) << 2));
    rs += <f64>load<f32>(probs + (<usize>(i * T + l) << 2)) * dp;
    if (l == j) dpj = dp;
  }
  return <f64>load<f32>(probs + (<usize>(i * T + j) << 2)) * (dpj - rs);
}

/**
 * Softmax + cross-entropy over B rows of L logits: the loss (mean over rows) is returned and
 * dlogits = (softmax − onehot(label)) / B. logits (B, L), labels (B) i32, dlogits (B, L)
 */
export function softmax_xent(logits: usize, labels: usize, dlogits: usize, B: i32, L: i32): f32 {
  let loss: f64 = 0;
  const invB: f32 = <f32>1.0 / <f32>B;
  for (let b = 0; b < B; b++) {
    const z = logits + ((<usize>b * L) << 2), g = dlogits + ((<usize>b * L) << 2), y = load<i32>(labels + (<usize>b << 2));
    let m: f32 = -Infinity;
    for (let j = 0; j < L; j++) m = max(m, load<f32>(z + (<usize>j << 2)));
    memory.copy(g, z, <usize>L << 2);
    softmax_row(g, L);
    // loss = log Σ e^{z - m} − (z_y − m), in f64 from the logits (not from a rounded probability)
    let s: f64 = 0;
    for (let j = 0; j < L; j++) s += exp_f64(<f64>load<f32>(z + (<usize>j << 2)) - <f64>m);
    loss += log_f64(s) - (<f64>load<f32>(z + (<usize>y << 2)) - <f64>m);
    for (let j = 0; j < L; j++) {
      const o = <usize>j << 2;
      store<f32>(g + o, (load<f32>(g + o) - (j == y ? <f32>1 : <f32>0)) * invB);
    }
  }
  return <f32>(loss / <f64>B);
}

/** Scalar f64 reference; same arguments. */
export function softmax_xent_ref(logits: usize, labels: usize, dlogits: usize, B: i32, L: i32): f32 {
  let loss: f64 = 0;
  for (let b = 0; b < B; b++) {
    const z = logits + ((<usize>b * L) << 2), g = dlogits + ((<usize>b * L) << 2), y = load<i32>(labels + (<usize>b << 2));
    let m: f64 = -Infinity;
    for (let j = 0; j < L; j++) m = max(m, <f64>load<f32>(z + (<usize>j << 2)));
    let s: f64 = 0;
    for (let j = 0; j < L; j++) s += exp_f64(<f64>load<f32>(z + (<usize>j << 2)) - m);
    loss += log_f64(s) - (<f64>load<f32>(z + (<usize>y << 2)) - m);
    for (let j = 0; j < L; j++) {
      const p = exp_f64(<f64>load<f32>(z + (<usize>j << 2)) - m) / s;
      store<f32>(g + (<usize>j << 2), <f32>((p - (j == y ? 1.0 : 0.0)) / <f64>B));
    }
  }
  return <f32>(loss / <f64>B);
}
