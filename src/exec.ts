/**
 * Op dispatch. Each method runs one op over this worker's share of the work: with one worker that
 * is everything; with a pool, every worker runs the same forward and `sync` is the barrier that
 * ends each op. Splits never change what an output element's arithmetic is, so results are
 * bit-identical for every worker count.
 */
import type { Linear, Norm } from './checkpoint.js';
import { EPI, type Epilogue, type KernelExports } from './kernels.js';

export class Exec {
  constructor(
    readonly k: KernelExports,
    /** This worker's per-head scratch: dh·Tp + Tp floats. */
    readonly scratch: number,
    readonly id = 0,
    readonly workers = 1,
    private readonly sync: () => void = () => {},
  ) {}

  /** [start, end) of `count` items for this worker, in chunks of `unit`. */
  private share(count: number, unit = 1): [number, number] {
    const chunks = Math.ceil(count / unit), per = Math.ceil(chunks / this.workers);
    return [Math.min(count, this.id * per * unit), Math.min(count, (this.id + 1) * per * unit)];
  }

  /** y (M, N) = epi(x (M, lda) · Wᵀ + b). Rows split in 4-row tiles, or 8-column panels when rows are few. */
  linear(x: number, l: Linear, y: number, M: number, epi: Epilogue = EPI.STORE, lda = l.K): void {
    if (M >= 4 * this.workers || this.workers === 1) {
      const [r0, r1] = this.share(M, 4);
      if (r1 > r0) this.k.gemm_4x8_simd(x + r0 * lda * 4, lda, l.w, l.b, y + r0 * l.N * 4, l.N, r1 - r0, l.N, l.K, epi);
    } else {
      const [c0, c1] = this.share(l.N, 8);
      if (c1 > c0) this.k.gemm_4x8_simd(x, lda, l.w + c0 * l.K * 4, l.b + c0 * 4, y + c0 * 4, l.N, M, c1 - c0, l.K, epi);
    }
    this.sync();
  }

  /** y (rows, D) = layernorm(x (rows, ldx)). */
  layernorm(x: number, n: Norm, y: number, rows: number, D: number, eps: number, ldx = D): void {
    const [r0, r1] = this.share(rows);
    if (r1 > r0) this.k.layernorm_simd(x + r0 * ldx * 4, ldx, y + r0 * D * 4, D, n.g, n.b, r1 - r0, D, eps);
    this.sync();
  }

  /**
   * out (B·T, D) = heads of softmax(QKᵀ/√dh)V from qkv (B·T, 3D); probs (B, H, T, T) or 0.
   * The work is the B·H·T query rows in (image, head, row) order, cut into one contiguous run per
   * worker, so few heads still spread evenly and each worker packs Kᵀ once per head it touches.
   */
  attention(qkv: number, out: number, B: number, T: number, D: number, H: number, probs = 0): void {
    const dh = D / H, scale = 1 / Math.sqrt(dh);
    const [s, e] = this.share(B * H * T);
    for (let pair = Math.floor(s / T); pair * T < e; pair++) {
      const b = Math.floor(pair / H), h = pair % H;
      const i0 = Math.max(s - pair * T, 0), i1 = Math.min(e - pair * T, T);
      this.k.attention_head_simd(qkv + b * T * 3 * D * 4, out + b * T * D * 4, this.scratch,
        probs ? probs + pair * T * T * 4 : 0, T, D, dh, h, scale, i0, i1);
    }
    this.sync();
  }

  /** patches (B·Np, C·p·p) from img (B, C, H, W). */
  patchify(img: number, patches: number, B: number, C: number, H: number, W: number, p: number): void {
    const [b0, b1] = this.share(B), per = C * H * W, np = (H / p) * (W / p) * C * p * p;
    if (b1 > b0) this.k.patchify_simd(img + b0 * per * 4, patches + b0 * np * 4, b1 - b0, C, H, W, p);
    this.sync();
  }

  /** x (B, T, D) = [cls; pe (B, T-1, D)] + pos. */
  embedTokens(pe: number, cls: number, pos: number, x: number, B: number, T: number, D: number): void {
    const [b0, b1] = this.share(B);
    if (b1 > b0) this.k.embed_tokens_simd(pe + b0 * (T - 1) * D * 4, cls, pos, x + b0 * T * D * 4, b1 - b0, T, D);
    this.sync();
  }
}
