/**
 * The ops on tokens rather than on features, each forward beside its backward: images to patches,
 * the prefix tokens and position embeddings, DeiT's averaged heads, and the pooling (the mean of
 * the patch tokens, DINOv2's cls ⊕ mean, the attention pool's attention). {@link Exec}
 * (src/nn/ops.ts) extends this with the linear layers, layernorm and attention.
 * Pointers are byte addresses in the wasm memory; B images, T tokens, D hidden, H heads.
 */
import { meanOfTokens } from './trace.js';
import { COST, Work } from './work.js';

export class TokenOps extends Work {
  // ---- embeddings ----

  /** patches (B·Np, C·p·p) from img (B, C, H, W). */
  patchify(img: number, patches: number, B: number, C: number, H: number, W: number, p: number): void {
    const per = C * H * W,
      np = (H / p) * (W / p) * C * p * p;
    this.each(B, (b) => this.k.patchify(img + b * per * 4, patches + b * np * 4, 1, C, H, W, p), B * per * COST.kernel);
  }

  /**
   * x (B, T, D) = [prefix tokens; pe (B, T-P, D)] + pos (T, D), the P prefix tokens given as one
   * (D) row pointer each (cls, then a DeiT's distillation token or the registers). The kernel
   * writes [last prefix token; pe] + pos[P-1:] from row P-1; the rows before it are one f32 sum a
   * lane, as the kernel's. A token without a position embedding has a zero row in pos: + 0 is exact.
   */
  embedTokens(pe: number, prefix: readonly number[], pos: number, x: number, B: number, T: number, D: number): void {
    const P = prefix.length;
    if (P === 0) {
      // no prefix token (SigLIP): x = pe + pos, one f32 sum a lane as the kernel's
      this.each(
        B,
        (b) => {
          const xb = this.f32(x + b * T * D * 4, T * D),
            eb = this.f32(pe + b * T * D * 4, T * D),
            p = this.f32(pos, T * D);
          for (let i = 0; i < T * D; i++) xb[i] = eb[i] + p[i];
        },
        B * T * D * COST.js,
      );
      return;
    }
    this.each(
      B,
      (b) => {
        const xb = x + b * T * D * 4;
        this.k.embed_tokens(
          pe + b * (T - P) * D * 4,
          prefix[P - 1],
          pos + (P - 1) * D * 4,
          xb + (P - 1) * D * 4,
          1,
          T - P + 1,
          D,
        );
        for (let t = 0; t < P - 1; t++) {
          const row = this.f32(xb + t * D * 4, D),
            c = this.f32(prefix[t], D),
            p = this.f32(pos + t * D * 4, D);
          for (let d = 0; d < D; d++) row[d] = c[d] + p[d];
        }
      },
      B * T * D * COST.kernel,
    );
  }

  /** logits (R, N) = (logits + other (R, N)) / 2, as f32: DeiT's two heads averaged. */
  average(logits: number, other: number, n: number): void {
    this.elementwise(n, (i0, i1) => {
      const a = this.f32(logits, n),
        b = this.f32(other, n);
      for (let i = i0; i < i1; i++) a[i] = (a[i] + b[i]) / 2;
    });
  }

  /** Backward of {@link embedTokens} with the cls token alone: dpe (B, T-1, D) from dx (B, T, D); dcls, dpos += into g. */
  embedTokensBackward(dx: number, dpe: number, dcls: number, dpos: number, B: number, T: number, D: number): void {
    this.k.embed_tokens_bwd(dx, dpe, dcls, dpos, B, T, D);
  }

  /** out (B, D) = the mean of tokens prefix … T−1 of each image of x (B, T, D): mean pooling, an image a chunk. */
  meanTokens(x: number, out: number, B: number, T: number, prefix: number, D: number): void {
    this.each(
      B,
      (b) => meanOfTokens(this.f32(x + b * T * D * 4, T * D), this.f32(out + b * D * 4, D), 1, T, prefix, D),
      B * T * D * COST.js,
    );
  }

  /**
   * out (B, 2D) = [x[b, 0]; the mean of tokens prefix … T−1 of x[b]] for x (B, T, D): the cls token
   * and the mean of the patch tokens side by side (Dinov2ForImageClassification's head input).
   */
  clsMeanTokens(x: number, out: number, B: number, T: number, prefix: number, D: number): void {
    this.each(
      B,
      (b) => {
        const xb = this.f32(x + b * T * D * 4, T * D);
        this.f32(out + b * 2 * D * 4, D).set(xb.subarray(0, D));
        meanOfTokens(xb, this.f32(out + (b * 2 + 1) * D * 4, D), 1, T, prefix, D);
      },
      B * T * D * COST.js,
    );
  }

  /**
   * The attention pool's attention (Arch.pooling 'map'): for each image b and head h, one query
   * q (D, the learned probe projected) over the image's keys and values kv (B·T, 2D, rows [k | v]):
   * att[b, h] = softmax(q_h·K_hᵀ/√dh)·V_h (B, D). One query a head is 2·T·D multiply-adds an
   * image, a rounding error beside the blocks', so it runs here, in float64, rounded once.
   */
  poolAttention(q: number, kv: number, att: number, B: number, T: number, D: number, H: number): void {
    const dh = D / H,
      scale = 1 / Math.sqrt(dh);
    this.each(
      B * H,
      (p) => {
        const b = Math.floor(p / H),
          h = p % H,
          qv = this.f32(q + h * dh * 4, dh),
          rows = this.f32(kv + b * T * 2 * D * 4, T * 2 * D),
          out = this.f32(att + (b * D + h * dh) * 4, dh);
        const s = new Float64Array(T);
        let max = -Infinity;
        for (let j = 0; j < T; j++) {
          let dot = 0;
          for (let d = 0; d < dh; d++) dot += qv[d] * rows[j * 2 * D + h * dh + d];
          s[j] = dot * scale;
          max = Math.max(max, s[j]);
        }
        let sum = 0;
        for (let j = 0; j < T; j++) sum += s[j] = Math.exp(s[j] - max);
        for (let d = 0; d < dh; d++) {
          let v = 0;
          for (let j = 0; j < T; j++) v += s[j] * rows[j * 2 * D + D + h * dh + d];
          out[d] = v / sum;
        }
      },
      2 * B * T * D * COST.js,
    );
  }

  /** n floats at ptr = 0. */
  zero(ptr: number, n: number): void {
    this.f32(ptr, n).fill(0);
  }
}
