// LayerNorm over the last dim D: y = (x - mean) / sqrt(var + eps) · gamma + beta.
// Two passes (mean, then the centred variance) because a one-pass E[x²] - E[x]² loses digits when
// the residual stream drifts away from zero, and the fixtures demand 1e-5 of PyTorch float64.
import { hsum } from './simd';

/** Mean of one row of D floats. */
// @ts-ignore: decorator
@inline function row_mean(px: usize, D: i32): f32 {
  const D4 = D & ~3;
  let vs = f32x4.splat(0), i = 0;
  for (; i < D4; i += 4) vs = f32x4.add(vs, v128.load(px + (<usize>i << 2)));
  let sum = hsum(vs);
  for (; i < D; i++) sum += load<f32>(px + (<usize>i << 2));
  return sum * (<f32>1.0 / <f32>D);
}

/** 1/sqrt(var + eps) of one row, from its mean (the second pass). */
// @ts-ignore: decorator
@inline function row_rstd(px: usize, D: i32, mean: f32, eps: f32): f32 {
  const D4 = D & ~3, vm = f32x4.splat(mean);
  let vq = f32x4.splat(0), i = 0;
  for (; i < D4; i += 4) { const d = f32x4.sub(v128.load(px + (<usize>i << 2)), vm); vq = f32x4.add(vq, f32x4.mul(d, d)); }
  let sq = hsum(vq);
  for (; i < D; i++) { const d = load<f32>(px + (<usize>i << 2)) - mean; sq += d * d; }
  return <f32>1.0 / Mathf.sqrt(sq * (<f32>1.0 / <f32>D) + eps);
}

/**
 * x (rows, ldx), y (rows, ldy), gamma (D), beta (D). ldx lets the final norm read only the cls rows.
 */
export function layernorm(x: usize, ldx: i32, y: usize, ldy: i32, gamma: usize, beta: usize,
                               rows: i32, D: i32, eps: f32): void {
  const D4 = D & ~3;
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * ldx) << 2), py = y + ((<usize>r * ldy) << 2);
    const mean = row_mean(px, D), rstd = row_rstd(px, D, mean, eps);
    const vm = f32x4.splat(mean), vr = f32x4.splat(rstd);
    let i = 0;
    for (; i < D4; i += 4) {
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

/**
 * Backward, recomputing mean and rstd from x (cheaper than caching them):
 * dx += rstd·(g·dy − mean(g·dy) − x̂·mean(g·dy·x̂)), dgamma += Σ dy·x̂, dbeta += Σ dy over the rows.
 * x (rows, ldx), dy (rows, D), dx (rows, ldx) accumulated into, gamma (D), dgamma (D), dbeta (D)
 */
export function layernorm_bwd(x: usize, ldx: i32, dy: usize, dx: usize, gamma: usize, dgamma: usize, dbeta: usize,
                                   rows: i32, D: i32, eps: f32): void {
  const inv: f32 = <f32>1.0 / <f32>D, D4 = D & ~3;
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * ldx) << 2), pdy = dy + ((<usize>r * D) << 2), pdx = dx + ((<usize>r * ldx) << 2);
    const mean = row_mean(px, D), rstd = row_rstd(px, D, mean, eps);
    const vm = f32x4.splat(mean), vr = f32x4.splat(rstd);
    // mean(g·dy) and mean(g·dy·x̂); parameter gradients on the way
    let v1 = f32x4.splat(0), v2 = f32x4.splat(0);
    let i = 0;
    for (; i < D4; i += 4) {
      const o = <usize>i << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), vm), vr), g = v128.load(pdy + o), gy = f32x4.mul(g, v128.load(gamma + o));
      v1 = f32x4.add(v1, gy); v2 = f32x4.add(v2, f32x4.mul(gy, xh));
      v128.store(dgamma + o, f32x4.add(v128.load(dgamma + o), f32x4.mul(g, xh)));
      v128.store(dbeta + o, f32x4.add(v128.load(dbeta + o), g));
    }
    let m1 = hsum(v1), m2 = hsum(v2);
    for (; i < D; i++) {
      const o = <usize>i << 2;
      const xh = (load<f32>(px + o) - mean) * rstd, g = load<f32>(pdy + o), gy = g * load<f32>(gamma + o);
      m1 += gy; m2 += gy * xh;
      store<f32>(dgamma + o, load<f32>(dgamma + o) + g * xh);
      store<f32>(dbeta + o, load<f32>(dbeta + o) + g);
    }
    m1 *= inv; m2 *= inv;
    const vm1 = f32x4.splat(m1), vm2 = f32x4.splat(m2);
    for (i = 0; i < D4; i += 4) {
      const o = <usize>i << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + o), vm), vr), gy = f32x4.mul(v128.load(pdy + o), v128.load(gamma + o));
      const d = f32x4.mul(vr, f32x4.sub(f32x4.sub(gy, vm1), f32x4.mul(xh, vm2)));
      v128.store(pdx + o, f32x4.add(v128.load(pdx + o), d));
    }
    for (; i < D; i++) {
      const o = <usize>i << 2;
      const xh = (load<f32>(px + o) - mean) * rstd, gy = load<f32>(pdy + o) * load<f32>(gamma + o);
      store<f32>(pdx + o, load<f32>(pdx + o) + rstd * (gy - m1 - xh * m2));
    }
  }
}

/** Scalar f64 reference; same arguments. */
export function layernorm_bwd_ref(x: usize, ldx: i32, dy: usize, dx: usize, gamma: usize, dgamma: usize, dbeta: usize,
                                  rows: i32, D: i32, eps: f32): void {
  for (let r = 0; r < rows; r++) {
    const px = x + ((<usize>r * ldx) << 2), pdy = dy + ((<usize>r * D) << 2), pdx = dx + ((<usize>r * ldx) << 2);
    let mean: f64 = 0;
    for (let i = 0; i < D; i++) mean += <f64>load<f32>(px + (<usize>i << 2));
    mean /= <f64>D;
    let v: f64 = 0;
    for (let i = 0; i < D; i++) { const d = <f64>load<f32>(px + (<usize>i << 2)) - mean; v += d * d; }
    const rstd = 1.0 / Math.sqrt(v / <f64>D + <f64>eps);
    let m1: f64 = 0, m2: f64 = 0;
    for (let i = 0; i < D; i++) {
      const o = <usize>i << 2, xh = (<f64>load<f32>(px + o) - mean) * rstd, g = <f64>load<f32>(pdy + o), gy = g * <f64>load<f32>(gamma + o);
      m1 += gy; m2 += gy * xh;
      store<f32>(dgamma + o, <f32>(<f64>load<f32>(dgamma + o) + g * xh));
      store<f32>(dbeta + o, <f32>(<f64>load<f32>(dbeta + o) + g));
    }
    m1 /= <f64>D; m2 /= <f64>D;
    for (let i = 0; i < D; i++) {
      const o = <usize>i << 2, xh = (<f64>load<f32>(px + o) - mean) * rstd, gy = <f64>load<f32>(pdy + o) * <f64>load<f32>(gamma + o);
      store<f32>(pdx + o, <f32>(<f64>load<f32>(pdx + o) + rstd * (gy - m1 - xh * m2)));
    }
  }
}
