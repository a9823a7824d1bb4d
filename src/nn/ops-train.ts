/**
 * What training computes beyond the forward's ops, each forward beside its backward: LayerScale kept
 * apart from its linear layer (inference folds γ into W; training learns γ and W apart), the
 * activations' derivatives, the prefix tokens' and positions' gradients for any prefix, the
 * backward of each pooling, and attention's backward (with a bias's gradient for BEiT). They run in one worker over its own slice of the batch (training is
 * data parallel), in JS: each is a few passes over (B·T, D) or (B·T, M) beside the GEMMs' K times more.
 * Pointers are byte addresses in the wasm memory; B images, T tokens, D hidden, R rows.
 */
import type { Arch } from './arch.js';
import { TokenOps } from './ops-tokens.js';

/** [a, c] of the activations that are a sigmoid gate x·σ(a·(x + c·x³)) (assembly/activation.ts). */
type Gate = readonly [number, number];

export class TrainOps extends TokenOps {
  /** xout (R, D) = xin (R, D) + γ (D) ⊙ x (R, D): a residual branch through LayerScale. */
  scaleResidual(x: number, g: number, xin: number, xout: number, R: number, D: number): void {
    this.elementwise(R * D, (i0, i1) => {
      const a = this.f32(x, R * D),
        r = this.f32(xin, R * D),
        o = this.f32(xout, R * D),
        gamma = this.f32(g, D);
      for (let i = i0; i < i1; i++) o[i] = r[i] + gamma[i % D] * a[i];
    });
  }

  /**
   * Backward of {@link scaleResidual} (xin's gradient is dxout itself, left where it is): dx (R, D)
   * = γ ⊙ dxout; dγ (D) += Σ over rows of dxout ⊙ x.
   */
  scaleResidualBackward(dout: number, x: number, g: number, dg: number, dx: number, R: number, D: number): void {
    const d = this.f32(dout, R * D),
      a = this.f32(x, R * D),
      gamma = this.f32(g, D),
      out = this.f32(dx, R * D),
      acc = new Float64Array(D);
    for (let r = 0; r < R; r++)
      for (let j = 0, o = r * D; j < D; j++) {
        out[o + j] = gamma[j] * d[o + j];
        acc[j] += d[o + j] * a[o + j];
      }
    const grad = this.f32(dg, D);
    for (let j = 0; j < D; j++) grad[j] += acc[j];
  }

  /**
   * Backward of the MLP's activation: dx (n) = act′(u) · dy, u the pre-activation. The exact GELU
   * is the kernel's; ReLU passes dy where u > 0; a sigmoid gate y = x·s, s = σ(a(x + cx³)), has
   * y′ = s + x·s(1 − s)·a(1 + 3cx²), in float64 rounded once.
   */
  activationBackward(act: Arch['activation'], gate: Gate | null, u: number, dy: number, dx: number, n: number): void {
    if (act === 'gelu') {
      this.k.gelu_bwd(u, dy, dx, n);
      return;
    }
    const x = this.f32(u, n),
      d = this.f32(dy, n),
      out = this.f32(dx, n);
    if (act === 'relu') {
      for (let i = 0; i < n; i++) out[i] = x[i] > 0 ? d[i] : 0;
      return;
    }
    if (!gate) throw new Error(`vit-wasm: internal: the ${act} activation without its gate`);
    const [a, c] = gate;
    for (let i = 0; i < n; i++) {
      const v = x[i],
        s = 1 / (1 + Math.exp(-a * (v + c * v * v * v)));
      out[i] = d[i] * (s + v * s * (1 - s) * a * (1 + 3 * c * v * v));
    }
  }

  /**
   * Backward of {@link TokenOps.embedTokens} for any prefix (none, cls and distillation token):
   * dpe (B, T−P, D) the patch rows of dx (B, T, D); each prefix token's gradient (D) += its rows'
   * sum over the images; dpos (T, D) += every row's sum (every token has a position).
   */
  prefixTokensBackward(
    dx: number,
    dpe: number,
    dprefix: readonly number[],
    dpos: number,
    B: number,
    T: number,
    D: number,
  ): void {
    const P = dprefix.length,
      x = this.f32(dx, B * T * D),
      pe = this.f32(dpe, B * (T - P) * D),
      pos = new Float64Array(T * D),
      pre = dprefix.map(() => new Float64Array(D));
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const row = x.subarray((b * T + t) * D, (b * T + t + 1) * D);
        for (let j = 0; j < D; j++) pos[t * D + j] += row[j];
        if (t < P) for (let j = 0; j < D; j++) pre[t][j] += row[j];
        else pe.set(row, (b * (T - P) + t - P) * D);
      }
    const p = this.f32(dpos, T * D);
    for (let i = 0; i < T * D; i++) p[i] += pos[i];
    pre.forEach((acc, t) => {
      const g = this.f32(dprefix[t], D);
      for (let j = 0; j < D; j++) g[j] += acc[j];
    });
  }

  /**
   * Backward of the mean of tokens P … T−1 (TokenOps.meanTokens), and with `cls` of the cls token
   * beside it (clsMeanTokens): dx (B, T, D) = dout/(T − P) on the patch rows, dout's first half on
   * row 0 with `cls`, zero elsewhere. dout is (B, D), or (B, 2D) with `cls`.
   */
  meanTokensBackward(dout: number, dx: number, B: number, T: number, P: number, D: number, cls: boolean): void {
    const w = cls ? 2 * D : D,
      d = this.f32(dout, B * w),
      x = this.f32(dx, B * T * D),
      n = T - P;
    x.fill(0);
    for (let b = 0; b < B; b++) {
      const mean = d.subarray(b * w + (cls ? D : 0), b * w + w);
      if (cls) x.set(d.subarray(b * w, b * w + D), b * T * D);
      for (let t = P; t < T; t++) for (let j = 0; j < D; j++) x[(b * T + t) * D + j] = mean[j] / n;
    }
  }

  /**
   * Backward of Exec.attention (src/nn/ops.ts), from the kept maps probs (B, H, T, T): dqkv (B·T, 3D) from dout
   * (B·T, D); with `dbias` (H, T, T), its bias's gradient summed over the images into it.
   */
  attentionBackward(
    qkv: number,
    probs: number,
    dout: number,
    dqkv: number,
    B: number,
    T: number,
    D: number,
    H: number,
    dbias?: number,
  ): void {
    const dh = D / H,
      scale = 1 / Math.sqrt(dh);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < H; h++) {
        this.k.attention_bwd(
          qkv + b * T * 3 * D * 4,
          probs + (b * H + h) * T * T * 4,
          dout + b * T * D * 4,
          dqkv + b * T * 3 * D * 4,
          this.scratch,
          T,
          D,
          dh,
          h,
          scale,
          dbias === undefined ? 0 : dbias + h * T * T * 4,
        );
      }
  }
}
