/**
 * The ops of src/nn/vit.ts, each forward beside its backward. A forward op's work is cut into chunks
 * that the workers claim from a shared counter (with one worker, it just runs them all), and the
 * pool's `sync` is the barrier that ends the op. A chunk's arithmetic never depends on who runs it, so results
 * are bit-identical for every worker count. Backward ops run in one worker over its own slice of
 * the batch (training is data parallel), so each calls its kernel once.
 * Pointers are byte addresses in the wasm memory; shapes are given per argument: R rows (a GEMM's
 * M; here M is only ever the MLP size), N outputs, K inputs, B images, T tokens, D hidden, H heads.
 */

import { COUNTERS, MAX_OPS } from '../runtime/barrier.js';
import { EPI, type Epilogue, KERNELS, type KernelExports } from '../runtime/kernels.js';
import type { Quant } from './plan.js';
import { meanOfTokens } from './trace.js';
import type { Int8Linear, Linear, LinearGrad, Norm, TrainableLinear } from './weights.js';

/** Chunks per worker per op: enough to even out a worker that falls behind, few enough to be cheap. */
const CHUNKS_PER_WORKER = 4;

/** What an {@link Exec} runs on. */
export interface ExecOptions {
  k: KernelExports;
  memory: WebAssembly.Memory;
  /** This worker's scratch: four rows of attention scores (4 × T8 floats, T8 = T rounded up to 8). */
  scratch: number;
  /** In a pool: the workers, the shared control words, the barrier. Alone (absent): every chunk runs here. */
  pool?: {
    workers: number;
    ctl: Int32Array;
    sync: () => void;
    /** Called with each op's number before its work starts (fault tests: exit at op N). */
    onOp?: (op: number) => void;
  };
}

/** How a linear layer runs: its epilogue, its input's row stride, where int8 layers quantize their input. */
export interface LinearOptions {
  epi?: Epilogue;
  /** Floats between input rows. Default K. */
  lda?: number;
  /** The plan's room for quantized input rows; int8 layers need it. */
  quant?: Quant;
}

export class Exec {
  private op = 0;
  readonly k: KernelExports;
  readonly scratch: number;
  readonly workers: number;
  private readonly memory: WebAssembly.Memory;
  private readonly pool: ExecOptions['pool'];

  constructor(o: ExecOptions) {
    this.k = o.k;
    this.memory = o.memory;
    this.scratch = o.scratch;
    this.pool = o.pool;
    this.workers = o.pool?.workers ?? 1;
  }

  /** Runs body(c) for every chunk c < n this worker claims, then meets the others. */
  private each(n: number, body: (c: number) => void): void {
    const pool = this.pool;
    if (!pool) {
      for (let c = 0; c < n; c++) body(c);
      return;
    }
    if (this.op >= MAX_OPS) throw new Error(`vit-wasm: a forward has more than ${MAX_OPS} ops`);
    pool.onOp?.(this.op);
    const slot = COUNTERS + this.op++;
    for (let c = Atomics.add(pool.ctl, slot, 1); c < n; c = Atomics.add(pool.ctl, slot, 1)) body(c);
    pool.sync();
  }

  /** Units of work per chunk, for `units` units. */
  private per(units: number): number {
    if (!this.pool) return Math.max(1, units); // alone (training workers, the one-thread fallback): one chunk, one kernel call
    return Math.max(1, Math.floor(units / (CHUNKS_PER_WORKER * this.workers)));
  }

  /** A fresh f32 view (views go stale when the memory grows). */
  private f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  /** Elementwise over n floats in chunks: body(i0, i1). */
  private elementwise(n: number, body: (i0: number, i1: number) => void): void {
    const per = 64 * this.per(Math.ceil(n / 64));
    this.each(Math.ceil(n / per), (c) => body(c * per, Math.min(n, (c + 1) * per)));
  }

  // ---- linear layers ----

  /**
   * A GEMM's R × N outputs in chunks of whole tiles [TM, TN]: row blocks, or column panels when the
   * rows are too few for every worker to get some.
   */
  private tiles(
    R: number,
    N: number,
    [TM, TN]: readonly [number, number],
    rows: (r0: number, r1: number) => void,
    cols: (c0: number, c1: number) => void,
  ): void {
    if (this.byRows(R, TM)) this.chunks(R, TM, rows);
    else this.chunks(N, TN, cols);
  }

  /** Whether {@link tiles} cuts R rows into row blocks (else column panels). */
  private byRows(R: number, TM: number): boolean {
    return R >= TM * this.workers || this.workers === 1;
  }

  /** n rows (or columns) in chunks of whole t-wide tiles: body(i0, i1) for each chunk this worker claims. */
  private chunks(n: number, t: number, body: (i0: number, i1: number) => void): void {
    const per = t * this.per(Math.ceil(n / t));
    this.each(Math.ceil(n / per), (c) => body(c * per, Math.min(n, (c + 1) * per)));
  }

  /**
   * y (R, N) = epi(x (R, lda) · Wᵀ + b), in tiles (see {@link tiles}). A layer with int8 weights
   * runs {@link linearI8}, quantizing its input in `quant`.
   */
  linear(x: number, l: Linear, y: number, R: number, { epi = EPI.STORE, lda = l.K, quant }: LinearOptions = {}): void {
    if (l.kind === 'int8') {
      // an int8 layer in a plan without room to quantize: a bug in the plan, not in the input
      if (!quant) throw new Error('vit-wasm: internal: an int8 linear layer run without a quantization plan');
      this.linearI8(x, l, y, R, epi, lda, quant);
      return;
    }
    const { N, K } = l;
    this.tiles(
      R,
      N,
      KERNELS.gemm.tile,
      (r0, r1) => this.k.gemm_4x8(x + r0 * lda * 4, lda, l.w, l.b, y + r0 * N * 4, N, r1 - r0, N, K, epi),
      (c0, c1) => this.k.gemm_4x8(x, lda, l.w + c0 * K * 4, l.b + c0 * 4, y + c0 * 4, N, R, c1 - c0, K, epi),
    );
  }

  /**
   * {@link linear} with int8 weights (l.q): every input row quantized to u7 with its scale and
   * zero point (quant.aq (⌈R/4⌉, Kp/4, 4, 4) bytes, interleaved by blocks of 4 rows, so chunks
   * start at a multiple of 4 rows; quant.sa (R), quant.za (R)), then the int8 GEMM in tiles.
   * In row blocks, each chunk quantizes its own rows and goes straight on to multiply them (no
   * barrier between the two, and the rows still in cache); in column panels every panel needs every
   * row, so all rows are quantized first, as an op of their own.
   */
  private linearI8(x: number, l: Int8Linear, y: number, R: number, epi: Epilogue, lda: number, q: Quant): void {
    const { wq, wsum, sw, Kp } = l,
      { aq, sa, za } = q,
      N = l.N,
      [TM, TN] = KERNELS.gemmI8.tile;
    const quantize = (r0: number, r1: number) =>
      this.k.quantize_rows_u7(x + r0 * lda * 4, lda, aq + r0 * Kp, Kp, sa + r0 * 4, za + r0 * 4, r1 - r0, l.K);
    if (this.byRows(R, TM)) {
      this.chunks(R, TM, (r0, r1) => {
        quantize(r0, r1);
        this.k.gemm_i8_4x8(
          aq + r0 * Kp,
          sa + r0 * 4,
          za + r0 * 4,
          wq,
          wsum,
          sw,
          l.b,
          y + r0 * N * 4,
          N,
          r1 - r0,
          N,
          Kp,
          epi,
        );
      });
      return;
    }
    this.chunks(R, TM, quantize);
    this.chunks(N, TN, (c0, c1) =>
      this.k.gemm_i8_4x8(
        aq,
        sa,
        za,
        wq + c0 * Kp,
        wsum + c0 * 4,
        sw + c0 * 4,
        l.b + c0 * 4,
        y + c0 * 4,
        N,
        R,
        c1 - c0,
        Kp,
        epi,
      ),
    );
  }

  /**
   * xout (R, N) = xin (R, N) + (x (R, K) · Wᵀ + b): a projection onto the residual stream. With
   * `sep` the projection is kept there (R, N) and the sum formed after it (inspection); else it is
   * added in the GEMM's epilogue, in place when xout is xin. Both give the same bits.
   */
  residual(
    x: number,
    l: Linear,
    xin: number,
    xout: number,
    R: number,
    { sep, quant }: { sep?: number; quant?: Quant } = {},
  ): void {
    const n = R * l.N;
    if (sep !== undefined) {
      this.linear(x, l, sep, R, { quant });
      this.elementwise(n, (i0, i1) => {
        const a = this.f32(xin, n),
          b = this.f32(sep, n),
          o = this.f32(xout, n);
        for (let i = i0; i < i1; i++) o[i] = a[i] + b[i];
      });
      return;
    }
    if (xout !== xin) this.elementwise(n, (i0, i1) => this.f32(xout, n).set(this.f32(xin, n).subarray(i0, i1), i0));
    this.linear(x, l, xout, R, { epi: EPI.ADD, quant });
  }

  /** y (R, N) = GELU(x (R, K) · Wᵀ + b): fused in the GEMM epilogue, or with `u` (R, N) the pre-activation kept there first. */
  linearGelu(x: number, l: Linear, y: number, R: number, { u, quant }: { u?: number; quant?: Quant } = {}): void {
    if (u === undefined) {
      this.linear(x, l, y, R, { epi: EPI.GELU, quant });
      return;
    }
    this.linear(x, l, u, R, { quant });
    this.elementwise(R * l.N, (i0, i1) => this.k.gelu(u + i0 * 4, y + i0 * 4, i1 - i0));
  }

  /**
   * Backward of {@link linear} over R rows: dX (R, K) = dY (R, N) · W (no dx: not needed);
   * dW += dYᵀ · X into g.dw (N, K); db += Σ dY into g.db (N). W is read unpacked (`l.raw`).
   */
  linearBackward(x: number, l: TrainableLinear, g: LinearGrad, dy: number, dx: number | undefined, R: number): void {
    if (dx !== undefined) this.k.gemm_4x8_strided(dy, l.N * 4, 4, l.raw, l.K * 4, dx, l.K, R, l.K, l.N, EPI.STORE);
    this.k.gemm_4x8_strided(dy, 4, l.N * 4, x, l.K * 4, g.dw, l.K, l.N, l.K, R, EPI.ADD);
    this.k.colsum(dy, g.db, R, l.N);
  }

  /** Backward of the GELU: dx (n) = GELU'(u) · dy, u the pre-activation. */
  geluBackward(u: number, dy: number, dx: number, n: number): void {
    this.k.gelu_bwd(u, dy, dx, n);
  }

  // ---- layernorm ----

  /** y (rows, D) = layernorm(x (rows, ldx)). */
  layernorm(x: number, n: Norm, y: number, rows: number, D: number, eps: number, ldx = D): void {
    const per = this.per(rows);
    this.each(Math.ceil(rows / per), (c) => {
      const r0 = c * per,
        r1 = Math.min(rows, r0 + per);
      this.k.layernorm(x + r0 * ldx * 4, ldx, y + r0 * D * 4, D, n.g, n.b, r1 - r0, D, eps);
    });
  }

  /** Backward of {@link layernorm}: dx (rows, D) += ∂/∂x of dy (rows, D); dγ, dβ += into g. */
  layernormBackward(
    x: number,
    n: Norm,
    g: Norm,
    dy: number,
    dx: number,
    rows: number,
    D: number,
    eps: number,
    ldx = D,
  ): void {
    this.k.layernorm_bwd(x, ldx, dy, dx, n.g, g.g, g.b, rows, D, eps);
  }

  // ---- attention ----

  /**
   * out (B·T, D) = heads of softmax(QKᵀ/√dh)V from qkv (B·T, 3D). First every (image, head) packs
   * K_hᵀ panels into kt (B, H, ⌈T/8⌉, dh, 8); then chunks of query rows of one head each. probs
   * (B, H, T, T), when kept, gets every softmax.
   */
  attention(qkv: number, kt: number, out: number, B: number, T: number, D: number, H: number, probs?: number): void {
    const dh = D / H,
      scale = 1 / Math.sqrt(dh),
      T8 = Math.ceil(T / 8) * 8;
    // (image, head) pair p = b·H + h: its Kᵀ panels, and its query rows i0 … i1-1
    const pack = (p: number) =>
      this.k.attention_pack_kt(qkv + Math.floor(p / H) * T * 3 * D * 4, kt + p * dh * T8 * 4, T, D, dh, p % H);
    const rowsOf = (p: number, i0: number, i1: number) => {
      const b = Math.floor(p / H);
      this.k.attention_head(
        qkv + b * T * 3 * D * 4,
        kt + p * dh * T8 * 4,
        out + b * T * D * 4,
        this.scratch,
        probs !== undefined ? probs + p * T * T * 4 : 0, // 0: the kernel keeps no map
        T,
        D,
        dh,
        p % H,
        scale,
        i0,
        i1,
      );
    };
    if (!this.pool) {
      // alone: pack each head's Kᵀ just before its rows use it, while it is in cache
      for (let p = 0; p < B * H; p++) {
        pack(p);
        rowsOf(p, 0, T);
      }
      return;
    }
    this.each(B * H, pack);
    const TR = KERNELS.attention.tile[0]; // query rows per register tile
    const rows = Math.min(T, TR * Math.max(2, Math.ceil((B * H * T) / (TR * CHUNKS_PER_WORKER * this.workers))));
    const blocks = Math.ceil(T / rows);
    this.each(B * H * blocks, (c) => {
      const i0 = (c % blocks) * rows;
      rowsOf(Math.floor(c / blocks), i0, Math.min(T, i0 + rows));
    });
  }

  /** Backward of {@link attention}, from the kept maps probs (B, H, T, T): dqkv (B·T, 3D) from dout (B·T, D). */
  attentionBackward(
    qkv: number,
    probs: number,
    dout: number,
    dqkv: number,
    B: number,
    T: number,
    D: number,
    H: number,
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
        );
      }
  }

  /**
   * Softmax cross-entropy of logits (B, L) against labels (B, i32): dlogits (B, L) = (softmax − onehot)/B,
   * times `scale`. Returns the summed loss.
   */
  softmaxXent(logits: number, labels: number, dlogits: number, B: number, L: number, scale = 1): number {
    const loss = this.k.softmax_xent(logits, labels, dlogits, B, L) * B;
    if (scale !== 1) {
      const dl = this.f32(dlogits, B * L);
      for (let i = 0; i < dl.length; i++) dl[i] *= scale;
    }
    return loss;
  }

  // ---- embeddings ----

  /** patches (B·Np, C·p·p) from img (B, C, H, W). */
  patchify(img: number, patches: number, B: number, C: number, H: number, W: number, p: number): void {
    const per = C * H * W,
      np = (H / p) * (W / p) * C * p * p;
    this.each(B, (b) => this.k.patchify(img + b * per * 4, patches + b * np * 4, 1, C, H, W, p));
  }

  /** x (B, T, D) = [cls; pe (B, T-1, D)] + pos. */
  embedTokens(pe: number, cls: number, pos: number, x: number, B: number, T: number, D: number): void {
    this.each(B, (b) => this.k.embed_tokens(pe + b * (T - 1) * D * 4, cls, pos, x + b * T * D * 4, 1, T, D));
  }

  /** Backward of {@link embedTokens}: dpe (B, T-1, D) from dx (B, T, D); dcls, dpos += into g. */
  embedTokensBackward(dx: number, dpe: number, dcls: number, dpos: number, B: number, T: number, D: number): void {
    this.k.embed_tokens_bwd(dx, dpe, dcls, dpos, B, T, D);
  }

  /** out (B, D) = the mean of tokens prefix … T−1 of each image of x (B, T, D): mean pooling, an image a chunk. */
  meanTokens(x: number, out: number, B: number, T: number, prefix: number, D: number): void {
    this.each(B, (b) =>
      meanOfTokens(this.f32(x + b * T * D * 4, T * D), this.f32(out + b * D * 4, D), 1, T, prefix, D),
    );
  }

  /** n floats at ptr = 0. */
  zero(ptr: number, n: number): void {
    this.f32(ptr, n).fill(0);
  }
}
