/**
 * Training, the public side: createTrainer and Trainer. Cross-entropy, backprop through
 * src/nn/vit.ts, gradient-norm clipping and AdamW with decoupled weight decay under a warmup +
 * cosine schedule. Parameters live once, in Hugging Face's layout and names, in wasm memory; linear
 * weights are re-packed for the forward GEMM after every step. One thread in the calling thread, or
 * data parallel over a worker pool (src/train/core.ts is one worker's share).
 */

import { hfConfigFiles } from '../io/config.js';
import { encodeSafetensors, readSafetensorsHeader, TensorReader } from '../io/safetensors.js';
import { type ModelLocation, modelFiles, readJson } from '../io/source.js';
import { sharedMemoryUnavailable, writeLocalFiles } from '../platform/platform.js';
import { compileKernels, instantiateKernels } from '../runtime/kernels.js';
import { WasmMemory } from '../runtime/memory.js';
import { checkThreads, WorkerPool } from '../runtime/pool.js';
import {
  argmax,
  type Options,
  type Param,
  TrainCore,
  type TrainJob,
  type TrainLayout,
  type TrainWorkerInit,
  trainLayout,
} from './core.js';
import type { TrainDims, TrainOptions } from './options.js';

export type { TrainDims, TrainOptions };
export { argmax };

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
  constructor(
    readonly dims: TrainDims,
    readonly options: Options,
    private readonly mem: WasmMemory,
    private readonly core: TrainCore | null,
    private readonly pool: WorkerPool<TrainWorkerInit, TrainJob, number> | null,
    layout: TrainLayout,
  ) {
    this.L = layout;
    this.threads = pool ? layout.workers.length : 1;
  }

  private f32(ptr: number, n: number) {
    return this.mem.f32(ptr, n);
  }

  /** Spreads B images over the workers, copying pixels and labels into their buffers. */
  private distribute(images: Float32Array, labels: ArrayLike<number> | null, B: number): number[] {
    const d = this.dims,
      per = d.numChannels * d.imageSize[0] * d.imageSize[1],
      W = this.L.workers.length;
    if (!Number.isInteger(B) || B < 1 || B > this.options.maxBatch)
      throw new Error(`vit-wasm: batch ${B} is outside 1…${this.options.maxBatch} (maxBatch)`);
    if (images.length !== B * per) throw new Error(`vit-wasm: got ${images.length} floats, expected ${B} × ${per}`);
    const counts = Array.from({ length: W }, (_, w) => Math.floor((B * (w + 1)) / W) - Math.floor((B * w) / W));
    let start = 0;
    counts.forEach((c, w) => {
      const buf = this.L.workers[w];
      this.f32(buf.acts.pixels, c * per).set(images.subarray(start * per, (start + c) * per));
      if (labels) {
        const lab = new Int32Array(this.mem.memory.buffer, buf.bwd.labels, c);
        for (let i = 0; i < c; i++) {
          const y = labels[start + i];
          if (!Number.isInteger(y) || y < 0 || y >= d.numLabels)
            throw new Error(`vit-wasm: label ${start + i} is ${y}, not a class 0…${d.numLabels - 1}`);
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
    const x = images.slice(),
      y = Array.from(labels);
    const begin = () => {
      const counts = this.distribute(x, y, B),
        t = ++this.stepCount;
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
    const L = this.dims.numLabels,
      out: number[] = [];
    this.lastCounts.forEach((c, w) => {
      const z = this.f32(this.L.workers[w].acts.logits, c * L);
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
    const L = this.dims.numLabels,
      x = images.slice(); // taken now: the caller may reuse its buffer
    let counts: number[] = [];
    const begin = (): TrainJob => {
      counts = this.distribute(x, null, B);
      return { kind: 'forward', counts };
    };
    const read = () => {
      const out = new Float32Array(B * L);
      let o = 0;
      counts.forEach((c, w) => {
        out.set(this.f32(this.L.workers[w].acts.logits, c * L), o);
        o += c * L;
      });
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
  async evaluate(
    images: Float32Array,
    labels: ArrayLike<number>,
  ): Promise<{ accuracy: number; loss: number; predictions: Int32Array }> {
    const per = images.length / labels.length,
      L = this.dims.numLabels,
      n = labels.length,
      pred = new Int32Array(n);
    let correct = 0,
      loss = 0;
    for (let s = 0; s < n; s += this.options.maxBatch) {
      const B = Math.min(this.options.maxBatch, n - s);
      const z = await this.logits(images.subarray(s * per, (s + B) * per), B);
      for (let b = 0; b < B; b++) {
        const row = z.subarray(b * L, (b + 1) * L),
          best = argmax(row),
          m = row[best];
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
    const tensors = this.L.params.map((p) => ({
      name: p.name,
      shape: p.shape,
      data: this.f32(this.L.P + p.offset * 4, p.size),
    }));
    return {
      ...hfConfigFiles(this.dims, this.options.labels, preprocessing),
      'model.safetensors': encodeSafetensors(tensors, {
        format: 'pt',
        trainer: 'vit-wasm',
        steps: String(this.stepCount),
      }),
    };
  }

  /** Writes {@link files} into a directory (Node). */
  async save(dir: string, preprocessing?: Record<string, unknown>): Promise<void> {
    await writeLocalFiles(dir, this.files(preprocessing));
  }

  /** Stops the workers (a pool trainer). */
  async dispose(): Promise<void> {
    await this.pool?.dispose();
  }
}

/** Initial weights: a checkpoint in Hugging Face names, or HF's initialisation from `seed`. */
async function initialise(
  P: Float32Array,
  params: Param[],
  from: ModelLocation | undefined,
  seed: number,
): Promise<void> {
  if (from) {
    const files = await modelFiles(from);
    const src = await files.open('model.safetensors');
    try {
      const tensors = await readSafetensorsHeader(src);
      const reader = new TensorReader(tensors.values());
      for (const p of params) {
        const t = tensors.get(p.name);
        if (!t)
          throw new Error(
            `vit-wasm: ${src.name}: missing tensor '${p.name}' (training starts from Hugging Face names)`,
          );
        if (t.shape.reduce((a, b) => a * b, 1) !== p.size)
          throw new Error(`vit-wasm: ${src.name}: tensor '${p.name}' has shape [${t.shape}], expected [${p.shape}]`);
        P.set(await reader.read(t), p.offset);
      }
    } finally {
      await src.close();
    }
    return;
  }
  // HF's ViT initialisation: weights, cls and positions N(0, 0.02); biases 0; norms γ = 1, β = 0
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (const p of params) {
    const v = P.subarray(p.offset, p.offset + p.size);
    if (p.init === 'one') v.fill(1);
    else if (p.init === 'normal') for (let i = 0; i < v.length; i++) v[i] = 0.02 * normal();
    else v.fill(0);
  }
}

/** Reads the dimensions of a checkpoint's config.json for training. */
async function dimsFrom(where: ModelLocation): Promise<TrainDims> {
  const files = await modelFiles(where);
  const c = (await readJson(files, 'config.json')) as Record<string, number | number[]>;
  const size = c.image_size;
  return {
    imageSize: Array.isArray(size) ? [size[0], size[1]] : [size as number, size as number],
    patchSize: c.patch_size as number,
    numChannels: (c.num_channels as number) ?? 3,
    hiddenSize: c.hidden_size as number,
    numLayers: c.num_hidden_layers as number,
    numHeads: c.num_attention_heads as number,
    intermediateSize: c.intermediate_size as number,
    numLabels: (c.num_labels as number) ?? Object.keys(c.id2label ?? {}).length,
    layerNormEps: (c.layer_norm_eps as number) ?? 1e-12,
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
  if (typeof d !== 'object' || !Array.isArray(d.imageSize) || d.imageSize.length !== 2)
    throw new Error(
      'vit-wasm: createTrainer: dims.imageSize must be [height, width] (to train a loaded model pass model.config, or options.from)',
    );
  for (const [k, v] of Object.entries({
    patchSize: d.patchSize,
    numChannels: d.numChannels,
    hiddenSize: d.hiddenSize,
    numLayers: d.numLayers,
    numHeads: d.numHeads,
    intermediateSize: d.intermediateSize,
    numLabels: d.numLabels,
    height: d.imageSize[0],
    width: d.imageSize[1],
  })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`vit-wasm: ${k} must be a positive integer, got ${v}`);
  }
  if (d.hiddenSize % d.numHeads)
    throw new Error(`vit-wasm: hiddenSize ${d.hiddenSize} is not divisible by numHeads ${d.numHeads}`);
  if (d.imageSize[0] % d.patchSize || d.imageSize[1] % d.patchSize)
    throw new Error(`vit-wasm: image size ${d.imageSize} is not divisible by patchSize ${d.patchSize}`);
  const threads = checkThreads(options.threads ?? 1);
  const o: Options = {
    maxBatch: options.maxBatch ?? 64,
    lr: options.lr ?? 1e-3,
    weightDecay: options.weightDecay ?? 0.05,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    adamEps: options.adamEps ?? 1e-8,
    warmupSteps: options.warmupSteps ?? 0,
    totalSteps: options.totalSteps ?? 0,
    clipNorm: options.clipNorm ?? 1,
    seed: options.seed ?? 0,
    labels: options.labels ?? Array.from({ length: d.numLabels }, (_, i) => String(i)),
  };
  const pooled = threads > 1 && sharedMemoryUnavailable() === null;
  const W = pooled ? threads : 1,
    perWorker = Math.ceil(o.maxBatch / W);
  const { module } = await compileKernels('simd', pooled);
  const mem = new WasmMemory(pooled);
  const base = mem.end,
    layout = trainLayout(d, perWorker, W, base);
  mem.alloc((layout.end - base) / 4);
  await initialise(mem.f32(layout.P, layout.n), layout.params, options.from, o.seed);
  if (!pooled) {
    const core = new TrainCore({
      k: instantiateKernels(module, mem.memory),
      layout,
      dims: d,
      options: o,
      memory: mem.memory,
    });
    core.repack(true);
    return new Trainer(d, o, mem, core, null, layout);
  }
  instantiateKernels(module, mem.memory); // writes the kernels' constants
  const pool = new WorkerPool<TrainWorkerInit, TrainJob, number>({
    workers: W,
    memory: mem.memory,
    kind: 'train-worker',
    workerUrl: options.workerUrl,
    init: (id) => ({ module, memory: mem.memory, dims: d, options: o, perWorker, workers: W, id, base }),
  });
  await pool.started();
  new TrainCore({ k: instantiateKernels(module, mem.memory), layout, dims: d, options: o, memory: mem.memory }).repack(
    true,
  );
  return new Trainer(d, o, mem, null, pool, layout);
}
