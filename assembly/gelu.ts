// Exact (erf) GELU, elementwise. The model fuses it into the MLP up-projection's GEMM epilogue;
// the standalone kernel exists for tests, benchmarks and the future backward pass.
import { lane, vgelu, gelu_f64 } from './simd';

/** x (n), y (n); in place allowed. */
export function gelu_simd(x: usize, y: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) { const o = <usize>i << 2; v128.store(y + o, vgelu(v128.load(x + o))); }
  // Tail through the same vector code so every element gets bit-identical math.
  for (; i < n; i++) { const o = <usize>i << 2; store<f32>(y + o, lane(vgelu(f32x4.splat(load<f32>(x + o))), 0)); }
}

/** Scalar f64 reference; same arguments. */
export function gelu_ref(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) { const o = <usize>i << 2; store<f32>(y + o, <f32>gelu_f64(<f64>load<f32>(x + o))); }
}
