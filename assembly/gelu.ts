// Exact (erf) GELU, elementwise: x/2 · (1 + erf(x/√2)), with erf from Abramowitz & Stegun 7.1.26:
// 1 - (a1 t + … + a5 t⁵) e^{-x²}, t = 1/(1 + p|x|), sign restored. Formula error 1.5e-7; in f32 we
// measure ≤ 3.5e-7 (tests/kernels.test.ts). The MLP up-projection's GEMM calls gelu on each
// block of rows it finishes, while they are still in cache.
import { CST, lane, vexp, gelu_f64, erf_f64, exp_f64 } from './simd';

/**
 * GELU of 4 lanes. Every constant is loaded from CST at each call: a GEMM's tile store calls this on
 * its accumulators (EPI_GELU) while they are still in registers, between tiles that need every
 * register, so nothing can stay loaded across calls; the loads hit L1.
 */
export function gelu4(v: v128): v128 {
  const z = f32x4.mul(v, v128.load32_splat(CST, 72));
  const az = f32x4.abs(z), one = v128.load32_splat(CST, 64);
  const t = f32x4.div(one, f32x4.add(one, f32x4.mul(az, v128.load32_splat(CST, 40))));
  let q = f32x4.add(f32x4.mul(v128.load32_splat(CST, 44), t), v128.load32_splat(CST, 48));
  q = f32x4.add(f32x4.mul(q, t), v128.load32_splat(CST, 52));
  q = f32x4.add(f32x4.mul(q, t), v128.load32_splat(CST, 56));
  q = f32x4.add(f32x4.mul(q, t), v128.load32_splat(CST, 60));
  q = f32x4.mul(q, t);
  const e = vexp(f32x4.neg(f32x4.mul(az, az)), v128.load32_splat(CST, 0), v128.load32_splat(CST, 4),
    v128.load32_splat(CST, 8), v128.load32_splat(CST, 12), v128.load32_splat(CST, 16), v128.load32_splat(CST, 20),
    v128.load32_splat(CST, 24), v128.load32_splat(CST, 28), v128.load32_splat(CST, 32), v128.load32_splat(CST, 36));
  const erf = v128.or(f32x4.sub(one, f32x4.mul(q, e)), v128.and(z, i32x4.splat(0x80000000)));
  return f32x4.mul(f32x4.mul(v, v128.load32_splat(CST, 68)), f32x4.add(erf, one));
}

/** x (n), y (n); in place allowed. */
export function gelu(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i < n; i += 4) {
    const o = <usize>i << 2;
    // the tail runs the same vector code on one lane, so every element gets bit-identical math
    if (i + 4 <= n) v128.store(y + o, gelu4(v128.load(x + o)));
    else { store<f32>(y + o, lane(gelu4(f32x4.splat(load<f32>(x + o))), 0)); i -= 3; }
  }
}

/** Scalar f64 reference; same arguments. */
export function gelu_ref(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) { const o = <usize>i << 2; store<f32>(y + o, <f32>gelu_f64(<f64>load<f32>(x + o))); }
}

/**
 * Backward: dx (n) = dy (n) · GELU'(x (n)), GELU'(x) = Φ(x) + x·φ(x), from the pre-activation x,
 * with the forward's erf and exp (φ(x) = e^{-x²/2}/√(2π) is the exp the erf already computes).
 */
export function gelu_bwd(x: usize, dy: usize, dx: usize, n: i32): void {
  const log2e = v128.load32_splat(CST, 0), magic = v128.load32_splat(CST, 4), nhi = v128.load32_splat(CST, 8), nlo = v128.load32_splat(CST, 12);
  const c5 = v128.load32_splat(CST, 16), c4 = v128.load32_splat(CST, 20), c3 = v128.load32_splat(CST, 24), c2 = v128.load32_splat(CST, 28);
  const c1 = v128.load32_splat(CST, 32), cut = v128.load32_splat(CST, 36);
  const ep = v128.load32_splat(CST, 40), a5 = v128.load32_splat(CST, 44), a4 = v128.load32_splat(CST, 48), a3 = v128.load32_splat(CST, 52);
  const a2 = v128.load32_splat(CST, 56), a1 = v128.load32_splat(CST, 60), one = v128.load32_splat(CST, 64), half = v128.load32_splat(CST, 68);
  const rsqrt2 = v128.load32_splat(CST, 72), signbit = i32x4.splat(0x80000000), rsqrt2pi = f32x4.splat(0.3989422804014327);
  let i = 0;
  for (; i < n; i += 4) {
    const o = <usize>i << 2;
    const tail = i + 4 > n;
    const v = tail ? f32x4.splat(load<f32>(x + o)) : v128.load(x + o);
    const g = tail ? f32x4.splat(load<f32>(dy + o)) : v128.load(dy + o);
    const z = f32x4.mul(v, rsqrt2), az = f32x4.abs(z);
    const t = f32x4.div(one, f32x4.add(one, f32x4.mul(az, ep)));
    let q = f32x4.add(f32x4.mul(a5, t), a4);
    q = f32x4.add(f32x4.mul(q, t), a3);
    q = f32x4.add(f32x4.mul(q, t), a2);
    q = f32x4.add(f32x4.mul(q, t), a1);
    q = f32x4.mul(q, t);
    const e = vexp(f32x4.neg(f32x4.mul(az, az)), log2e, magic, nhi, nlo, c5, c4, c3, c2, c1, cut); // e^{-x²/2}
    const erf = v128.or(f32x4.sub(one, f32x4.mul(q, e)), v128.and(z, signbit));
    const d = f32x4.add(f32x4.mul(half, f32x4.add(one, erf)), f32x4.mul(v, f32x4.mul(e, rsqrt2pi)));
    const r = f32x4.mul(g, d);
    if (!tail) v128.store(dx + o, r);
    else { store<f32>(dx + o, lane(r, 0)); i -= 3; }
  }
}

/** Scalar f64 reference; same arguments. */
export function gelu_bwd_ref(x: usize, dy: usize, dx: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2, v = <f64>load<f32>(x + o);
    const d = 0.5 * (1.0 + erf_f64(v * 0.7071067811865476)) + v * exp_f64(-0.5 * v * v) * 0.3989422804014327;
    store<f32>(dx + o, <f32>(<f64>load<f32>(dy + o) * d));
  }
}
