/**
 * Op dispatch. Each method runs one op: its work is cut into chunks that the workers claim from a
 * shared counter (with one worker, it just runs them all), and `sync` is the barrier that ends the
 * op. A chunk's arithmetic never depends on who runs it, so results are bit-identical for every
 * worker count.
 */
import { COUNTERS, MAX_OPS } from './barrier.js';
import type { Linear, Norm } from './checkpoint.js';
import { EPI, type Epilogue, type KernelExports } from './kernels.js';

/** Chunks per worker per op: enough to even out a worker that falls behind, few enough to be cheap. */
const CHUNKS_PER_WORKER = 4;

export class Exec {
  private op = 0;

  constructor(
    readonly k: KernelExports,
    /** This worker's scratch: four rows of attention scores (4 × T8 floats, T8 = T rounded up to 8). */
    readonly scratch: number,
    readonly workers = 1,
    /** The shared control words (pool only). */
    private readonly ctl: Int32Array | null = null,
    private readonly sync: () => void = () => {},
    /** Called with each op's number before its work starts (fault tests: exit at op N). */
    private readonly onOp: ((op: number) => void) | null = null,
  ) {}

  /** Runs body(c) for every chunk c < n this worker claims, then meets the others. */
  private each(n: number, body: (c: number) => void): void {
    if (!this.ctl) {
      for (let c = 0; c < n; c++) body(c);
      return;
    }
    if (this.op >= MAX_OPS) throw new Error(`vit-wasm: a forward has more than ${MAX_OPS} ops`);
    this.onOp?.(this.op);
    const slot = COUNTERS + this.op++;
    for (let c = Atomics.add(this.ctl, slot, 1); c < n; c = Atomics.add(this.ctl, slot, 1)) body(c);
    this.sync();
  }

  /** Units of work per chunk, for `units` units. */
  private per(units: number): number {
    return Math.max(1, Math.floor(units / (CHUNKS_PER_WORKER * this.workers)));
  }

  /** y (M, N) = epi(x (M, lda) · Wᵀ + b). Chunks of 4-row tiles, or of 8-column panels when rows are few. */
  linear(x: number, l: Linear, y: number, M: number, epi: Epilogue = EPI.STORE, lda = l.K): void {
    if (M >= 4 * this.workers || this.workers === 1) {
      const rows = 4 * this.per(Math.ceil(M / 4));
      this.each(Math.ceil(M / rows), (c) => {
        const r0 = c * rows, r1 = Math.min(M, r0 + rows);
        this.k.gemm_4x8_simd(x + r0 * lda * 4, lda, l.w, l.b, y + r0 * l.N * 4, l.N, r1 - r0, l.N, l.K, epi);
      });
    } else {
      const cols = 8 * this.per(Math.ceil(l.N / 8));
      this.each(Math.ceil(l.N / cols), (c) => {
        const c0 = c * cols, c1 = Math.min(l.N, c0 + cols);
        this.k.gemm_4x8_simd(x, lda, l.w + c0 * l.K * 4, l.b + c0 * 4, y + c0 * 4, l.N, M, c1 - c0, l.K, epi);
      });
    }
  }

  /** y (rows, D) = layernorm(x (rows, ldx)). */
  layernorm(x: number, n: Norm, y: number, rows: number, D: number, eps: number, ldx = D): void {
    const per = this.per(rows);
    this.each(Math.ceil(rows / per), (c) => {
      const r0 = c * per, r1 = Math.min(rows, r0 + per);
      this.k.layernorm_simd(x + r0 * ldx * 4, ldx, y + r0 * D * 4, D, n.g, n.b, r1 - r0, D, eps);
    });
  }

  /**
   * out (B·T, D) = heads of softmax(QKᵀ/√dh)V from qkv (B·T, 3D). First every (image, head) packs
   * K_hᵀ panels into kt (B, H, ⌈T/8⌉, dh, 8); then chunks of query rows of one head each. probs (B, H, T, T) or 0.
   */
  attention(qkv: number, kt: number, out: number, B: number, T: number, D: number, H: number, probs = 0): void {
    const dh = D / H, scale = 1 / Math.sqrt(dh), T8 = Math.ceil(T / 8) * 8;
    const ktOf = (pair: number) => kt + pair * dh * T8 * 4;
    this.each(B * H, (pair) => this.k.attention_pack_kt(qkv + Math.floor(pair / H) * T * 3 * D * 4, ktOf(pair), T, D, dh, pair % H));
    const rows = Math.min(T, 4 * Math.max(2, Math.ceil((B * H * T) / (4 * CHUNKS_PER_WORKER * this.workers))));
    const blocks = Math.ceil(T / rows);
    this.each(B * H * blocks, (c) => {
      const pair = Math.floor(c / blocks), b = Math.floor(pair / H), h = pair % H;
      const i0 = (c % blocks) * rows, i1 = Math.min(T, i0 + rows);
      this.k.attention_head_simd(qkv + b * T * 3 * D * 4, ktOf(pair), out + b * T * D * 4, this.scratch,
        probs ? probs + pair * T * T * 4 : 0, T, D, dh, h, scale, i0, i1);
    });
  }

  /** patches (B·Np, C·p·p) from img (B, C, H, W). */
  patchify(img: number, patches: number, B: number, C: number, H: number, W: number, p: number): void {
    const per = C * H * W, np = (H / p) * (W / p) * C * p * p;
    this.each(B, (b) => this.k.patchify_simd(img + b * per * 4, patches + b * np * 4, 1, C, H, W, p));
  }

  /** x (B, T, D) = [cls; pe (B, T-1, D)] + pos. */
  embedTokens(pe: number, cls: number, pos: number, x: number, B: number, T: number, D: number): void {
    this.each(B, (b) => this.k.embed_tokens_simd(pe + b * (T - 1) * D * 4, cls, pos, x + b * T * D * 4, 1, T, D));
  }
}
