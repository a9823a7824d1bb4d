/**
 * Training: the ViT's forward with every activation kept, its backward in reverse (each op's
 * backward kernel beside its forward in assembly/), softmax cross-entropy, gradient-norm clipping
 * and AdamW with decoupled weight decay under a warmup + cosine schedule. Parameters live once, in
 * Hugging Face's layout and names, in wasm memory; linear weights are re-packed for the forward
 * GEMM after every step. One thread in the calling thread, or data parallel over a worker pool.
 *
 * Shapes: B images, C×H×W pixels, p patch, Np patches, T = Np + 1 tokens, D hidden, H heads,
 * dh = D/H, M MLP size, L labels.
 */
import { EPI, compileKernels, instantiateKernels, type KernelExports } from './kernels.js';
import { WasmMemory } from './memory.js';
import { sharedMemoryUnavailable, writeLocalFiles } from './platform.js';
import { WorkerPool } from './pool.js';
import { packRows, packedSize } from './pack.js';
import { encodeSafetensors, readSafetensorsHeader, TensorReader } from './safetensors.js';
import { modelFiles, type ModelLocation } from './source.js';
import { parseJson } from './config.js';

/** The shape of a ViT to train. */
export interface TrainDims {
  imageSize: [number, number];
  patchSize: number;
  numChannels: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  numLabels: number;
  layerNormEps: number;
}

/** Optimiser and schedule settings for {@link createTrainer}. */
export interface TrainOptions {
  /** Largest batch `step` and `evaluate` will see (activations are planned for it). Default 64. */
  maxBatch?: number;
  /** Peak learning rate. Default 1e-3. */
  lr?: number;
  /** Decoupled weight decay on the weight matrices (not biases, norms, cls or positions). Default 0.05. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  adamEps?: number;
  /** Linear warmup steps from 0 to `lr`. Default 0. */
  warmupSteps?: number;
  /** Cosine decay to 0 at this step; 0 keeps `lr` after the warmup. Default 0. */
  totalSteps?: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. Default 1. */
  clipNorm?: number;
  /** Seed of the initial weights (when not loaded from a checkpoint). Default 0. */
  seed?: number;
  /** Class labels for the saved config's id2label. Default "0", "1", … */
  labels?: string[];
  /** Start from this checkpoint (Hugging Face names) instead of random weights. */
  from?: ModelLocation;
  /** Workers for data-parallel training. Default 1 (in the calling thread). */
  threads?: number;
  /**
   * Where the training worker script is served, for pages whose Content-Security-Policy forbids
   * `blob:` workers: the package's `dist/train-worker.browser.js` (browsers) or `dist/train-worker.js` (Node).
   */
  workerUrl?: string | URL;
}

interface Param { name: string; shape: number[]; offset: number; size: number; decay: boolean }
interface Lin { w: number; b: number; N: number; K: number; packed: number }

/** The parameters in Hugging Face's names; query, key and value lie back to back so they form one (3D, D) matrix. */
function parameterList(d: TrainDims): Param[] {
  const D = d.hiddenSize, M = d.intermediateSize, C = d.numChannels, p = d.patchSize, L = d.numLabels;
  const T = (d.imageSize[0] / p) * (d.imageSize[1] / p) + 1;
  const list: Param[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], decay = false) => {
    const size = shape.reduce((a, b) => a * b, 1);
    list.push({ name, shape, offset, size, decay });
    offset += size;
  };
  const e = 'vit.embeddings.';
  add(`${e}patch_embeddings.projection.weight`, [D, C, p, p], true); add(`${e}patch_embeddings.projection.bias`, [D]);
  add(`${e}cls_token`, [1, 1, D]); add(`${e}position_embeddings`, [1, T, D]);
  for (let i = 0; i < d.numLayers; i++) {
    const l = `vit.encoder.layer.${i}.`, a = `${l}attention.attention.`;
    add(`${l}layernorm_before.weight`, [D]); add(`${l}layernorm_before.bias`, [D]);
    for (const q of ['query', 'key', 'value']) add(`${a}${q}.weight`, [D, D], true);
    for (const q of ['query', 'key', 'value']) add(`${a}${q}.bias`, [D]);
    add(`${l}attention.output.dense.weight`, [D, D], true); add(`${l}attention.output.dense.bias`, [D]);
    add(`${l}layernorm_after.weight`, [D]); add(`${l}layernorm_after.bias`, [D]);
    add(`${l}intermediate.dense.weight`, [M, D], true); add(`${l}intermediate.dense.bias`, [M]);
    add(`${l}output.dense.weight`, [D, M], true); add(`${l}output.dense.bias`, [D]);
  }
  add('vit.layernorm.weight', [D]); add('vit.layernorm.bias', [D]);
  add('classifier.weight', [L, D], true); add('classifier.bias', [L]);
  return list;
}

/** Index of the largest value (the first, on ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let j = 1; j < row.length; j++) if (row[j] > row[best]) best = j;
  return best;
}

type Options = Required<Omit<TrainOptions, 'from' | 'labels' | 'threads' | 'workerUrl'>> & { labels: string[] };

/**
 * Every pointer of a training run, from a bump allocator at `base`. A pure function of its
 * arguments, so each pool worker computes the same layout as the main thread.
 * Shared: parameters P, gradients G, Adam moments M and V, packed linear weights, per-worker norm
 * partials. Per worker: its gradient buffer (G itself when there is one worker) and activations.
 */
export function trainLayout(d: TrainDims, perWorker: number, workers: number, base: number) {
  let top = base;
  // 8 floats of slack after every buffer: the backward GEMM reads B rows 8 at a time
  const alloc = (floats: number) => { const p = top; top = Math.ceil((top + (floats + 8) * 4) / 64) * 64; return p; };
  const params = parameterList(d), n = params.reduce((s, p) => s + p.size, 0);
  const at = (name: string, base: number) => base + params.find((p) => p.name === name)!.offset * 4;
  const P = alloc(n), G = alloc(n), M = alloc(n), V = alloc(n), sq = alloc(workers);
  const D = d.hiddenSize, Mlp = d.intermediateSize, H = d.numHeads, L = d.numLabels, C = d.numChannels, p = d.patchSize;
  const Np = (d.imageSize[0] / p) * (d.imageSize[1] / p), T = Np + 1, K = C * p * p, T8 = Math.ceil(T / 8) * 8;
  const lin = (w: string, b: string, N: number, Kin: number): Lin => ({ w: at(w, P), b: at(b, P), N, K: Kin, packed: alloc(packedSize(N, Kin)) });
  const e = 'vit.embeddings.';
  const linears = {
    patch: lin(`${e}patch_embeddings.projection.weight`, `${e}patch_embeddings.projection.bias`, D, K),
    head: lin('classifier.weight', 'classifier.bias', L, D),
    layers: Array.from({ length: d.numLayers }, (_, i) => {
      const l = `vit.encoder.layer.${i}.`, a = `${l}attention.attention.`;
      return {
        qkv: lin(`${a}query.weight`, `${a}query.bias`, 3 * D, D), proj: lin(`${l}attention.output.dense.weight`, `${l}attention.output.dense.bias`, D, D),
        fc1: lin(`${l}intermediate.dense.weight`, `${l}intermediate.dense.bias`, Mlp, D), fc2: lin(`${l}output.dense.weight`, `${l}output.dense.bias`, D, Mlp),
        ln1: `${l}layernorm_before`, ln2: `${l}layernorm_after`,
      };
    }),
  };
  const B = perWorker, BT = B * T;
  const worker = () => ({
    G: workers === 1 ? G : alloc(n),
    layers: linears.layers.map(() => ({
      xin: alloc(BT * D), h1: alloc(BT * D), qkv: alloc(BT * 3 * D), probs: alloc(B * H * T * T), att: alloc(BT * D),
      xmid: alloc(BT * D), h2: alloc(BT * D), u: alloc(BT * Mlp), act: alloc(BT * Mlp),
    })),
    pixels: alloc(B * C * d.imageSize[0] * d.imageSize[1]), patches: alloc(B * Np * K), pe: alloc(B * Np * D), xout: alloc(BT * D),
    clsn: alloc(B * D), logits: alloc(B * L), labels: alloc(B), kt: alloc(D * T8), scratch: alloc(4 * T8),
    dx: alloc(BT * D), dh: alloc(BT * D), dact: alloc(BT * Mlp), du: alloc(BT * Mlp), datt: alloc(BT * D), dqkv: alloc(BT * 3 * D),
    dclsn: alloc(B * D), dlogits: alloc(B * L), dpe: alloc(B * Np * D),
  });
  const perWorkerBuffers = Array.from({ length: workers }, worker);
  return { params, n, P, G, M, V, sq, linears, workers: perWorkerBuffers, perWorker, T, Np, end: top };
}
export type TrainLayout = ReturnType<typeof trainLayout>;

/**
 * One worker's share of training over the shared layout: forward and backward of its images into
 * its own gradient buffer, then its range of the reduction, clipping norm, AdamW and re-packing.
 */
export class TrainCore {
  private readonly w: TrainLayout['workers'][number];
  private readonly range: [number, number];

  constructor(private readonly k: KernelExports, private readonly L: TrainLayout, private readonly d: TrainDims,
    private readonly o: Options, readonly id: number, readonly workers: number, private readonly memory: WebAssembly.Memory,
    private readonly sync: () => void = () => {}) {
    this.w = L.workers[id];
    const per = Math.ceil(L.n / workers);
    this.range = [Math.min(L.n, id * per), Math.min(L.n, (id + 1) * per)];
  }

  private f32(ptr: number, n: number) { return new Float32Array(this.memory.buffer, ptr, n); }
  private ptr(name: string, base = this.L.P) { return base + this.L.params.find((p) => p.name === name)!.offset * 4; }

  private gemm(x: number, l: Lin, y: number, rows: number, epi: number): void {
    this.k.gemm_4x8_simd(x, l.K, l.packed, l.b, y, l.N, rows, l.N, l.K, epi);
  }

  /** Forward over this worker's B images (already in its pixels buffer), keeping what the backward needs. */
  forward(B: number): void {
    const k = this.k, a = this.w, lin = this.L.linears, d = this.d, D = d.hiddenSize, T = this.L.T, H = d.numHeads, dh = D / H, eps = d.layerNormEps;
    const [Hpx, Wpx] = d.imageSize, BT = B * T;
    k.patchify_simd(a.pixels, a.patches, B, d.numChannels, Hpx, Wpx, d.patchSize);
    this.gemm(a.patches, lin.patch, a.pe, B * this.L.Np, EPI.STORE);
    k.embed_tokens_simd(a.pe, this.ptr('vit.embeddings.cls_token'), this.ptr('vit.embeddings.position_embeddings'), a.layers[0]?.xin ?? a.xout, B, T, D);
    lin.layers.forEach((l, i) => {
      const s = a.layers[i], next = a.layers[i + 1]?.xin ?? a.xout;
      k.layernorm_simd(s.xin, D, s.h1, D, this.ptr(`${l.ln1}.weight`), this.ptr(`${l.ln1}.bias`), BT, D, eps);
      this.gemm(s.h1, l.qkv, s.qkv, BT, EPI.STORE);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
        const qkv = s.qkv + b * T * 3 * D * 4;
        k.attention_pack_kt(qkv, a.kt, T, D, dh, h);
        k.attention_head_simd(qkv, a.kt, s.att + b * T * D * 4, a.scratch, s.probs + (b * H + h) * T * T * 4, T, D, dh, h, 1 / Math.sqrt(dh), 0, T);
      }
      this.f32(s.xmid, BT * D).set(this.f32(s.xin, BT * D));
      this.gemm(s.att, l.proj, s.xmid, BT, EPI.ADD);
      k.layernorm_simd(s.xmid, D, s.h2, D, this.ptr(`${l.ln2}.weight`), this.ptr(`${l.ln2}.bias`), BT, D, eps);
      this.gemm(s.h2, l.fc1, s.u, BT, EPI.STORE);
      k.gelu_simd(s.u, s.act, BT * d.intermediateSize);
      this.f32(next, BT * D).set(this.f32(s.xmid, BT * D));
      this.gemm(s.act, l.fc2, next, BT, EPI.ADD);
    });
    k.layernorm_simd(a.xout, T * D, a.clsn, D, this.ptr('vit.layernorm.weight'), this.ptr('vit.layernorm.bias'), B, D, eps);
    this.gemm(a.clsn, lin.head, a.logits, B, EPI.STORE);
  }

  /** dX (R, Kin) = dY (R, N) · W (N, Kin); dW += dYᵀ · X; db += Σ dY — into this worker's gradients. */
  private linearBackward(l: Lin, x: number, dy: number, dx: number, R: number): void {
    const k = this.k, gw = this.w.G + (l.w - this.L.P), gb = this.w.G + (l.b - this.L.P);
    if (dx) k.gemm_4x8_strided_simd(dy, l.N * 4, 4, l.w, l.K * 4, dx, l.K, R, l.K, l.N, EPI.STORE);
    k.gemm_4x8_strided_simd(dy, 4, l.N * 4, x, l.K * 4, gw, l.K, l.N, l.K, R, EPI.ADD);
    k.colsum_simd(dy, gb, R, l.N);
  }

  /**
   * Forward and backward of this worker's B images (labels in its buffer), gradients scaled as the
   * mean over all `total` images of the step. Returns the summed loss of its images.
   */
  forwardBackward(B: number, total: number): number {
    this.f32(this.w.G, this.L.n).fill(0);
    if (B === 0) return 0;
    this.forward(B);
    const k = this.k, a = this.w, lin = this.L.linears, d = this.d, D = d.hiddenSize, T = this.L.T, H = d.numHeads, dh = D / H, eps = d.layerNormEps;
    const BT = B * T, g = (name: string) => this.ptr(name, a.G);
    const loss = k.softmax_xent_simd(a.logits, a.labels, a.dlogits, B, d.numLabels) * B;
    if (B !== total) { const dl = this.f32(a.dlogits, B * d.numLabels); for (let i = 0; i < dl.length; i++) dl[i] *= B / total; }
    this.linearBackward(lin.head, a.clsn, a.dlogits, a.dclsn, B);
    this.f32(a.dx, BT * D).fill(0);
    // the final norm saw only the cls rows (row stride T·D)
    k.layernorm_bwd_simd(a.xout, T * D, a.dclsn, a.dx, this.ptr('vit.layernorm.weight'), g('vit.layernorm.weight'), g('vit.layernorm.bias'), B, D, eps);
    for (let i = lin.layers.length - 1; i >= 0; i--) {
      const l = lin.layers[i], s = a.layers[i];
      // in the forward: next = xmid + fc2(gelu(fc1(ln2(xmid))))
      this.linearBackward(l.fc2, s.act, a.dx, a.dact, BT);
      k.gelu_bwd_simd(s.u, a.dact, a.du, BT * d.intermediateSize);
      this.linearBackward(l.fc1, s.h2, a.du, a.dh, BT);
      k.layernorm_bwd_simd(s.xmid, D, a.dh, a.dx, this.ptr(`${l.ln2}.weight`), g(`${l.ln2}.weight`), g(`${l.ln2}.bias`), BT, D, eps);
      // in the forward: xmid = xin + proj(attention(qkv(ln1(xin))))
      this.linearBackward(l.proj, s.att, a.dx, a.datt, BT);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
        k.attention_bwd_simd(s.qkv + b * T * 3 * D * 4, s.probs + (b * H + h) * T * T * 4, a.datt + b * T * D * 4, a.dqkv + b * T * 3 * D * 4,
          a.scratch, T, D, dh, h, 1 / Math.sqrt(dh));
      }
      this.linearBackward(l.qkv, s.h1, a.dqkv, a.dh, BT);
      k.layernorm_bwd_simd(s.xin, D, a.dh, a.dx, this.ptr(`${l.ln1}.weight`), g(`${l.ln1}.weight`), g(`${l.ln1}.bias`), BT, D, eps);
    }
    k.embed_tokens_bwd_simd(a.dx, a.dpe, g('vit.embeddings.cls_token'), g('vit.embeddings.position_embeddings'), B, T, D);
    this.linearBackward(lin.patch, a.patches, a.dpe, 0, B * this.L.Np);
    return loss;
  }

  /**
   * After every worker's forwardBackward: sums the worker gradients into G over this worker's range
   * (always in worker order 0, 1, …, so a run is reproducible for a thread count), clips by the
   * global norm, takes the AdamW step, re-packs. Barriers between the phases.
   */
  update(t: number, lr: number): void {
    this.sync(); // every worker's gradients are complete
    const [i0, i1] = this.range, L = this.L, n = L.n;
    const G = this.f32(L.G, n);
    if (this.workers > 1) {
      const parts = L.workers.map((w) => this.f32(w.G, n));
      for (let i = i0; i < i1; i++) { let s = 0; for (const p of parts) s += p[i]; G[i] = s; }
    }
    let sq = 0;
    for (let i = i0; i < i1; i++) sq += G[i] * G[i];
    this.f32(L.sq, this.workers)[this.id] = sq;
    this.sync();
    const parts = this.f32(L.sq, this.workers);
    let total = 0;
    for (let w = 0; w < this.workers; w++) total += parts[w];
    const o = this.o, norm = Math.sqrt(total), scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
    const P = this.f32(L.P, n), M = this.f32(L.M, n), V = this.f32(L.V, n), c1 = 1 - o.beta1 ** t, c2 = 1 - o.beta2 ** t;
    for (const p of L.params) {
      const a = Math.max(p.offset, i0), b = Math.min(p.offset + p.size, i1);
      const decay = p.decay ? lr * o.weightDecay : 0;
      for (let i = a; i < b; i++) {
        const gi = G[i] * scale;
        M[i] = o.beta1 * M[i] + (1 - o.beta1) * gi;
        V[i] = o.beta2 * V[i] + (1 - o.beta2) * gi * gi;
        P[i] -= decay * P[i] + (lr * (M[i] / c1)) / (Math.sqrt(V[i] / c2) + o.adamEps);
      }
    }
    this.sync();
    this.repack();
    this.sync();
  }

  /** Re-packs this worker's share of the linear weights for the forward GEMM. */
  repack(all = false): void {
    const lin = this.L.linears, list = [lin.patch, lin.head, ...lin.layers.flatMap((l) => [l.qkv, l.proj, l.fc1, l.fc2])];
    list.forEach((l, j) => {
      if (all || j % this.workers === this.id) packRows(this.f32(l.packed, packedSize(l.N, l.K)), this.f32(l.w, l.N * l.K), 0, l.N, l.K);
    });
  }
}

/** A training job for a pool worker. */
export type TrainJob = { kind: 'step'; counts: number[]; total: number; t: number; lr: number } | { kind: 'forward'; counts: number[] };
export interface TrainWorkerInit {
  module: WebAssembly.Module; memory: WebAssembly.Memory; dims: TrainDims; options: Options; perWorker: number; workers: number; id: number; base: number;
}

/** A ViT being trained. Create with {@link createTrainer}. */
export class Trainer {
  /** Optimiser steps taken. */
  stepCount = 0;
  /** Threads the training runs on. */
  readonly threads: number;
  private lastCounts: number[] = [];
  private predictions: Int32Array = new Int32Array(0);
  private readonly L: TrainLayout;

  /** @internal use {@link createTrainer} */
  constructor(readonly dims: TrainDims, readonly options: Options, private readonly mem: WasmMemory,
    private readonly core: TrainCore | null, private readonly pool: WorkerPool<TrainWorkerInit, TrainJob, number> | null, layout: TrainLayout) {
    this.L = layout;
    this.threads = pool ? layout.workers.length : 1;
  }

  private f32(ptr: number, n: number) { return this.mem.f32(ptr, n); }

  /** Spreads B images over the workers, copying pixels and labels into their buffers. */
  private distribute(images: Float32Array, labels: ArrayLike<number> | null, B: number): number[] {
    const d = this.dims, per = d.numChannels * d.imageSize[0] * d.imageSize[1], W = this.L.workers.length;
    if (!Number.isInteger(B) || B < 1 || B > this.options.maxBatch) throw new Error(`vit-wasm: batch ${B} is outside 1…${this.options.maxBatch} (maxBatch)`);
    if (images.length !== B * per) throw new Error(`vit-wasm: got ${images.length} floats, expected ${B} × ${per}`);
    const counts = Array.from({ length: W }, (_, w) => Math.floor((B * (w + 1)) / W) - Math.floor((B * w) / W));
    let start = 0;
    counts.forEach((c, w) => {
      const buf = this.L.workers[w];
      this.f32(buf.pixels, c * per).set(images.subarray(start * per, (start + c) * per));
      if (labels) {
        const lab = new Int32Array(this.mem.memory.buffer, buf.labels, c);
        for (let i = 0; i < c; i++) {
          const y = labels[start + i];
          if (!Number.isInteger(y) || y < 0 || y >= d.numLabels) throw new Error(`vit-wasm: label ${start + i} is ${y}, not a class 0…${d.numLabels - 1}`);
          lab[i] = y;
        }
      }
      start += c;
    });
    this.lastCounts = counts;
    return counts;
  }

  /** Loss and gradients of one batch, without an update (one thread). */
  lossAndGradients(images: Float32Array, labels: ArrayLike<number>): number {
    if (!this.core) throw new Error('vit-wasm: lossAndGradients runs on a one-thread trainer');
    const counts = this.distribute(images, labels, labels.length);
    return this.core.forwardBackward(counts[0], labels.length) / labels.length;
  }

  /** Gradients of the last `lossAndGradients`/`step` (the batch mean, before clipping), by Hugging Face name. */
  gradients(): Map<string, Float32Array> {
    return new Map(this.L.params.map((p) => [p.name, this.f32(this.L.G + p.offset * 4, p.size).slice()]));
  }

  /** Current parameters, by Hugging Face name. */
  parameters(): Map<string, Float32Array> {
    return new Map(this.L.params.map((p) => [p.name, this.f32(this.L.P + p.offset * 4, p.size).slice()]));
  }

  /** Learning rate at step `t` (1-based): linear warmup, then cosine decay to 0 at totalSteps. */
  learningRate(t: number): number {
    const { lr, warmupSteps: w, totalSteps: total } = this.options;
    if (w > 0 && t <= w) return (lr * t) / w;
    if (!total || total <= w) return lr;
    const f = Math.min(1, (t - w) / (total - w));
    return lr * 0.5 * (1 + Math.cos(Math.PI * f));
  }

  /** One optimiser step on a batch (images (B, C, H, W) normalized, labels (B)): forward, backward, clip, AdamW. Resolves to the batch's mean loss. */
  async step(images: Float32Array, labels: ArrayLike<number>): Promise<number> {
    const B = labels.length;
    // The batch is copied now, so the caller may reuse its buffers at once. It is written into the
    // workers' buffers, the step counted and the outputs read inside the pool's turn, so concurrent
    // calls run one after another in call order, each on its own batch.
    const x = images.slice(), y = Array.from(labels);
    const begin = () => {
      const counts = this.distribute(x, y, B), t = ++this.stepCount;
      return { kind: 'step' as const, counts, total: B, t, lr: this.learningRate(t) };
    };
    if (this.core) {
      const { t, lr } = begin(); // one thread: the whole step runs synchronously, so nothing can come between
      const loss = this.core.forwardBackward(B, B);
      this.predictions = this.predicted();
      this.core.update(t, lr);
      return loss / B;
    }
    return this.pool!.run(begin, (losses) => {
      this.predictions = this.predicted();
      return losses.reduce((a, b) => a + b, 0) / B;
    });
  }

  /** Predicted classes of the batch whose logits are in the workers' buffers. */
  private predicted(): Int32Array {
    const L = this.dims.numLabels, out: number[] = [];
    this.lastCounts.forEach((c, w) => {
      const z = this.f32(this.L.workers[w].logits, c * L);
      for (let b = 0; b < c; b++) out.push(argmax(z.subarray(b * L, (b + 1) * L)));
    });
    return Int32Array.from(out);
  }

  /** Predicted classes of the batch of the last `step` that finished (from its forward, before its update). */
  lastPredictions(): Int32Array {
    return this.predictions;
  }

  /** Logits of B images, (B, L). */
  async logits(images: Float32Array, B: number): Promise<Float32Array> {
    const L = this.dims.numLabels, x = images.slice(); // taken now: the caller may reuse its buffer
    let counts: number[] = [];
    const begin = (): TrainJob => ({ kind: 'forward', counts: counts = this.distribute(x, null, B) });
    const read = () => {
      const out = new Float32Array(B * L);
      let o = 0;
      counts.forEach((c, w) => { out.set(this.f32(this.L.workers[w].logits, c * L), o); o += c * L; });
      return out;
    };
    if (this.core) {
      begin();
      this.core.forward(B);
      return read();
    }
    return this.pool!.run(begin, read);
  }

  /** Accuracy, mean loss and predicted classes over a set, in batches of maxBatch. */
  async evaluate(images: Float32Array, labels: ArrayLike<number>): Promise<{ accuracy: number; loss: number; predictions: Int32Array }> {
    const per = images.length / labels.length, L = this.dims.numLabels, n = labels.length, pred = new Int32Array(n);
    let correct = 0, loss = 0;
    for (let s = 0; s < n; s += this.options.maxBatch) {
      const B = Math.min(this.options.maxBatch, n - s);
      const z = await this.logits(images.subarray(s * per, (s + B) * per), B);
      for (let b = 0; b < B; b++) {
        const row = z.subarray(b * L, (b + 1) * L), best = argmax(row), m = row[best];
        let se = 0;
        for (let j = 0; j < L; j++) se += Math.exp(row[j] - m);
        loss += Math.log(se) - (row[labels[s + b]] - m);
        pred[s + b] = best;
        correct += +(best === labels[s + b]);
      }
    }
    return { accuracy: correct / n, loss: loss / n, predictions: pred };
  }

  /** The model in the Hugging Face layout: config.json, model.safetensors, preprocessor_config.json. */
  files(preprocessing: Record<string, unknown> = {}): Record<string, Uint8Array | string> {
    const d = this.dims;
    const tensors = this.L.params.map((p) => ({ name: p.name, shape: p.shape, data: this.f32(this.L.P + p.offset * 4, p.size) }));
    const config = {
      architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_size: d.hiddenSize, num_hidden_layers: d.numLayers,
      num_attention_heads: d.numHeads, intermediate_size: d.intermediateSize, hidden_act: 'gelu', layer_norm_eps: d.layerNormEps,
      image_size: d.imageSize[0] === d.imageSize[1] ? d.imageSize[0] : d.imageSize, patch_size: d.patchSize, num_channels: d.numChannels,
      qkv_bias: true, id2label: Object.fromEntries(this.options.labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(this.options.labels.map((l, i) => [l, i])),
    };
    const C = d.numChannels;
    const pre = { do_resize: true, size: { height: d.imageSize[0], width: d.imageSize[1] }, resample: 2, do_rescale: true,
      rescale_factor: 1 / 255, do_normalize: true, image_mean: Array(C).fill(0.5), image_std: Array(C).fill(0.5), ...preprocessing };
    return {
      'config.json': JSON.stringify(config, null, 2),
      'model.safetensors': encodeSafetensors(tensors, { format: 'pt', trainer: 'vit-wasm', steps: String(this.stepCount) }),
      'preprocessor_config.json': JSON.stringify(pre, null, 2),
    };
  }

  /** Writes {@link files} into a directory (Node). */
  async save(dir: string, preprocessing?: Record<string, unknown>): Promise<void> {
    await writeLocalFiles(dir, this.files(preprocessing));
  }

  /** Stops the workers (a pool trainer). */
  async dispose(): Promise<void> { await this.pool?.dispose(); }
}

/** Initial weights: a checkpoint in Hugging Face names, or HF's initialisation from `seed`. */
async function initialise(P: Float32Array, params: Param[], from: ModelLocation | undefined, seed: number): Promise<void> {
  if (from) {
    const files = await modelFiles(from);
    const src = await files.open('model.safetensors');
    try {
      const tensors = await readSafetensorsHeader(src);
      const reader = new TensorReader(tensors.values());
      for (const p of params) {
        const t = tensors.get(p.name);
        if (!t) throw new Error(`vit-wasm: ${src.name}: missing tensor '${p.name}' (training starts from Hugging Face names)`);
        if (t.shape.reduce((a, b) => a * b, 1) !== p.size) throw new Error(`vit-wasm: ${src.name}: tensor '${p.name}' has shape [${t.shape}], expected [${p.shape}]`);
        P.set(await reader.read(t), p.offset);
      }
    } finally {
      await src.close();
    }
    return;
  }
  // HF's ViT initialisation: weights, cls and positions N(0, 0.02); biases 0; norms γ = 1, β = 0
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  const uniform = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 0.5) / 4294967296; };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (const p of params) {
    const v = P.subarray(p.offset, p.offset + p.size);
    if (p.name.endsWith('layernorm_before.weight') || p.name.endsWith('layernorm_after.weight') || p.name === 'vit.layernorm.weight') v.fill(1);
    else if (p.decay || p.name.endsWith('cls_token') || p.name.endsWith('position_embeddings')) for (let i = 0; i < v.length; i++) v[i] = 0.02 * normal();
    else v.fill(0);
  }
}

/** Reads the dimensions of a checkpoint's config.json for training. */
async function dimsFrom(where: ModelLocation): Promise<TrainDims> {
  const files = await modelFiles(where);
  const c = parseJson(await files.text('config.json'), `${files.where}/config.json`) as Record<string, number | number[]>;
  const size = c.image_size;
  return {
    imageSize: Array.isArray(size) ? [size[0], size[1]] : [size as number, size as number], patchSize: c.patch_size as number,
    numChannels: (c.num_channels as number) ?? 3, hiddenSize: c.hidden_size as number, numLayers: c.num_hidden_layers as number,
    numHeads: c.num_attention_heads as number, intermediateSize: c.intermediate_size as number,
    numLabels: (c.num_labels as number) ?? Object.keys(c.id2label ?? {}).length, layerNormEps: (c.layer_norm_eps as number) ?? 1e-12,
  };
}

/**
 * A trainer for a ViT of the given dimensions (or of a checkpoint's, with `options.from`). With
 * `threads` > 1 the batch is split over a pool of workers on one shared memory (data parallel);
 * their gradients are summed in worker order, so a run is reproducible for a seed and thread count.
 * @example
 * const t = await createTrainer(dims, { lr: 1e-3, maxBatch: 64, threads: 2 });
 * const loss = await t.step(images, labels);   // images (B, C, H, W) normalized, labels (B)
 * const { accuracy } = await t.evaluate(testImages, testLabels);
 * await t.save('my-model');                    // loadModel('my-model') classifies with it
 * await t.dispose();
 */
export async function createTrainer(dims: TrainDims | null, options: TrainOptions = {}): Promise<Trainer> {
  const d = dims ?? (options.from ? await dimsFrom(options.from) : null);
  if (!d) throw new Error('vit-wasm: createTrainer needs dimensions or options.from');
  for (const [k, v] of Object.entries({ patchSize: d.patchSize, numChannels: d.numChannels, hiddenSize: d.hiddenSize, numLayers: d.numLayers,
    numHeads: d.numHeads, intermediateSize: d.intermediateSize, numLabels: d.numLabels, height: d.imageSize[0], width: d.imageSize[1] })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`vit-wasm: ${k} must be a positive integer, got ${v}`);
  }
  if (d.hiddenSize % d.numHeads) throw new Error(`vit-wasm: hiddenSize ${d.hiddenSize} is not divisible by numHeads ${d.numHeads}`);
  if (d.imageSize[0] % d.patchSize || d.imageSize[1] % d.patchSize) throw new Error(`vit-wasm: image size ${d.imageSize} is not divisible by patchSize ${d.patchSize}`);
  const threads = options.threads ?? 1;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`vit-wasm: threads must be a positive integer, got ${threads}`);
  const o: Options = {
    maxBatch: options.maxBatch ?? 64, lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 0.05, beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999, adamEps: options.adamEps ?? 1e-8, warmupSteps: options.warmupSteps ?? 0, totalSteps: options.totalSteps ?? 0,
    clipNorm: options.clipNorm ?? 1, seed: options.seed ?? 0,
    labels: options.labels ?? Array.from({ length: d.numLabels }, (_, i) => String(i)),
  };
  const pooled = threads > 1 && sharedMemoryUnavailable() === null;
  const W = pooled ? threads : 1, perWorker = Math.ceil(o.maxBatch / W);
  const { module } = await compileKernels('simd', pooled);
  const mem = new WasmMemory(pooled);
  const base = mem.end, layout = trainLayout(d, perWorker, W, base);
  mem.alloc((layout.end - base) / 4);
  await initialise(mem.f32(layout.P, layout.n), layout.params, options.from, o.seed);
  if (!pooled) {
    const core = new TrainCore(instantiateKernels(module, mem.memory), layout, d, o, 0, 1, mem.memory);
    core.repack(true);
    return new Trainer(d, o, mem, core, null, layout);
  }
  instantiateKernels(module, mem.memory); // writes the kernels' constants
  const pool = new WorkerPool<TrainWorkerInit, TrainJob, number>({
    workers: W, memory: mem.memory, kind: 'train-worker', workerUrl: options.workerUrl,
    init: (id) => ({ module, memory: mem.memory, dims: d, options: o, perWorker, workers: W, id, base }),
  });
  await pool.started();
  new TrainCore(instantiateKernels(module, mem.memory), layout, d, o, 0, 1, mem.memory).repack(true);
  return new Trainer(d, o, mem, null, pool, layout);
}
