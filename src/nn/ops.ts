/**
 * The ops of src/nn/vit.ts, each forward beside its backward. A forward op's work is cut into
 * chunks the workers claim (src/nn/work.ts), so results are bit-identical for every worker count.
 * Backward ops run in one worker over its own slice of the batch (training is data parallel), so
 * each calls its kernel once.
 * Pointers are byte addresses in the wasm memory; shapes are given per argument: R rows (a GEMM's
 * M; here M is only ever the MLP size), N outputs, K inputs, B images, T tokens, D hidden, H heads.
 */

import { attentionPanelFloats, EPI, type Epilogue, gemmRowBlock, KERNELS } from '../runtime/kernels.js';
import type { Arch } from './arch.js';
import { TrainOps } from './ops-train.js';
import type { Quant } from './plan.js';
import type { Int8Linear, Linear, LinearGrad, Norm, TrainableLinear } from './weights.js';
import { CHUNKS_PER_WORKER, COST } from './work.js';

export type { ExecOptions } from './work.js';

/**
 * The activations that are a sigmoid gate x·σ(a·(x + c·x³)) (assembly/activation.ts), as [a, c]:
 * quick GELU is CLIP's x·σ(1.702x); the tanh GELU ½x(1 + tanh(√(2/π)(x + 0.044715x³))) is
 * x·σ(2√(2/π)(x + 0.044715x³)); SiLU is x·σ(x).
 */
export const GATES = {
  quickGelu: [1.702, 0],
  geluTanh: [2 * Math.sqrt(2 / Math.PI), 0.044715],
  silu: [1, 0],
} as const satisfies Record<Exclude<Arch['activation'], 'gelu' | 'relu'>, readonly [number, number]>;

/** How a linear layer runs: its epilogue, its input's row stride, where int8 layers quantize their input. */
export interface LinearOptions {
  epi?: Epilogue;
  /** Floats between input rows. Default K. */
  lda?: number;
  /** The plan's room for quantized input rows; int8 layers need it. */
  quant?: Quant;
}

/**
 * Every op of the network: the linear layers, layernorm and attention here; the embeddings and
 * the pooling in TokenOps (src/nn/ops-tokens.ts), training's LayerScale, activation, prefix and
 * pooling backwards in {@link TrainOps} (src/nn/ops-train.ts), which this extends.
 */
export class Exec extends TrainOps {
  // ---- linear layers ----

  /**
   * y (R, N) = epi(x (R, lda) · Wᵀ + b), in blocks of tiles (see {@link gemmTiles}). A layer with int8 weights
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
    this.gemmTiles(R, N, K, KERNELS.gemm.tile, (r0, r1, c0, c1) =>
      this.k.gemm_4x8(
        x + r0 * lda * 4,
        lda,
        l.w + c0 * K * 4,
        l.b + c0 * 4,
        y + (r0 * N + c0) * 4,
        N,
        r1 - r0,
        c1 - c0,
        K,
        epi,
      ),
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
      this.chunks(
        R,
        TM,
        (r0, r1) => {
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
        },
        2 * R * N * l.K,
      );
      return;
    }
    this.chunks(R, TM, quantize, R * l.K * COST.kernel);
    this.chunks(
      N,
      TN,
      (c0, c1) =>
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
      2 * R * N * l.K,
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

  /**
   * y (R, N) = act(x (R, K) · Wᵀ + b). The exact GELU is fused in the GEMM epilogue; the others
   * (assembly/activation.ts) run over the GEMM's output in place, in chunks. With `u` (R, N) the
   * pre-activation is kept there first (training, inspection). `gated` (Arch.mlp): u (R, N) is
   * needed, and y (R, N/2) = act(u[:, :N/2]) ⊙ u[:, N/2:], in chunks of rows.
   */
  linearAct(
    x: number,
    l: Linear,
    y: number,
    R: number,
    act: Arch['activation'],
    { u, quant, gated = false }: { u?: number; quant?: Quant; gated?: boolean } = {},
  ): void {
    if (gated) {
      if (u === undefined || act === 'gelu' || act === 'relu')
        throw new Error(`vit-wasm: internal: a gated MLP with ${u === undefined ? 'no room for fc1' : act}`);
      const [a, c] = GATES[act],
        M = l.N / 2,
        per = this.per(R);
      this.linear(x, l, u, R, { quant });
      this.each(
        Math.ceil(R / per),
        (ch) => {
          const r0 = ch * per;
          this.k.act_glu(u + r0 * l.N * 4, y + r0 * M * 4, Math.min(R, r0 + per) - r0, M, a, c);
        },
        R * l.N * COST.kernel,
      );
      return;
    }
    if (act === 'gelu' && u === undefined) {
      this.linear(x, l, y, R, { epi: EPI.GELU, quant });
      return;
    }
    const pre = u ?? y;
    this.linear(x, l, pre, R, { quant });
    this.elementwise(R * l.N, (i0, i1) => this.activate(act, pre + i0 * 4, y + i0 * 4, i1 - i0), COST.kernel);
  }

  /** y (n) = act(x (n)), in place allowed. */
  private activate(act: Arch['activation'], x: number, y: number, n: number): void {
    if (act === 'gelu') this.k.gelu(x, y, n);
    else if (act === 'relu') this.k.act_relu(x, y, n);
    else {
      const [a, c] = GATES[act];
      this.k.act_gate(x, y, n, a, c);
    }
  }

  /**
   * Backward of {@link linear} over R rows: dX (R, K) = dY (R, N) · W (no dx: not needed);
   * dW += dYᵀ · X into g.dw (N, K); db += Σ dY into g.db (N). W is read unpacked (`l.raw`). dW runs
   * on gemm_4x8 over packed copies in `pack` (X's column panels, then dYᵀ a row block at a time):
   * the same sums in the same order as reading both in place, at twice the speed or more.
   */
  linearBackward(
    x: number,
    l: TrainableLinear,
    g: LinearGrad,
    dy: number,
    dx: number | undefined,
    R: number,
    pack: { packA: number; packB: number },
  ): void {
    const { N, K } = l;
    // dX in row blocks whose dY rows stay in cache while the kernel sweeps W's panels
    if (dx !== undefined)
      for (let r0 = 0, rb = gemmRowBlock(N, KERNELS.gemmStrided.tile[0]); r0 < R; r0 += rb)
        this.k.gemm_4x8_strided(
          dy + r0 * N * 4,
          N * 4,
          4,
          l.raw,
          K * 4,
          dx + r0 * K * 4,
          K,
          Math.min(rb, R - r0),
          K,
          N,
          EPI.STORE,
        );
    this.k.pack_panels_8(x, K, pack.packB, R, K); // (⌈K/8⌉, R, 8)
    for (let n0 = 0, nb = gemmRowBlock(R, KERNELS.gemm.tile[0]); n0 < N; n0 += nb) {
      const rows = Math.min(nb, N - n0);
      this.k.transpose(dy + n0 * 4, N, pack.packA, R, R, rows); // dYᵀ rows n0 … n0+rows-1: (rows, R)
      this.k.gemm_4x8(pack.packA, R, pack.packB, 0, g.dw + n0 * K * 4, K, rows, K, R, EPI.ADD);
    }
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
    this.each(
      Math.ceil(rows / per),
      (c) => {
        const r0 = c * per,
          r1 = Math.min(rows, r0 + per);
        this.k.layernorm(x + r0 * ldx * 4, ldx, y + r0 * D * 4, D, n.g, n.b, r1 - r0, D, eps);
      },
      rows * D * COST.kernel,
    );
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
   * its K_hᵀ and V_h panels into kv (B, H, attentionPanelFloats(T, dh)); then chunks of query rows of
   * one head each. probs (B, H, T, T), when kept, gets every softmax. bias (H, T, T), where given,
   * is added to each head's scaled scores before the softmax (BEiT's relative position bias).
   */
  attention(
    qkv: number,
    kv: number,
    out: number,
    B: number,
    T: number,
    D: number,
    H: number,
    probs?: number,
    bias?: number,
  ): void {
    const dh = D / H,
      scale = 1 / Math.sqrt(dh),
      panels = attentionPanelFloats(T, dh) * 4;
    // (image, head) pair p = b·H + h: its K and V panels, and its query rows i0 … i1-1
    const pack = (p: number) =>
      this.k.attention_pack_kv(qkv + Math.floor(p / H) * T * 3 * D * 4, kv + p * panels, T, D, dh, p % H);
    const rowsOf = (p: number, i0: number, i1: number) => {
      const b = Math.floor(p / H);
      this.k.attention_head(
        qkv + b * T * 3 * D * 4,
        kv + p * panels,
        out + b * T * D * 4,
        this.scratch,
        probs !== undefined ? probs + p * T * T * 4 : 0, // 0: the kernel keeps no map
        bias !== undefined ? bias + (p % H) * T * T * 4 : 0, // each head's (T, T) bias, the same for every image
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
      // alone: pack each head's panels just before its rows use them, while they are in cache
      for (let p = 0; p < B * H; p++) {
        pack(p);
        rowsOf(p, 0, T);
      }
      return;
    }
    this.each(B * H, pack, 2 * B * T * D * COST.kernel);
    const TR = KERNELS.attention.tile[0]; // query rows per register tile
    const rows = Math.min(T, TR * Math.max(2, Math.ceil((B * H * T) / (TR * CHUNKS_PER_WORKER * this.workers))));
    const blocks = Math.ceil(T / rows);
    this.each(
      B * H * blocks,
      (c) => {
        const i0 = (c % blocks) * rows;
        rowsOf(Math.floor(c / blocks), i0, Math.min(T, i0 + rows));
      },
      4 * B * T * T * D * COST.attention,
    );
  }

  /**
   * Softmax cross-entropy of logits (B, L) against labels (B, i32), with PyTorch's label_smoothing:
   * dlogits (B, L) = (softmax − target)/B, times `scale`. Returns the summed loss.
   */
  softmaxXent(logits: number, labels: number, dlogits: number, B: number, L: number, scale = 1, smoothing = 0): number {
    let loss = this.k.softmax_xent(logits, labels, dlogits, B, L) * B;
    if (smoothing > 0) {
      // PyTorch's label_smoothing ε: the target is (1 − ε)·onehot + ε/L, so the loss gains
      // ε·(mean_k(−log p_k) − (−log p_y)) = ε·(z_y − mean_k z_k) and dlogits ε·(onehot − 1/L) / B
      const z = this.f32(logits, B * L),
        dl = this.f32(dlogits, B * L),
        y = new Int32Array(this.memory.buffer, labels, B);
      for (let b = 0; b < B; b++) {
        let mean = 0;
        for (let j = 0; j < L; j++) mean += z[b * L + j];
        loss += smoothing * (z[b * L + y[b]] - mean / L);
        for (let j = 0; j < L; j++) dl[b * L + j] += (smoothing * ((j === y[b] ? 1 : 0) - 1 / L)) / B;
      }
    }
    if (scale !== 1) {
      const dl = this.f32(dlogits, B * L);
      for (let i = 0; i < dl.length; i++) dl[i] *= scale;
    }
    return loss;
  }
}
