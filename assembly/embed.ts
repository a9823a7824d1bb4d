// Patch embedding, split as im2col + GEMM: patchify lays each p×p patch out as one row in the
// Conv2d weight's (c, ky, kx) order, the GEMM projects the rows to D, and embed_tokens prepends the
// cls token and adds the position embeddings, in HF's order: cat(cls, patches) + pos.
// B = images, C = channels, H×W = image, p = patch, Np = (H/p)(W/p), T = Np + 1, K = C·p·p.

/**
 * img     (B, C, H, W)
 * patches (B, Np, K)
 */
export function patchify(img: usize, patches: usize, B: i32, C: i32, H: i32, W: i32, p: i32): void {
  const gw = W / p, gh = H / p, p4 = p & ~3;
  let dst = patches;
  for (let b = 0; b < B; b++) {
    for (let py = 0; py < gh; py++) {
      for (let px = 0; px < gw; px++) {
        for (let c = 0; c < C; c++) {
          for (let ky = 0; ky < p; ky++) {
            const src = img + ((((<usize>b * C + c) * H + py * p + ky) * W + px * p) << 2);
            let kx = 0;
            for (; kx < p4; kx += 4) v128.store(dst + (<usize>kx << 2), v128.load(src + (<usize>kx << 2)));
            for (; kx < p; kx++) store<f32>(dst + (<usize>kx << 2), load<f32>(src + (<usize>kx << 2)));
            dst += <usize>p << 2;
          }
        }
      }
    }
  }
}

/** Scalar reference; same arguments. */
export function patchify_ref(img: usize, patches: usize, B: i32, C: i32, H: i32, W: i32, p: i32): void {
  const gw = W / p, gh = H / p, K = C * p * p;
  for (let b = 0; b < B; b++) for (let n = 0; n < gh * gw; n++) for (let k = 0; k < K; k++) {
    const c = k / (p * p), ky = (k / p) % p, kx = k % p;
    const y = (n / gw) * p + ky, x = (n % gw) * p + kx;
    store<f32>(patches + ((<usize>(b * gh * gw + n) * K + k) << 2), load<f32>(img + ((((<usize>b * C + c) * H + y) * W + x) << 2)));
  }
}

/**
 * x   (B, T, D)   out: x[b,0] = cls + pos[0], x[b,t] = pe[b,t-1] + pos[t]
 * pe  (B, T-1, D) projected patches
 * cls (D), pos (T, D)
 */
export function embed_tokens(pe: usize, cls: usize, pos: usize, x: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const src = t == 0 ? cls : pe + ((<usize>(b * (T - 1) + t - 1) * D) << 2);
      const pp = pos + ((<usize>t * D) << 2), px = x + ((<usize>(b * T + t) * D) << 2);
      let i = 0;
      for (; i < D4; i += 4) { const o = <usize>i << 2; v128.store(px + o, f32x4.add(v128.load(src + o), v128.load(pp + o))); }
      for (; i < D; i++) { const o = <usize>i << 2; store<f32>(px + o, load<f32>(src + o) + load<f32>(pp + o)); }
    }
  }
}

/** Scalar reference; same arguments. */
export function embed_tokens_ref(pe: usize, cls: usize, pos: usize, x: usize, B: i32, T: i32, D: i32): void {
  for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) {
    const v = t == 0 ? load<f32>(cls + (<usize>i << 2)) : load<f32>(pe + (<usize>((b * (T - 1) + t - 1) * D + i) << 2));
    store<f32>(x + (<usize>((b * T + t) * D + i) << 2), v + load<f32>(pos + (<usize>(t * D + i) << 2)));
  }
}

/**
 * Backward of embed_tokens: dpe gets the patch rows of dx; dcls and dpos accumulate over the batch.
 * dx (B, T, D), dpe (B, T-1, D), dcls (D) +=, dpos (T, D) +=
 */
export function embed_tokens_bwd(dx: usize, dpe: usize, dcls: usize, dpos: usize, B: i32, T: i32, D: i32): void {
  const D4 = D & ~3;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const src = dx + ((<usize>(b * T + t) * D) << 2), pp = dpos + ((<usize>t * D) << 2);
      if (t == 0) accumulate(dcls, src, D, D4);
      else memory.copy(dpe + ((<usize>(b * (T - 1) + t - 1) * D) << 2), src, <usize>D << 2);
      accumulate(pp, src, D, D4);
    }
  }
}

// @ts-ignore: decorator
@inline function accumulate(dst: usize, src: usize, D: i32, D4: i32): void {
  let i = 0;
  for (; i < D4; i += 4) { const o = <usize>i << 2; v128.store(dst + o, f32x4.add(v128.load(dst + o), v128.load(src + o))); }
  for (; i < D; i++) { const o = <usize>i << 2; store<f32>(dst + o, load<f32>(dst + o) + load<f32>(src + o)); }
}

/** Scalar f64 reference; same arguments. */
export function embed_tokens_bwd_ref(dx: usize, dpe: usize, dcls: usize, dpos: usize, B: i32, T: i32, D: i32): void {
  for (let t = 0; t < T; t++) for (let i = 0; i < D; i++) {
    let s: f64 = 0;
    for (let b = 0; b < B; b++) {
      const v = load<f32>(dx + (<usize>((b * T + t) * D + i) << 2));
      s += <f64>v;
      if (t > 0) store<f32>(dpe + (<usize>((b * (T - 1) + t - 1) * D + i) << 2), v);
    }
    const pp = dpos + (<usize>(t * D + i) << 2);
    store<f32>(pp, <f32>(<f64>load<f32>(pp) + s));
    if (t == 0) { const pc = dcls + (<usize>i << 2); store<f32>(pc, <f32>(<f64>load<f32>(pc) + s)); }
  }
}
