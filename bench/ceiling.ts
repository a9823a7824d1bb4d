// The machine's wasm SIMD ceiling: 12 independent f32x4 multiply-add chains (enough to cover the
// latency of both FP pipes), nothing loaded or stored. Built twice: mul+add, and relaxed FMA.
// GFLOP/s = iters · 12 chains · 4 lanes · 2 flops / seconds.
import { dot4 } from '../assembly/gemm_i8';

// @ts-expect-error: decorator
@inline function madd(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  else return f32x4.add(f32x4.mul(a, b), c);
}

export function peak(iters: i32, x: f32): f32 {
  const b = f32x4.splat(0.9999), c = f32x4.splat(0.0001);
  let a0 = f32x4.splat(x), a1 = f32x4.splat(x + 1), a2 = f32x4.splat(x + 2), a3 = f32x4.splat(x + 3);
  let a4 = f32x4.splat(x + 4), a5 = f32x4.splat(x + 5), a6 = f32x4.splat(x + 6), a7 = f32x4.splat(x + 7);
  let a8 = f32x4.splat(x + 8), a9 = f32x4.splat(x + 9), a10 = f32x4.splat(x + 10), a11 = f32x4.splat(x + 11);
  for (let i = 0; i < iters; i++) {
    a0 = madd(a0, b, c); a1 = madd(a1, b, c); a2 = madd(a2, b, c); a3 = madd(a3, b, c);
    a4 = madd(a4, b, c); a5 = madd(a5, b, c); a6 = madd(a6, b, c); a7 = madd(a7, b, c);
    a8 = madd(a8, b, c); a9 = madd(a9, b, c); a10 = madd(a10, b, c); a11 = madd(a11, b, c);
  }
  const s = f32x4.add(f32x4.add(f32x4.add(a0, a1), f32x4.add(a2, a3)), f32x4.add(f32x4.add(a4, a5), f32x4.add(a6, a7)));
  return f32x4.extract_lane(f32x4.add(s, f32x4.add(f32x4.add(a8, a9), f32x4.add(a10, a11))), 0);
}

// The int8 ceiling: 12 independent i32x4 chains, each step the int8 GEMM's own dot4 (16
// multiply-adds of i8 × u7 into 4 i32 lanes), nothing loaded or stored. Each chain's value is also
// its next weight operand: with fixed operands the products are loop-invariant, and binaryen
// computes them once (a ceiling of additions).
// GOP/s = iters · 12 chains · 16 multiply-adds · 2 / seconds.
export function peak_i8(iters: i32, x: i32): i32 {
  const ones = i16x8.splat(1), a = i8x16.splat(<i8>(x & 127));
  let c0 = i32x4.splat(x), c1 = i32x4.splat(x + 1), c2 = i32x4.splat(x + 2), c3 = i32x4.splat(x + 3);
  let c4 = i32x4.splat(x + 4), c5 = i32x4.splat(x + 5), c6 = i32x4.splat(x + 6), c7 = i32x4.splat(x + 7);
  let c8 = i32x4.splat(x + 8), c9 = i32x4.splat(x + 9), c10 = i32x4.splat(x + 10), c11 = i32x4.splat(x + 11);
  for (let i = 0; i < iters; i++) {
    c0 = dot4(c0, a, c0, ones); c1 = dot4(c1, a, c1, ones); c2 = dot4(c2, a, c2, ones); c3 = dot4(c3, a, c3, ones);
    c4 = dot4(c4, a, c4, ones); c5 = dot4(c5, a, c5, ones); c6 = dot4(c6, a, c6, ones); c7 = dot4(c7, a, c7, ones);
    c8 = dot4(c8, a, c8, ones); c9 = dot4(c9, a, c9, ones); c10 = dot4(c10, a, c10, ones); c11 = dot4(c11, a, c11, ones);
  }
  const s = i32x4.add(i32x4.add(i32x4.add(c0, c1), i32x4.add(c2, c3)), i32x4.add(i32x4.add(c4, c5), i32x4.add(c6, c7)));
  return i32x4.extract_lane(i32x4.add(s, i32x4.add(i32x4.add(c8, c9), i32x4.add(c10, c11))), 0);
}
