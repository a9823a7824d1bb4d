/**
 * Training's arithmetic over the layout of src/train/layout.ts: one worker's share of a step: src/nn/vit.ts's
 * forward and backward over its slice of the batch, then its range of the gradient reduction,
 * clipping, AdamW and re-packing. src/train/trainer.ts drives it.
 */
import { Exec } from '../nn/ops.js';
import { beitIndex, tokens, type ViTShape } from '../nn/shape.js';
import { vitBackward, vitForward } from '../nn/vit.js';
import type { KernelExports } from '../runtime/kernels.js';
import { packedSize, packRows } from '../runtime/pack.js';
import { type Param, type TrainLayout, trainLayout } from './layout.js';
import type { Options } from './options.js';
import type { TrainParam } from './spec.js';

export { type Param, type TrainLayout, trainLayout };

/**
 * Whether `freeze` (TrainOptions) keeps parameter `p` fixed: `'all'` everything but the classifier
 * (a linear probe), N the embeddings and every block but the last N, `'none'` nothing; a part the
 * checkpoint does not have (CLIP's patch bias) always.
 */
export function isFrozen(p: TrainParam, c: ViTShape, freeze: Options['freeze']): boolean {
  if (p.fixed) return true;
  if (freeze === 'none' || p.role.startsWith('head.')) return false;
  if (freeze === 'all') return true;
  return p.depth === 0 || p.depth <= c.numLayers - freeze; // the final layernorm trains with the last blocks
}

/**
 * Layer-wise learning-rate decay (BEiT's, timm's `layer_decay`): the learning rate of parameter `p`
 * is scaled by decay^(L + 1 − depth), depth 0 for the embeddings, i + 1 for block i, L + 1 for the
 * final norm and the head (unscaled).
 */
export function layerScale(p: TrainParam, c: ViTShape, decay: number): number {
  if (decay === 1) return 1;
  return decay ** (c.numLayers + 1 - p.depth);
}

/** Index of the largest value (the first, on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

export type { Options };

/** What a {@link TrainCore} works on: the kernels, the layout every worker shares, and which worker it is. */
export interface TrainCoreOptions {
  k: KernelExports;
  layout: TrainLayout;
  dims: ViTShape;
  options: Options;
  memory: WebAssembly.Memory;
  /** This worker's index and the number of workers. Default 0 of 1. */
  id?: number;
  workers?: number;
  /** The barrier between the update's phases. Default none (one worker). */
  sync?: () => void;
}

/**
 * One worker's share of training over the shared layout: src/nn/vit.ts's forward and backward of its
 * images into its own gradient buffer, then its range of the reduction, clipping norm, AdamW and re-packing.
 */
export class TrainCore {
  private readonly w: TrainLayout['workers'][number];
  private readonly range: [number, number];
  private readonly ex: Exec;
  private readonly L: TrainLayout;
  private readonly c: ViTShape;
  private readonly o: Options;
  readonly id: number;
  readonly workers: number;
  private readonly memory: WebAssembly.Memory;
  private readonly sync: () => void;
  /** Per parameter (layout order): kept fixed by options.freeze. */
  private readonly frozen: boolean[];
  /** Per parameter: its learning rate's factor (options.layerDecay). */
  private readonly lrScale: number[];
  /** BEiT's relative position index (T·T entries into a table's rows), where there are tables. */
  private readonly relIndex: Int32Array | null;

  constructor({ k, layout: L, dims, options, memory, id = 0, workers = 1, sync = () => {} }: TrainCoreOptions) {
    this.L = L;
    this.c = dims;
    this.o = options;
    this.id = id;
    this.workers = workers;
    this.memory = memory;
    this.sync = sync;
    this.w = L.workers[id];
    this.frozen = L.params.map((p) => isFrozen(p, dims, options.freeze));
    this.lrScale = L.params.map((p) => layerScale(p, dims, options.layerDecay));
    this.relIndex = L.relBias.length
      ? beitIndex(dims.imageSize[0] / dims.patchSize, dims.imageSize[1] / dims.patchSize)
      : null;
    // this worker's ops run on its own images only: an Exec of one
    this.ex = new Exec({ k, memory, scratch: this.w.acts.scratch[0] });
    const per = Math.ceil(L.n / workers);
    this.range = [Math.min(L.n, id * per), Math.min(L.n, (id + 1) * per)];
  }

  private f32(ptr: number, n: number) {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  /** Forward over this worker's B images (already in its pixels buffer), keeping what the backward needs. */
  forward(B: number): void {
    vitForward(this.ex, this.c, this.L.weights, { ...this.w.acts, B });
  }

  /**
   * Forward and backward of this worker's B images (labels in its buffer), gradients scaled as the
   * mean over all `total` images of the step. `first`: the step's first micro-batch, so its
   * gradients start from zero; later ones (gradient accumulation) add to them. Returns the summed
   * loss of its images.
   */
  forwardBackward(B: number, total: number, first = true): number {
    if (first) this.f32(this.w.G, this.L.n).fill(0);
    if (B === 0) return 0;
    const acts = { ...this.w.acts, B };
    vitForward(this.ex, this.c, this.L.weights, acts);
    const H = this.c.numHeads,
      TT = this.relIndex?.length ?? 0;
    for (const b of this.w.dbias) this.f32(b.ptr, H * TT).fill(0);
    const pos = this.L.posTable,
      D = this.c.hiddenSize;
    if (pos && this.w.dposTable !== null) this.f32(this.w.dposTable, tokens(this.c).T * D).fill(0);
    const loss = vitBackward(
      this.ex,
      this.c,
      this.L.weights,
      this.w.grads,
      acts,
      this.w.bwd,
      B / total,
      this.o.labelSmoothing,
    );
    // each bias's gradient into its table's rows (several offsets share a row)
    for (const b of this.w.dbias) {
      const d = this.f32(b.ptr, H * TT),
        g = this.f32(this.w.G + b.table.offset * 4, b.table.size),
        idx = this.relIndex!;
      for (let h = 0; h < H; h++) for (let k = 0; k < TT; k++) g[idx[k] * H + h] += d[h * TT + k];
    }
    // the positioned tokens' rows of the table's gradient into the positions' (the registers' have none)
    if (pos && this.w.dposTable !== null) {
      const d = this.f32(this.w.dposTable, tokens(this.c).T * D),
        g = this.f32(this.w.G + pos.param.offset * 4, pos.param.size);
      pos.rows.forEach((t, r) => {
        for (let j = 0; j < D; j++) g[r * D + j] += d[t * D + j];
      });
    }
    return loss;
  }

  /**
   * After every worker's forwardBackward: sums the worker gradients into G over this worker's range
   * (always in worker order 0, 1, …, so a run is reproducible for a thread count), clips by the
   * global norm, takes the AdamW step, re-packs. Barriers between the phases.
   */
  update(t: number, lr: number): void {
    this.sync(); // every worker's gradients are complete
    const [i0, i1] = this.range,
      L = this.L,
      n = L.n;
    const G = this.f32(L.G, n);
    if (this.workers > 1) {
      const parts = L.workers.map((w) => this.f32(w.G, n));
      for (let i = i0; i < i1; i++) {
        let s = 0;
        for (const p of parts) s += p[i];
        G[i] = s;
      }
    }
    // the norm of what is trained (as clip_grad_norm_ over the parameters that have gradients)
    let sq = 0;
    // (indexed loops, no closure: `sq` stays a register in the loop over every gradient)
    for (let j = 0; j < L.params.length; j++) {
      if (this.frozen[j]) continue;
      const p = L.params[j];
      for (let i = Math.max(p.offset, i0), e = Math.min(p.offset + p.size, i1); i < e; i++) sq += G[i] * G[i];
    }
    this.f32(L.sq, this.workers)[this.id] = sq;
    this.sync();
    const parts = this.f32(L.sq, this.workers);
    let total = 0;
    for (let w = 0; w < this.workers; w++) total += parts[w];
    const o = this.o,
      norm = Math.sqrt(total),
      scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
    const P = this.f32(L.P, n),
      m = this.f32(L.adamM, n),
      v = this.f32(L.adamV, n),
      c1 = 1 - o.beta1 ** t,
      c2 = 1 - o.beta2 ** t;
    for (let j = 0; j < L.params.length; j++) {
      if (this.frozen[j]) continue;
      const p = L.params[j];
      const a = Math.max(p.offset, i0),
        b = Math.min(p.offset + p.size, i1);
      const lrp = lr * this.lrScale[j], // (× 1 exactly without layer decay)
        decay = p.decay ? lrp * o.weightDecay : 0; // decoupled, at the parameter's own rate (as timm's groups)
      for (let i = a; i < b; i++) {
        const gi = G[i] * scale;
        m[i] = o.beta1 * m[i] + (1 - o.beta1) * gi;
        v[i] = o.beta2 * v[i] + (1 - o.beta2) * gi * gi;
        P[i] -= decay * P[i] + (lrp * (m[i] / c1)) / (Math.sqrt(v[i] / c2) + o.adamEps);
      }
    }
    this.sync();
    this.repack();
    this.sync();
  }

  /** Re-packs this worker's share of the linear weights for the forward GEMM, and rebuilds its share of the relative position biases. */
  repack(all = false): void {
    const H = this.c.numHeads,
      pos = this.L.posTable;
    if (pos && (all || this.id === this.workers - 1)) {
      // the (T, D) table: the positions' rows at their tokens, zero at the registers
      const D = this.c.hiddenSize,
        table = this.f32(pos.ptr, tokens(this.c).T * D),
        p = this.f32(this.L.P + pos.param.offset * 4, pos.param.size);
      table.fill(0);
      pos.rows.forEach((t, r) => table.set(p.subarray(r * D, (r + 1) * D), t * D));
    }
    this.L.relBias.forEach((b, j) => {
      if (!all && j % this.workers !== this.id) return;
      const idx = this.relIndex!,
        TT = idx.length,
        table = this.f32(this.L.P + b.table.offset * 4, b.table.size),
        out = this.f32(b.ptr, H * TT);
      for (let h = 0; h < H; h++) for (let k = 0; k < TT; k++) out[h * TT + k] = table[idx[k] * H + h];
    });
    const w = this.L.weights,
      list = [w.patch, ...(w.head ? [w.head] : []), ...w.layers.flatMap((l) => [l.qkv, l.proj, l.fc1, l.fc2])];
    list.forEach((l, j) => {
      if (all || j % this.workers === this.id)
        packRows(this.f32(l.w, packedSize(l.N, l.K)), this.f32(l.raw, l.N * l.K), 0, l.N, l.K);
    });
  }
}

/** A training job for a pool worker. */
export type TrainJob =
  /**
   * A micro-batch of a step of `total` images: gradients from zero when `first`, the update after
   * it when `last` (both for a step in one piece).
   */
  | { kind: 'step'; counts: number[]; total: number; t: number; lr: number; first: boolean; last: boolean }
  | { kind: 'forward'; counts: number[] };
export interface TrainWorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  dims: ViTShape;
  /** The parameter list (src/train/spec.ts). */
  params: TrainParam[];
  options: Options;
  perWorker: number;
  workers: number;
  id: number;
  base: number;
}
