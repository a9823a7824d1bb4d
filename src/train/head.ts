/**
 * A linear probe's training: a classifier (L, F) on features a frozen model computed once (its
 * embed 'head', what a classifier reads), so each epoch costs L·F multiply-adds per image instead
 * of a forward and backward through the network. The recipe is the trainer's (src/train/core.ts):
 * softmax cross-entropy with label smoothing, the global gradient norm clipped, AdamW with weight
 * decay on the weight matrix only, linear warmup then cosine decay; in float64, rounded to float32
 * when the weights are read.
 */
import { permutation, streamRandom } from './augment.js';
import { scheduledRate, type TrainOptions } from './options.js';

/** How a probe trains: the trainer's optimiser and schedule settings (their defaults too). */
export type HeadOptions = Pick<
  TrainOptions,
  | 'lr'
  | 'weightDecay'
  | 'beta1'
  | 'beta2'
  | 'adamEps'
  | 'warmupSteps'
  | 'totalSteps'
  | 'clipNorm'
  | 'labelSmoothing'
  | 'seed'
>;

/** One epoch's mean loss and accuracy on the training features (before each step's update). */
export interface HeadEpoch {
  loss: number;
  accuracy: number;
}

/** A classifier (L, F) trained on fixed features. */
export class HeadTrainer {
  /** (L, F) and (L), float64 while training. */
  readonly W: Float64Array;
  readonly b: Float64Array;
  private readonly m: Float64Array;
  private readonly v: Float64Array;
  private readonly o: Required<HeadOptions>;
  /** Optimiser steps taken. */
  steps = 0;

  constructor(
    readonly F: number,
    readonly L: number,
    options: HeadOptions = {},
  ) {
    if (!Number.isInteger(F) || F < 1 || !Number.isInteger(L) || L < 2)
      throw new Error(`vit-wasm: a linear probe needs features (got ${F} floats) and 2 or more classes (got ${L})`);
    this.o = {
      lr: 1e-3,
      weightDecay: 0.05,
      beta1: 0.9,
      beta2: 0.999,
      adamEps: 1e-8,
      warmupSteps: 0,
      totalSteps: 0,
      clipNorm: 1,
      labelSmoothing: 0,
      seed: 0,
      ...options,
    };
    this.W = new Float64Array(L * F);
    this.b = new Float64Array(L);
    this.m = new Float64Array(L * F + L);
    this.v = new Float64Array(L * F + L);
    // Hugging Face's initialisation of a classifier: W ~ N(0, 0.02), b = 0 (Box–Muller on a seeded xorshift)
    const rand = streamRandom(this.o.seed, 3);
    for (let i = 0; i < this.W.length; i++)
      this.W[i] = 0.02 * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }

  /** Learning rate at step t (1-based): as Trainer.learningRate. */
  learningRate(t: number): number {
    return scheduledRate(this.o, t);
  }

  /** Logits (n, L) of n feature rows (n, F). */
  logits(x: Float32Array, n: number): Float64Array {
    const { F, L } = this,
      z = new Float64Array(n * L);
    for (let i = 0; i < n; i++)
      for (let j = 0; j < L; j++) {
        let s = this.b[j];
        for (let k = 0, w = j * F, r = i * F; k < F; k++) s += this.W[w + k] * x[r + k];
        z[i * L + j] = s;
      }
    return z;
  }

  /**
   * One epoch over n examples (features x (n, F), labels y), in an order drawn from (seed, epoch),
   * batches of B: forward, backward, clip, AdamW.
   */
  epoch(x: Float32Array, y: Int32Array, epoch: number, B: number): HeadEpoch {
    const n = y.length,
      order = permutation(n, streamRandom(this.o.seed, 1, epoch));
    let loss = 0,
      right = 0;
    for (let s = 0; s < n; s += B) {
      const idx = order.slice(s, s + B);
      const r = this.step(x, y, idx);
      loss += r.loss;
      right += r.right;
    }
    return { loss: loss / n, accuracy: right / n };
  }

  /** One AdamW step on examples `idx`: the summed loss and how many the forward got right. */
  private step(x: Float32Array, y: Int32Array, idx: ArrayLike<number>): { loss: number; right: number } {
    const r = this.lossAndGradients(x, y, idx);
    this.update(r.gW, r.gb);
    return r;
  }

  /**
   * Examples `idx` of features x (n, F) and labels y: their summed loss, how many the logits get
   * right, and the gradients of the mean loss, gW (L, F) and gb (L).
   */
  lossAndGradients(
    x: Float32Array,
    y: ArrayLike<number>,
    idx: ArrayLike<number>,
  ): { loss: number; right: number; gW: Float64Array; gb: Float64Array } {
    const { F, L } = this,
      B = idx.length,
      eps = this.o.labelSmoothing,
      gW = new Float64Array(L * F),
      gb = new Float64Array(L),
      p = new Float64Array(L);
    let loss = 0,
      right = 0;
    for (let i = 0; i < B; i++) {
      const r = idx[i] * F,
        label = y[idx[i]];
      // logits, then the softmax's gradient against the smoothed target: p − ((1 − ε)·onehot + ε/L)
      let best = 0;
      for (let j = 0; j < L; j++) {
        let s = this.b[j];
        for (let k = 0, w = j * F; k < F; k++) s += this.W[w + k] * x[r + k];
        p[j] = s;
        if (s > p[best]) best = j;
      }
      right += +(best === label);
      const mx = p[best];
      let se = 0;
      for (let j = 0; j < L; j++) se += Math.exp(p[j] - mx);
      const lse = Math.log(se) + mx;
      let smooth = 0;
      for (let j = 0; j < L; j++) smooth += lse - p[j];
      loss += (1 - eps) * (lse - p[label]) + (eps / L) * smooth;
      for (let j = 0; j < L; j++) {
        const d = (Math.exp(p[j] - lse) - eps / L - (j === label ? 1 - eps : 0)) / B;
        gb[j] += d;
        for (let k = 0, w = j * F; k < F; k++) gW[w + k] += d * x[r + k];
      }
    }
    return { loss, right, gW, gb };
  }

  /** Clip by the global norm, then AdamW (decay on W only). */
  private update(gW: Float64Array, gb: Float64Array): void {
    const o = this.o,
      t = ++this.steps,
      lr = this.learningRate(t);
    let sq = 0;
    for (const g of gW) sq += g * g;
    for (const g of gb) sq += g * g;
    const norm = Math.sqrt(sq),
      scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1,
      c1 = 1 - o.beta1 ** t,
      c2 = 1 - o.beta2 ** t,
      nW = this.W.length;
    const adam = (P: Float64Array, i: number, g: number, at: number, decay: number) => {
      const gi = g * scale;
      this.m[at] = o.beta1 * this.m[at] + (1 - o.beta1) * gi;
      this.v[at] = o.beta2 * this.v[at] + (1 - o.beta2) * gi * gi;
      P[i] -= decay * P[i] + (lr * (this.m[at] / c1)) / (Math.sqrt(this.v[at] / c2) + o.adamEps);
    };
    for (let i = 0; i < nW; i++) adam(this.W, i, gW[i], i, lr * o.weightDecay);
    for (let j = 0; j < this.L; j++) adam(this.b, j, gb[j], nW + j, 0);
  }

  /** Predicted class of each of n feature rows. */
  predict(x: Float32Array, n: number): Int32Array {
    const z = this.logits(x, n),
      L = this.L,
      out = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < L; j++) if (z[i * L + j] > z[i * L + best]) best = j;
      out[i] = best;
    }
    return out;
  }

  /** The classifier as float32: W (L, F) and b (L). */
  weights(): { W: Float32Array; b: Float32Array } {
    return { W: Float32Array.from(this.W), b: Float32Array.from(this.b) };
  }
}
