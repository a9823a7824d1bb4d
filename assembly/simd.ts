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
 * Constants of the vector exp and erf, written by JS (src/runtime/kernels.ts, instantiateKernels)
 * into the reserved low memory. Kernels load them into locals before their loops: V8
 * re-materialises a v128.const on every loop iteration, which made exp 1.6x slower when measured,
 * and the module may not carry a data segment.
 */
export const CST: usize = 61440;
// f32 slots: 0 log2e, 1 magic bias, 2 -ln2_hi, 3 -ln2_lo, 4..8 exp poly c5..c1, 9 denormal cutoff,
//            10 erf p, 11..15 erf a5..a1, 16 one, 17 half, 18 1/sqrt2

/**
 * exp(x) for x <= 0 (softmax after max subtraction, erf's exp(-x²)); XNNPACK's rr2_p5 scheme:
 * magic-bias rounding to n = round(x·log2e), two-step ln2 reduction, degree-5 polynomial, and a
 * flush to 0 below -87.34 where the result would be denormal. Max relative error 1.8e-7.
 */
// @ts-ignore: decorator
@inline export function vexp(x: v128, log2e: v128, magic: v128, nhi: v128, nlo: v128,
                             c5: v128, c4: v128, c3: v128, c2: v128, c1: v128, cut: v128): v128 {
  let n = f32x4.add(f32x4.mul(x, log2e), magic);
  const s = i32x4.shl(n, 23);
  n = f32x4.sub(n, magic);
  let t = f32x4.add(f32x4.mul(n, nhi), x);
  t = f32x4.add(f32x4.mul(n, nlo), t);
  let p = f32x4.add(f32x4.mul(c5, t), c4);
  p = f32x4.add(f32x4.mul(p, t), c3);
  p = f32x4.add(f32x4.mul(p, t), c2);
  p = f32x4.add(f32x4.mul(p, t), c1);
  t = f32x4.mul(t, s);
  return v128.andnot(f32x4.add(f32x4.mul(t, p), s), f32x4.lt(x, cut));
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

/** ln(x) in f64 for x > 0: x = m·2^e with m in [√½, √2), ln m = 2·atanh((m−1)/(m+1)) by its series. */
export function log_f64(x: f64): f64 {
  if (!(x > 0)) return x == 0 ? -Infinity : NaN;
  let bits = reinterpret<i64>(x);
  let e = <i32>((bits >> 52) & 0x7ff) - 1023;
  let m = reinterpret<f64>((bits & 0x000fffffffffffff) | 0x3ff0000000000000);
  if (e == -1023) { const l = log_f64(x * 4503599627370496.0); return l - 36.04365338911715; } // subnormal: × 2^52
  if (m > 1.4142135623730951) { m *= 0.5; e++; }
  const s = (m - 1) / (m + 1), s2 = s * s;
  let term = s, sum: f64 = 0;
  for (let k = 1; k < 40; k += 2) { sum += term / <f64>k; term *= s2; }
  return 2 * sum + <f64>e * 0.6931471805599453;
}
