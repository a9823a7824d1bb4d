/**
 * Training, the public side: the Trainer (made by src/train/create.ts). Cross-entropy, backprop
 * through src/nn/vit.ts, gradient-norm clipping and AdamW with decoupled weight decay under a
 * warmup + cosine schedule. Parameters live once, in Hugging Face's layout and names, in wasm
 * memory; linear weights are re-packed for the forward GEMM after every step.
 */

import type { PreprocessConfig } from '../io/config.js';
import type { TensorOut } from '../io/safetensors.js';
import { writeLocalFiles } from '../platform/platform.js';
import type { WasmMemory } from '../runtime/memory.js';
import type { WorkerPool } from '../runtime/pool.js';
import { argmax, type Options, type TrainCore, type TrainJob, type TrainLayout, type TrainWorkerInit } from './core.js';
import { type Dataset, evaluateTrainer, type FitOptions, type FitResult, fitTrainer } from './fit.js';
import type { HostedInit, HostedJob, HostedResult } from './hosted.js';
import { MAX_MICRO_BATCHES, scheduledRate, type TrainDims, type TrainOptions } from './options.js';
import { modelFilesOf, type TrainSpec } from './spec.js';

export type { TrainDims, TrainOptions };
export { argmax };

/** Where a trainer's steps run. */
type Backend =
  /** In the calling thread: a TrainCore over the trainer's own memory. */
  | { kind: 'inline'; mem: WasmMemory; core: TrainCore }
  /** Data parallel over workers sharing the trainer's memory. */
  | { kind: 'pool'; mem: WasmMemory; pool: WorkerPool<TrainWorkerInit, TrainJob, number> }
  /** One worker with its own memory (no SharedArrayBuffer): parameters mirrored after every step. */
  | { kind: 'hosted'; pool: WorkerPool<HostedInit, HostedJob, HostedResult>; mirror: Float32Array };

/** A ViT being trained. Create with {@link createTrainer}. */
export class Trainer {
  /** Optimiser steps taken. */
  stepCount = 0;
  /** Threads the training runs on. */
  readonly threads: number;
  /**
   * Where the steps run: `'calling thread'`, `'workers'` (shared memory), or `'worker'` (one worker
   * with its own memory, where memory cannot be shared: the calling thread stays free).
   */
  readonly runsIn: 'calling thread' | 'workers' | 'worker';
  private lastCounts: number[] = [];
  private predictions: Int32Array = new Int32Array(0);
  private readonly L: TrainLayout;

  /** @internal use {@link createTrainer} */
  constructor(
    readonly dims: TrainDims,
    readonly options: Options,
    private readonly backend: Backend,
    layout: TrainLayout,
    /** What it trains and writes (src/train/spec.ts). */
    private readonly spec: TrainSpec,
    /** Checkpoint tensors written back as they were. */
    private readonly carried: TensorOut[] = [],
  ) {
    this.L = layout;
    this.threads = backend.kind === 'pool' ? layout.workers.length : 1;
    this.runsIn = ({ inline: 'calling thread', pool: 'workers', hosted: 'worker' } as const)[backend.kind];
  }

  /** The trainer's wasm memory (a hosted trainer's is in its worker). */
  private mem() {
    if (this.backend.kind === 'hosted') throw new Error('vit-wasm: internal: a hosted trainer has no local memory');
    return this.backend.mem;
  }

  private f32(ptr: number, n: number) {
    return this.mem().f32(ptr, n);
  }

  private i32(ptr: number, n: number) {
    return new Int32Array(this.mem().memory.buffer, ptr, n);
  }

  /** Parameter `p`'s values: in the shared memory, or the hosted trainer's mirror. */
  private param(p: TrainLayout['params'][number]): Float32Array {
    const b = this.backend;
    return b.kind === 'hosted'
      ? b.mirror.subarray(p.offset, p.offset + p.size)
      : this.f32(this.L.P + p.offset * 4, p.size);
  }

  /**
   * Checks a batch: B in 1…`limit` (maxBatch for a forward; a step takes more, in micro-batches),
   * B images' floats, labels that are classes.
   */
  private check(
    images: Float32Array,
    labels: ArrayLike<number> | null,
    B: number,
    limit = this.options.maxBatch,
  ): void {
    const d = this.dims,
      per = d.numChannels * d.imageSize[0] * d.imageSize[1];
    if (!Number.isInteger(B) || B < 1 || B > limit)
      throw new Error(
        `vit-wasm: batch ${B} is outside 1…${limit} (${limit === this.options.maxBatch ? 'maxBatch' : `${MAX_MICRO_BATCHES} micro-batches of maxBatch`})`,
      );
    if (!(images instanceof Float32Array))
      throw new Error(
        `vit-wasm: images must be a Float32Array (B, C, H, W), got ${(images as unknown as object)?.constructor?.name ?? images}`,
      );
    if (images.length !== B * per) throw new Error(`vit-wasm: got ${images.length} floats, expected ${B} × ${per}`);
    if (labels)
      for (let i = 0; i < B; i++) {
        const y = labels[i];
        if (!Number.isInteger(y) || y < 0 || y >= d.numLabels)
          throw new Error(`vit-wasm: label ${i} is ${y}, not a class 0…${d.numLabels - 1}`);
      }
  }

  /** Spreads B images over the workers, copying pixels and labels into their buffers. */
  private distribute(images: Float32Array, labels: ArrayLike<number> | null, B: number): number[] {
    const d = this.dims,
      per = d.numChannels * d.imageSize[0] * d.imageSize[1],
      W = this.L.workers.length;
    this.check(images, labels, B);
    const counts = Array.from({ length: W }, (_, w) => Math.floor((B * (w + 1)) / W) - Math.floor((B * w) / W));
    let start = 0;
    counts.forEach((c, w) => {
      const buf = this.L.workers[w];
      this.f32(buf.acts.pixels, c * per).set(images.subarray(start * per, (start + c) * per));
      if (labels) {
        const lab = this.i32(buf.bwd.labels, c);
        for (let i = 0; i < c; i++) lab[i] = labels[start + i];
      }
      start += c;
    });
    this.lastCounts = counts;
    return counts;
  }

  /**
   * Loss and gradients of one batch, without an update (a trainer that runs in the calling thread);
   * a batch over maxBatch in micro-batches, as {@link step}.
   */
  lossAndGradients(images: Float32Array, labels: ArrayLike<number>): number {
    const b = this.backend;
    if (b.kind !== 'inline')
      throw new Error(
        `vit-wasm: lossAndGradients runs on a trainer in the calling thread, this one runs in ${this.runsIn} (createTrainer with threads: 1, isolate: false)`,
      );
    const B = labels.length;
    this.check(images, labels, B, this.stepLimit());
    let loss = 0;
    for (const [s, n] of this.microBatches(B))
      loss += b.core.forwardBackward(this.distributeSlice(images, labels, s, n)[0], B, s === 0);
    return loss / B;
  }

  /** The largest batch a step takes: {@link MAX_MICRO_BATCHES} micro-batches of maxBatch. */
  private stepLimit(): number {
    return this.options.maxBatch * MAX_MICRO_BATCHES;
  }

  /** [start, count] of each micro-batch of a step of B images: maxBatch each, the last the rest. */
  private microBatches(B: number): [number, number][] {
    const max = this.options.maxBatch,
      out: [number, number][] = [];
    for (let s = 0; s < B; s += max) out.push([s, Math.min(max, B - s)]);
    return out;
  }

  /** {@link distribute} of images s … s+n−1 of a batch. */
  private distributeSlice(images: Float32Array, labels: ArrayLike<number>, s: number, n: number): number[] {
    const per = images.length / labels.length;
    return this.distribute(images.subarray(s * per, (s + n) * per), Array.from(labels).slice(s, s + n), n);
  }

  /** The family it trains and writes: 'vit', or the family fine-tuned ('deit', 'dinov2', 'clip', 'siglip'). */
  get family(): string {
    return this.spec.family;
  }

  /**
   * Gradients of the last `lossAndGradients`/`step` (the batch mean, before clipping), by the
   * names of the model it writes (Hugging Face's).
   */
  gradients(): Map<string, Float32Array> {
    if (this.backend.kind === 'hosted')
      throw new Error('vit-wasm: gradients() reads shared memory; this trainer runs in a worker of its own');
    return new Map(this.written().map((p) => [p.name, this.f32(this.L.G + p.offset * 4, p.size).slice()]));
  }

  /** Current parameters, by the names of the model it writes (Hugging Face's). */
  parameters(): Map<string, Float32Array> {
    return new Map(this.written().map((p) => [p.name, this.param(p).slice()]));
  }

  /** The parameters the model has (not the parts it lacks, held at zero: CLIP's patch bias). */
  private written() {
    return this.L.params.filter((p) => !p.fixed);
  }

  /**
   * AdamW's state, to resume a run exactly: the step count and both moments (Hugging Face layout,
   * parameter by parameter, as {@link parameters}). Not on a trainer hosted in a worker of its own.
   */
  optimizerState(): { step: number; m: Float32Array; v: Float32Array } {
    if (this.backend.kind === 'hosted')
      throw new Error('vit-wasm: optimizerState() reads shared memory; this trainer runs in a worker of its own');
    return {
      step: this.stepCount,
      m: this.f32(this.L.adamM, this.L.n).slice(),
      v: this.f32(this.L.adamV, this.L.n).slice(),
    };
  }

  /** Restores {@link optimizerState} (the parameters come from `from`): the next step is step `step + 1`. */
  restoreOptimizer(s: { step: number; m: Float32Array; v: Float32Array }): void {
    if (this.backend.kind === 'hosted')
      throw new Error('vit-wasm: restoreOptimizer() writes shared memory; this trainer runs in a worker of its own');
    if (!Number.isInteger(s.step) || s.step < 0)
      throw new Error(`vit-wasm: optimizer state: step ${s.step} is not a count`);
    for (const [k, a] of [
      ['m', s.m],
      ['v', s.v],
    ] as const)
      if (!(a instanceof Float32Array) || a.length !== this.L.n)
        throw new Error(
          `vit-wasm: optimizer state: ${k} has ${a?.length} values, this model has ${this.L.n} parameters`,
        );
    this.f32(this.L.adamM, this.L.n).set(s.m);
    this.f32(this.L.adamV, this.L.n).set(s.v);
    this.stepCount = s.step;
  }

  /** Learning rate at step `t` (1-based): linear warmup, then cosine decay to 0 at totalSteps. */
  learningRate(t: number): number {
    return scheduledRate(this.options, t);
  }

  /**
   * One optimiser step on a batch (images (B, C, H, W) normalized, labels (B)): forward, backward,
   * clip, AdamW. Resolves to the batch's mean loss. A batch larger than maxBatch (up to
   * {@link MAX_MICRO_BATCHES} times it) runs as micro-batches of maxBatch whose gradients add up
   * before the one update: gradient accumulation, for batches larger than memory allows. Its
   * gradients are the batch mean, as one pass would give, up to float rounding.
   */
  async step(images: Float32Array, labels: ArrayLike<number>): Promise<number> {
    const B = labels.length,
      b = this.backend;
    this.check(images, labels, B, this.stepLimit());
    if (b.kind === 'hosted') {
      const t = ++this.stepCount,
        job: HostedJob = {
          kind: 'hosted-step',
          x: images.slice(),
          y: Int32Array.from(labels),
          B,
          t,
          lr: this.learningRate(t),
        };
      const r = await b.pool.run(job, ([res]) => res);
      b.mirror = r.params!;
      this.predictions = this.argmaxRows(r.logits, B);
      return r.loss / B;
    }
    // The batch is copied now, so the caller may reuse its buffers at once. Each micro-batch is
    // written into the workers' buffers, the step counted and the outputs read inside the pool's
    // turn; all of a step's turns are queued at once, so concurrent calls run one after another in
    // call order, each on its own batch.
    const x = images.slice(),
      y = Array.from(labels),
      parts = this.microBatches(B),
      predictions: Int32Array[] = [];
    let t = 0;
    const begin = (s: number, n: number): TrainJob => {
      const counts = this.distributeSlice(x, y, s, n);
      if (s === 0) t = ++this.stepCount;
      const last = s + n === B;
      return { kind: 'step', counts, total: B, t, lr: last ? this.learningRate(t) : 0, first: s === 0, last };
    };
    const done = (losses: number[]) => {
      predictions.push(this.predicted());
      return losses.reduce((a, c) => a + c, 0);
    };
    let loss = 0;
    if (b.kind === 'inline')
      // one thread: the whole step runs synchronously, so nothing can come between
      for (const [s, n] of parts) {
        const job = begin(s, n);
        const l = b.core.forwardBackward(n, B, job.kind === 'step' && job.first);
        loss += done([l]);
        if (job.kind === 'step' && job.last) b.core.update(job.t, job.lr);
      }
    else
      loss = (await Promise.all(parts.map(([s, n]) => b.pool.run(() => begin(s, n), done)))).reduce((a, c) => a + c, 0);
    this.predictions = predictions.length === 1 ? predictions[0] : Int32Array.from(predictions.flatMap((p) => [...p]));
    return loss / B;
  }

  /** The argmax of each of B rows of logits (B, L). */
  private argmaxRows(z: Float32Array, B: number): Int32Array {
    const L = this.dims.numLabels;
    return Int32Array.from({ length: B }, (_, i) => argmax(z.subarray(i * L, (i + 1) * L)));
  }

  /** The logits (B, L) in the workers' buffers, `counts[w]` rows from worker w, in worker order. */
  private gatherLogits(counts: number[]): Float32Array {
    const L = this.dims.numLabels,
      out = new Float32Array(counts.reduce((a, c) => a + c, 0) * L);
    let o = 0;
    counts.forEach((c, w) => {
      out.set(this.f32(this.L.workers[w].acts.logits, c * L), o);
      o += c * L;
    });
    return out;
  }

  /** Predicted classes of the batch of the last distribute, from the logits in the workers' buffers. */
  private predicted(): Int32Array {
    const counts = this.lastCounts;
    return this.argmaxRows(
      this.gatherLogits(counts),
      counts.reduce((a, c) => a + c, 0),
    );
  }

  /** Predicted classes of the batch of the last `step` that finished (from its forward, before its update). */
  lastPredictions(): Int32Array {
    return this.predictions;
  }

  /** Logits of B images, (B, L). */
  async logits(images: Float32Array, B: number): Promise<Float32Array> {
    const b = this.backend;
    if (b.kind === 'hosted') {
      this.check(images, null, B);
      const job: HostedJob = { kind: 'hosted-forward', x: images.slice(), B };
      return b.pool.run(job, ([res]) => res.logits);
    }
    const x = images.slice(); // taken now: the caller may reuse its buffer
    let counts: number[] = [];
    const begin = (): TrainJob => {
      counts = this.distribute(x, null, B);
      return { kind: 'forward', counts };
    };
    const read = () => this.gatherLogits(counts);
    if (b.kind === 'inline') {
      begin();
      b.core.forward(B);
      return read();
    }
    return b.pool.run(begin, read);
  }

  /**
   * Trains for some epochs on labelled images: each batch read (any image `readImage` takes, or
   * inputs already normalized), augmented and normalized, one {@link step} per batch; validation
   * accuracy after every epoch; stops after the current step when `signal` aborts.
   * @example
   * const { classes, examples } = imageFolder('photos');           // Node; filesDataset(input.files) in a page
   * const t = await createTrainer(null, { from: 'vit-dir', newHead: true, labels: classes, maxBatch: 32 });
   * await t.fit(examples, { epochs: 3, onStep: (s) => console.log(s.step, s.loss) });
   */
  fit(data: Dataset, options: FitOptions = {}): Promise<FitResult> {
    return fitTrainer(this, data, options);
  }

  /** Accuracy, mean loss and predicted classes over a set, in batches of maxBatch. */
  async evaluate(
    images: Float32Array,
    labels: ArrayLike<number>,
  ): Promise<{ accuracy: number; loss: number; predictions: Int32Array }> {
    return evaluateTrainer(this, images, labels);
  }

  /**
   * The model in the Hugging Face layout: config.json, model.safetensors, preprocessor_config.json;
   * a fine-tuned family in its classification form's (DeiTForImageClassification, …), the
   * checkpoint's other tensors as they were.
   * @param preprocessing how its inputs are made: a model's `preprocessing` (written as its processor
   *   config says it), or preprocessor_config.json fields over the defaults (resize to its size, mean and std 0.5)
   */
  files(preprocessing: PreprocessConfig | Record<string, unknown> = {}): Record<string, Uint8Array | string> {
    const tensors: TensorOut[] = this.written().map((p) => ({ name: p.name, shape: p.shape, data: this.param(p) }));
    return modelFilesOf(
      this.spec,
      this.dims,
      this.options.labels,
      [...tensors, ...this.carried],
      preprocessing,
      this.stepCount,
    );
  }

  /** Writes {@link files} into a directory (Node). */
  async save(dir: string, preprocessing?: PreprocessConfig | Record<string, unknown>): Promise<void> {
    await writeLocalFiles(dir, this.files(preprocessing));
  }

  /** Stops the workers (a trainer that runs in workers). */
  async dispose(): Promise<void> {
    if (this.backend.kind !== 'inline') await this.backend.pool.dispose();
  }
}
