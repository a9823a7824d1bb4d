// The MLP activations besides the exact GELU (assembly/gelu.ts), elementwise. All but ReLU are one
// sigmoid gate, x·σ(a·(x + c·x³)):
//   quick_gelu (CLIP)                                    a = 1.702,     c = 0
//   tanh GELU (gelu_new, gelu_pytorch_tanh: SigLIP)      a = 2·√(2/π),  c = 0.044715
//     (½x(1 + tanh u) = x·σ(2u), so tanh's form and the gate's are one function)
//   SiLU / swish                                         a = 1,         c = 0
// σ from e = exp(−|z|) ∈ (0, 1] (never overflows): σ(z) = 1/(1 + e) for z ≥ 0, e/(1 + e) below.
// exp is simd.ts's (1.8e-7 relative); we measure ≤ 3e-7 relative against the f64 reference.
import { CST, lane, vexp, exp_f64 } from './simd';

/** y (n) = x·σ(a·(x + c·x³)) for x (n); in place allowed. */
export function act_gate(x: usize, y: usize, n: i32, a: f32, c: f32): void {
  // every constant in a local, loaded once (see CST)
  const log2e = v128.load32_splat(CST, 0), magic = v128.load32_splat(CST, 4), nhi = v128.load32_splat(CST, 8), nlo = v128.load32_splat(CST, 12);
  const c5 = v128.load32_splat(CST, 16), c4 = v128.load32_splat(CST, 20), c3 = v128.load32_splat(CST, 24), c2 = v128.load32_splat(CST, 28);
  const c1 = v128.load32_splat(CST, 32), cut = v128.load32_splat(CST, 36), one = v128.load32_splat(CST, 64);
  const av = f32x4.splat(a), cv = f32x4.splat(c), zero = f32x4.splat(0);
  // without the cubic term skip it: 0·x³ is NaN once x³ overflows (|x| > 7e12)
  const cubic = c != 0;
  let i = 0;
  for (; i < n; i += 4) {
    const o = <usize>i << 2;
    // the tail runs the same vector code on one lane, so every element gets bit-identical math
    const v = i + 4 <= n ? v128.load(x + o) : f32x4.splat(load<f32>(x + o));
    const z = f32x4.mul(av, cubic ? f32x4.add(v, f32x4.mul(cv, f32x4.mul(v, f32x4.mul(v, v)))) : v);
    const e = vexp(f32x4.neg(f32x4.abs(z)), log2e, magic, nhi, nlo, c5, c4, c3, c2, c1, cut);
    const r = f32x4.div(one, f32x4.add(one, e));
    const g = f32x4.mul(v, v128.bitselect(r, f32x4.mul(e, r), f32x4.ge(z, zero)));
    if (i + 4 <= n) v128.store(y + o, g);
    else { store<f32>(y + o, lane(g, 0)); i -= 3; }
  }
}

/** Scalar f64 reference; same arguments. */
export function act_gate_ref(x: usize, y: usize, n: i32, a: f32, c: f32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2, v = <f64>load<f32>(x + o);
    const z = <f64>a * (c != 0 ? v + <f64>c * v * v * v : v);
    store<f32>(y + o, <f32>(v / (1.0 + exp_f64(-z))));
  }
}

/** y (n) = max(x, 0) for x (n); in place allowed. NaN stays NaN, as torch's relu. */
export function act_relu(x: usize, y: usize, n: i32): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) { const o = <usize>i << 2; v128.store(y + o, f32x4.max(v128.load(x + o), zero)); }
  for (; i < n; i++) { const o = <usize>i << 2; const v = load<f32>(x + o); store<f32>(y + o, v > 0 || v != v ? v : 0); }
}

/** Scalar reference; same arguments. */
export function act_relu_ref(x: usize, y: usize, n: i32): void {
  for (let i = 0; i < n; i++) { const o = <usize>i << 2; const v = load<f32>(x + o); store<f32>(y + o, v > 0 || v != v ? v : 0); }
}

/**
 * A gated linear unit, y (rows, M) = gate(x[:, :M]) ⊙ x[:, M:] for x (rows, 2M), the gate act_gate's
 * x·σ(a·(x + c·x³)): SwiGLU (DINOv2-giant) is a = 1, c = 0. The gate is rounded to f32, then the product.
 */
export function act_glu(x: usize, y: usize, rows: i32, M: i32, a: f32, c: f32): void {
  const m4 = <usize>M << 2;
  for (let r = 0; r < rows; r++) {
    const xr = x + <usize>r * (m4 << 1), yr = y + <usize>r * m4;
    act_gate(xr, yr, M, a, c);
    let j = 0;
    for (; j + 4 <= M; j += 4) { const o = <usize>j << 2; v128.store(yr + o, f32x4.mul(v128.load(yr + o), v128.load(xr + m4 + o))); }
    for (; j < M; j++) { const o = <usize>j << 2; store<f32>(yr + o, load<f32>(yr + o) * load<f32>(xr + m4 + o)); }
  }
}

/** Scalar f64 reference; same arguments. */
export function act_glu_ref(x: usize, y: usize, rows: i32, M: i32, a: f32, c: f32): void {
  const m4 = <usize>M << 2;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < M; j++) {
      const o = <usize>r * (m4 << 1) + (<usize>j << 2), v = <f64>load<f32>(x + o);
      const z = <f64>a * (c != 0 ? v + <f64>c * v * v * v : v);
      store<f32>(y + <usize>r * m4 + (<usize>j << 2), <f32>(v / (1.0 + exp_f64(-z)) * <f64>load<f32>(x + o + m4)));
    }
}
