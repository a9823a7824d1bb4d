// Inline SIMD helpers shared by the kernels, and the f64 scalar math the reference kernels use.
// Nothing here may allocate or touch static data: the module is instantiated once per worker over
// one shared memory, so `Mathf.exp` (which drags in a lookup-table data segment) is off limits.

// @ts-ignore: decorator
@inline export function fmadd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  else return f32x4.add(f32x4.mul(a, b), c);
}

// @ts-ignore: decorator
@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

// @ts-ignore: decorator
@inline export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

/** Lane i of v for a run-time i (extract_lane needs a constant). */
// @ts-ignore: decorator
@inline export function lane(v: v128, i: i32): f32 {
  if (i == 0) return f32x4.extract_lane(v, 0);
  if (i == 1) return f32x4.extract_lane(v, 1);
  if (i == 2) return f32x4.extract_lane(v, 2);
  return f32x4.extract_lane(v, 3);
}

/**
 * exp(x) for x <= 0 (softmax after max subtraction, erf's exp(-x²)); XNNPACK's rr2_p5 scheme:
 * magic-bias rounding to n = round(x·log2e), two-step ln2 reduction, degree-5 polynomial, and a
 * flush to 0 below -87.34 where the result would be denormal. Max relative error 1.8e-7.
 */
// @ts-ignore: decorator
@inline export function vexp(x: v128): v128 {
  const magic = f32x4.splat(reinterpret<f32>(0x4B40007F));
  let n = f32x4.add(f32x4.mul(x, f32x4.splat(reinterpret<f32>(0x3FB8AA3B))), magic);
  const s = i32x4.shl(n, 23);
  n = f32x4.sub(n, magic);
  let t = f32x4.add(f32x4.mul(n, f32x4.splat(reinterpret<f32>(0xBF317200))), x);
  t = f32x4.add(f32x4.mul(n, f32x4.splat(reinterpret<f32>(0xB5BFBE8E))), t);
  let p = f32x4.add(f32x4.mul(f32x4.splat(reinterpret<f32>(0x3C07CFCE)), t), f32x4.splat(reinterpret<f32>(0x3D2B9D0D)));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(reinterpret<f32>(0x3E2AAD40)));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(reinterpret<f32>(0x3EFFFEE3)));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(reinterpret<f32>(0x3F7FFFFB)));
  t = f32x4.mul(t, s);
  const f = f32x4.add(f32x4.mul(t, p), s);
  return v128.andnot(f, f32x4.lt(x, f32x4.splat(reinterpret<f32>(0xC2AEAC4F))));
}

/**
 * erf(x), Abramowitz & Stegun 7.1.26: 1 - (a1 t + … + a5 t⁵) e^{-x²}, t = 1/(1 + 0.3275911|x|),
 * sign restored. Formula error 1.5e-7; in f32 we measure ≤ 6e-7 absolute (tests/kernels.test.ts).
 */
// @ts-ignore: decorator
@inline export function verf(x: v128): v128 {
  const sign = v128.and(x, i32x4.splat(0x80000000));
  const ax = f32x4.abs(x);
  const one = f32x4.splat(1.0);
  const t = f32x4.div(one, f32x4.add(one, f32x4.mul(ax, f32x4.splat(0.3275911))));
  let y = f32x4.splat(1.061405429);
  y = f32x4.add(f32x4.mul(y, t), f32x4.splat(-1.453152027));
  y = f32x4.add(f32x4.mul(y, t), f32x4.splat(1.421413741));
  y = f32x4.add(f32x4.mul(y, t), f32x4.splat(-0.284496736));
  y = f32x4.add(f32x4.mul(y, t), f32x4.splat(0.254829592));
  y = f32x4.mul(y, t);
  const e = vexp(f32x4.neg(f32x4.mul(ax, ax)));
  return v128.or(f32x4.sub(one, f32x4.mul(y, e)), sign);
}

/** Exact GELU: x/2 · (1 + erf(x/√2)). */
// @ts-ignore: decorator
@inline export function vgelu(x: v128): v128 {
  const e = verf(f32x4.mul(x, f32x4.splat(0.7071067811865476)));
  return f32x4.mul(f32x4.mul(x, f32x4.splat(0.5)), f32x4.add(e, f32x4.splat(1.0)));
}

// ---- f64 scalar math for the reference kernels (independent of the SIMD approximations) ----

/** exp(x) in f64: n = round(x/ln2), Taylor series of e^r for |r| ≤ ln2/2 to r^14, times 2^n. */
export function exp_f64(x: f64): f64 {
  if (x < -745.0) return 0;
  if (x > 709.0) return Infinity;
  const n = nearest(x * 1.4426950408889634);
  const r = (x - n * 0.6931471803691238) - n * 1.9082149292705877e-10;
  let p: f64 = 1.0, term: f64 = 1.0;
  for (let k = 1; k <= 14; k++) { term *= r / <f64>k; p += term; }
  // 2^n split in two factors so n = -1074..1023 never overflows the exponent field
  const h = <i64>n >> 1;
  const s1 = reinterpret<f64>((h + 1023) << 52), s2 = reinterpret<f64>((<i64>n - h + 1023) << 52);
  return p * s1 * s2;
}

/** erf(x) in f64: Maclaurin series below |x| = 3 (≤ 1e-12 after cancellation), asymptotic erfc above. */
export function erf_f64(x: f64): f64 {
  const ax = abs(x);
  let r: f64;
  if (ax < 3.0) {
    let term = ax, sum = ax;
    const x2 = ax * ax;
    for (let n = 1; n < 100; n++) {
      term *= -x2 / <f64>n;
      const t = term / <f64>(2 * n + 1);
      sum += t;
      if (abs(t) < 1e-17 * abs(sum)) break;
    }
    r = sum * 1.1283791670955126;
  } else {
    // erfc(x) ≈ e^{-x²}/(x√π) · (1 - 1/(2x²) + 3/(4x⁴) - 15/(8x⁶) + 105/(16x⁸)); at x = 3 the next term is < 1e-7 of erfc ≈ 2e-5
    const z = 1.0 / (2.0 * ax * ax);
    const series = 1.0 - z * (1.0 - 3.0 * z * (1.0 - 5.0 * z * (1.0 - 7.0 * z * (1.0 - 9.0 * z))));
    r = 1.0 - exp_f64(-ax * ax) / (ax * 1.7724538509055159) * series;
  }
  return x < 0 ? -r : r;
}

export function gelu_f64(x: f64): f64 {
  return 0.5 * x * (1.0 + erf_f64(x * 0.7071067811865476));
}
