// LayerNorm over the last dim D: y = (x - mean) / sqrt(var + eps) · gamma + beta.
// Two passes (mean, then the centred variance) because a one-pass E[x²] - E[x]² loses digits when
// the residual stream drifts away from zero, and the fixtures demand 1e-5 of PyTorch float64.
import { hsum } from './simd';

/**
 * x (rows, ldx), y (rows, ldy), gamma (D), beta (D). ldx lets the final norm read only the cls rows.
 */
export function layernorm_simd(x: usize, ldx: i32, y: usize, ldy: i32, gamma: usize, beta: usize,
                               rows: i32, D: i32, eps: f32): void {
  const inv: f32 = <f32>1.0 / <f32>D;
  const D4 = D & ~3;
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * ldx) << 2), py = y + ((<usize>r * ldy) << 2);
    let vs = f32x4.splat(0);
    let i = 0;
    for (; i < D4; i += 4) vs = f32x4.add(vs, v128.load(px + (<usize>i << 2)));
    let sum = hsum(vs);
    for (; i < D; i++) sum += load<f32>(px + (<usize>i << 2));
    const mean = sum * inv;
    const vm = f32x4.splat(mean);
    let vq = f32x4.splat(0);
    for (i = 0; i < D4; i += 4) { const d = f32x4.sub(v128.load(px + (<usize>i << 2)), vm); vq = f32x4.add(vq, f32x4.mul(d, d)); }
    let sq = hsum(vq);
    for (; i < D; i++) { const d = load<f32>(px + (<usize>i << 2)) - mean; sq += d * d; }
    const rstd: f32 = <f32>1.0 / Mathf.sqrt(sq * inv + eps);
    const vr = f32x4.splat(rstd);
    for (i = 0; i < D4; i += 4) {
      const o = <usize>i << 2;
      const h = f32x4.mul(f32x4.sub(v128.load(px + o), vm), vr);
      v128.store(py + o, f32x4.add(f32x4.mul(h, v128.load(gamma + o)), v128.load(beta + o)));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      store<f32>(py + o, (load<f32>(px + o) - mean) * rstd * load<f32>(gamma + o) + load<f32>(beta + o));
    }
  }
}

/** Scalar f64 reference; same arguments. */
export function layernorm_ref(x: usize, ldx: i32, y: usize, ldy: i32, gamma: usize, beta: usize,
                              rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * ldx) << 2), py = y + ((<usize>r * ldy) << 2);
    let mean: f64 = 0;
    for (let i = 0; i < D; i++) mean += <f64>load<f32>(px + (<usize>i << 2));
    mean /= <f64>D;
    let v: f64 = 0;
    for (let i = 0; i < D; i++) { const d = <f64>load<f32>(px + (<usize>i << 2)) - mean; v += d * d; }
    const rstd = 1.0 / Math.sqrt(v / <f64>D + <f64>eps);
    for (let i = 0; i < D; i++) {
      const o = <usize>i << 2;
      store<f32>(py + o, <f32>((<f64>load<f32>(px + o) - mean) * rstd * <f64>load<f32>(gamma + o) + <f64>load<f32>(beta + o)));
    }
  }
}
