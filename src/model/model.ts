/**
 * The public model: load a checkpoint directory, run the forward, classify images.
 */

import { exportOnnx } from '../export/onnx.js';
import { loadCheckpoint, type Scheme } from '../io/checkpoint.js';
import { type PreprocessConfig, parsePreprocess, type ViTConfig } from '../io/config.js';
import { type ImageInput, preprocess, readImage } from '../io/image.js';
import { type ModelLocation, modelFiles, readJson } from '../io/source.js';
import { forwardHere, type InferenceInit, meanPooled } from '../nn/infer.js';
import { type Activations, inferencePlan, inspectionPlan } from '../nn/plan.js';
import { tokens } from '../nn/shape.js';
import { readTrace, softmax, type Trace } from '../nn/trace.js';
import type { Weights } from '../nn/weights.js';
import { type Limits, resolveLimits } from '../platform/limits.js';
import { defaultThreadCount, PLATFORM, sharedMemoryUnavailable } from '../platform/platform.js';
import { compileKernels, instantiateKernels, type KernelExports, type SimdFlavor } from '../runtime/kernels.js';
import { WasmMemory } from '../runtime/memory.js';
import { checkThreads, type Fault, WorkerPool } from '../runtime/pool.js';

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /**
   * Threads for the forward pass. Default: all cores in Node (`os.availableParallelism()`),
   * `navigator.hardwareConcurrency` up to 8 in browsers. The work runs in a pool of that many workers
   * over one shared memory, so the calling thread never computes; results are bit-identical for every
   * count. Pages without SharedArrayBuffer (not cross-origin isolated) run on one thread in the page.
   */
  threads?: number;
  /**
   * Where the pool worker script is served, for pages whose Content-Security-Policy forbids `blob:`
   * workers: the package's `dist/worker.browser.js` (browsers) or `dist/worker.js` (Node). By
   * default the worker starts from the source this library carries, so no file has to be found.
   */
  workerUrl?: string | URL;
  /**
   * Kernel build: `auto` (relaxed SIMD, i.e. FMA, where the engine has it — in Node 20 vit-wasm turns
   * on V8's flag for it), `simd` (plain SIMD everywhere) or `relaxed`. Default `auto`. The two builds
   * agree with PyTorch equally well but not bit for bit with each other.
   */
  simd?: SimdFlavor | 'auto';
  /** Keep every layer's attention maps after each forward (see {@link ViTModel.attention}). Default false. */
  keepAttention?: boolean;
  /**
   * Raise some of the limits on what is read (image pixels and bytes, JSON size and depth, header
   * size, labels, whole-file downloads): see {@link Limits}. Defaults are {@link DEFAULT_LIMITS}.
   */
  limits?: Partial<Limits>;
  /**
   * Return non-finite logits (NaN, ±Infinity) instead of rejecting. By default a forward whose logits
   * are not all finite rejects with an Error naming the likely cause, so NaN never reaches a caller
   * as an answer. Default false.
   */
  allowNonFinite?: boolean;
  /**
   * `'int8'` runs the encoder's linear layers (Q/K/V, attention output, MLP) on int8 weights, one
   * scale per output channel (an int8 file's own, or quantized as an f32/f16/bf16 checkpoint
   * loads), with each input row quantized to 7 bits on the fly. Those layers then hold no f32 copy:
   * about a quarter of the weight memory. Logits move by a few percent of their scale (README:
   * "int8"); the patch embedding, the classifier, layernorms and attention stay f32. Default `'f32'`.
   */
  weights?: 'f32' | 'int8';
}

/** How a model runs, and why, for showing or logging: see {@link ViTModel.runtime}. */
export interface RuntimeInfo {
  /** `node` or `browser`. */
  platform: 'node' | 'browser';
  /** Threads computing the forward: the pool's workers, or 1 in the calling thread. */
  threads: number;
  /** True when a worker pool computes (the calling thread stays free); false for the one-thread fallback. */
  workers: boolean;
  /** Kernel build: `relaxed` (relaxed SIMD, FMA) or `simd` (plain 128-bit SIMD). */
  simd: SimdFlavor;
  /** Whether the model lives in a shared WebAssembly memory (needed for more than one thread). */
  sharedMemory: boolean;
  /** `self.crossOriginIsolated` in a browser; null in Node. */
  crossOriginIsolated: boolean | null;
  /** Why it runs on one thread in the calling thread instead of a pool, or null when it does not. */
  fallback: string | null;
  /** Why the plain-SIMD build runs rather than relaxed SIMD, or null when relaxed SIMD runs. */
  simdReason: string | null;
}

/** One class and its probability. */
export interface Prediction {
  label: string;
  index: number;
  score: number;
}

/** Options for {@link ViTModel.classify}. */
export interface ClassifyOptions {
  /** How many of the most probable classes to return. Default 5. */
  topK?: number;
}

/** A loaded ViT. Create with {@link loadModel}; release with {@link ViTModel.dispose}. */
export class ViTModel {
  /** The configuration, reconciled with the weights. */
  readonly config: ViTConfig;
  /** How images are turned into pixels (preprocessor_config.json, or ViTImageProcessor defaults). */
  readonly preprocessing: PreprocessConfig;
  /** Checkpoint naming scheme the weights were read in. */
  readonly scheme: Scheme;
  /** Kernel build in use. */
  readonly simd: SimdFlavor;

  /** Threads the forward runs on. */
  readonly threads: number;
  /** How this model runs (threads, kernel build, shared memory) and why it fell back when it did. */
  readonly runtime: RuntimeInfo;

  private mem: WasmMemory | null;
  private readonly k: KernelExports;
  private readonly pool: WorkerPool<InferenceInit, Activations> | null;
  private readonly weights: Weights;
  private readonly weightsEnd: number;
  private acts: Activations | null = null;
  private readonly keepAttention: boolean;
  private readonly allowNonFinite: boolean;
  private readonly int8: boolean;
  /** The limits images are read under. */
  readonly limits: Readonly<Limits>;
  private queue: Promise<unknown> = Promise.resolve();

  /** @internal use {@link loadModel} */
  constructor(init: {
    config: ViTConfig;
    preprocessing: PreprocessConfig;
    scheme: Scheme;
    simd: SimdFlavor;
    mem: WasmMemory;
    k: KernelExports;
    weights: Weights;
    keepAttention: boolean;
    allowNonFinite: boolean;
    int8: boolean;
    limits: Limits;
    pool: WorkerPool<InferenceInit, Activations> | null;
    runtime: RuntimeInfo;
  }) {
    this.allowNonFinite = init.allowNonFinite;
    this.int8 = init.int8;
    this.limits = Object.freeze(init.limits);
    this.config = init.config;
    this.preprocessing = init.preprocessing;
    this.scheme = init.scheme;
    this.simd = init.simd;
    this.mem = init.mem;
    this.k = init.k;
    this.weights = init.weights;
    this.keepAttention = init.keepAttention;
    this.pool = init.pool;
    this.threads = init.pool?.size ?? 1;
    this.weightsEnd = init.mem.end;
    this.runtime = init.runtime;
  }

  /** Floats in one image: C·H·W. */
  get inputSize(): number {
    const c = this.config;
    return c.numChannels * c.imageSize[0] * c.imageSize[1];
  }

  private memory(): WasmMemory {
    if (!this.mem) throw new Error('vit-wasm: this model has been disposed');
    return this.mem;
  }

  // Calls run one at a time, in order: they share the activation arena.
  private serial<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private activations(B: number): Activations {
    if (this.acts?.B !== B) {
      const mem = this.memory();
      mem.reset(this.weightsEnd);
      this.acts = inferencePlan((n) => mem.alloc(n), this.config, {
        B,
        workers: this.threads,
        int8: this.int8,
        keepAttention: this.keepAttention,
      });
    }
    return this.acts;
  }

  /**
   * Runs the network on normalized pixels.
   * @param pixels `batch` images, NCHW float32 (as {@link preprocess} makes them)
   * @param batch number of images
   * @returns logits, `batch × numLabels`
   */
  forward(pixels: Float32Array, batch = 1): Promise<Float32Array> {
    // The input is copied now, so the caller may reuse its buffer while this call waits its turn.
    const input = pixels instanceof Float32Array ? pixels.slice() : pixels;
    return this.serial(async () => {
      pixels = input;
      const mem = this.memory();
      if (!Number.isInteger(batch) || batch < 1)
        throw new Error(`vit-wasm: forward: batch must be a positive integer, got ${batch}`);
      if (!(pixels instanceof Float32Array)) throw new Error('vit-wasm: forward: pixels must be a Float32Array (NCHW)');
      const [H, W] = this.config.imageSize;
      if (pixels.length !== batch * this.inputSize) {
        throw new Error(
          `vit-wasm: forward: got ${pixels.length} floats, expected batch ${batch} × ${this.config.numChannels}×${H}×${W} = ${batch * this.inputSize}`,
        );
      }
      for (let i = 0; i < pixels.length; i++) {
        if (!Number.isFinite(pixels[i]))
          throw new Error(`vit-wasm: forward: pixel ${i} is ${pixels[i]} (inputs must be finite)`);
      }
      const a = this.activations(batch);
      mem.f32(a.pixels, pixels.length).set(pixels);
      await this.run(a);
      return this.finite(mem.f32(a.logits, batch * this.config.numLabels).slice(), pixels, 'forward');
    });
  }

  /**
   * `out` when all finite (or non-finite results are allowed); otherwise an Error naming the likely
   * cause. The inputs were checked finite, so f32 overflowed somewhere inside the network.
   */
  private finite(out: Float32Array, pixels: Float32Array, what: string): Float32Array {
    if (this.allowNonFinite) return out;
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad < 0) return out;
    let big = 0;
    for (let i = 0; i < pixels.length; i++) big = Math.max(big, Math.abs(pixels[i]));
    const p = this.preprocessing,
      scale = Math.max(...p.imageMean.map(Math.abs), ...p.imageStd.map((s) => 1 / Math.abs(s)));
    const cause =
      scale > 1e6
        ? `preprocessor_config.json's image_mean/image_std scale pixels by up to ${scale.toExponential(2)}`
        : big > 1e6
          ? `the input holds values as large as ${big.toExponential(2)} (normalized pixels are usually within ±3)`
          : 'the weights overflow f32 on this input (extreme weight magnitudes, or a layer_norm_eps too small for a constant row)';
    throw new Error(
      `vit-wasm: ${what}: the model produced ${out[bad]} (output ${bad}): ${cause}. ` +
        'Load with { allowNonFinite: true } to get non-finite results anyway.',
    );
  }

  /**
   * The attention maps of the last forward, when loaded with `keepAttention`: per layer a
   * Float32Array (batch, heads, T, T), T = patches + 1 (token 0 is cls).
   */
  attention(): Float32Array[] {
    const a = this.acts,
      mem = this.memory();
    if (!this.keepAttention)
      throw new Error('vit-wasm: attention maps are kept only when the model is loaded with { keepAttention: true }');
    if (!a) return [];
    const c = this.config,
      { T } = tokens(c);
    return a.layers.map((l) => mem.f32(l.probs!, a.B * c.numHeads * T * T).slice()); // kept: keepAttention
  }

  /** Runs the forward on plan `a` (already holding its pixels): on the pool, or in this thread. */
  private async run(a: Activations): Promise<void> {
    if (this.pool) await this.pool.run(a);
    else forwardHere(this.k, this.memory(), this.config, this.weights, a);
  }

  /**
   * Every intermediate of the forward for one image, in the order "A Visual Guide to Vision
   * Transformers" walks through them: patches, flattened patches, patch embeddings, cls token,
   * position embeddings, the transformer input, and per layer the layernorms, Q, K and V per head,
   * attention scores before and after softmax, each head's output, the concatenation and its
   * projection, both residual sums, the MLP's hidden activation and output; then the cls output,
   * logits and probabilities. Each is a {@link Tensor} with its dims. It runs the same forward as
   * {@link forward} (the same bits) with every layer's buffers kept: about (12·T·D + 2·T·M + H·T²)
   * floats per layer, freed when the next call re-plans.
   * @param image an image, or its preprocessed pixels (C, H, W) as a Float32Array (see {@link pixels})
   */
  async trace(image: ImageInput | Float32Array): Promise<Trace> {
    const pixels = await this.input(image, 'trace');
    return this.serial(async () => {
      const mem = this.memory();
      mem.reset(this.weightsEnd);
      this.acts = null; // the next forward re-plans its arena
      const a = inspectionPlan((n) => mem.alloc(n), this.config, { B: 1, workers: this.threads, int8: this.int8 });
      mem.f32(a.pixels, pixels.length).set(pixels);
      await this.run(a);
      const trace = readTrace(mem, this.config, this.weights, a);
      mem.reset(this.weightsEnd);
      this.finite(trace.logits.data, pixels, 'trace');
      return trace;
    });
  }

  /**
   * Image embeddings for similarity search, one row of D floats per image: `pooling` `'cls'` (the
   * default) is the final-normed cls token, what the classifier reads; `'mean'` is the mean of the
   * final-normed patch tokens (timm's global_pool='avg'). Compare them with cosine similarity.
   * @param images images, or their preprocessed pixels (C, H, W) as Float32Arrays
   * @returns (images, D)
   */
  async embed(
    images: ImageInput | Float32Array | (ImageInput | Float32Array)[],
    opts: { pooling?: 'cls' | 'mean' } = {},
  ): Promise<Float32Array> {
    const pooling = opts.pooling ?? 'cls';
    if (pooling !== 'cls' && pooling !== 'mean')
      throw new Error(`vit-wasm: embed: pooling must be 'cls' or 'mean', got ${JSON.stringify(pooling)}`);
    const list = Array.isArray(images) ? images : [images],
      n = this.inputSize,
      B = list.length;
    if (B === 0) throw new Error('vit-wasm: embed: no images');
    const pixels = new Float32Array(B * n);
    for (let i = 0; i < B; i++) pixels.set(await this.input(list[i], 'embed'), i * n);
    return this.serial(async () => {
      const mem = this.memory(),
        D = this.config.hiddenSize;
      const a = this.activations(B);
      mem.f32(a.pixels, pixels.length).set(pixels);
      await this.run(a);
      const out =
        pooling === 'cls' ? mem.f32(a.cls, B * D).slice() : meanPooled(this.k, mem, this.config, this.weights, a);
      return this.finite(out, pixels, 'embed');
    });
  }

  /** An image preprocessed, or pixels given preprocessed (C, H, W) checked and copied. */
  private async input(image: ImageInput | Float32Array, what: string): Promise<Float32Array> {
    if (!(image instanceof Float32Array)) return this.pixels(image);
    if (image.length !== this.inputSize)
      throw new Error(`vit-wasm: ${what}: got ${image.length} pixels, expected ${this.inputSize} (C×H×W)`);
    return image.slice();
  }

  /** Preprocesses one image into a Float32Array (C, H, W). */
  async pixels(image: ImageInput): Promise<Float32Array> {
    const out = preprocess(
      await readImage(image, this.limits),
      this.preprocessing,
      this.config.numChannels === 1 ? 1 : 3,
    );
    const bad = out.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new Error(
        `vit-wasm: preprocessing turned pixel ${bad} into ${out[bad]}: the model's rescale_factor, image_mean and image_std (preprocessor_config.json) overflow f32`,
      );
    return out;
  }

  /**
   * Classifies one image: a path or URL, PNG/JPEG bytes, or decoded pixels.
   * @returns the `topK` most probable labels, most probable first
   */
  async classify(image: ImageInput, opts: ClassifyOptions = {}): Promise<Prediction[]> {
    return (await this.classifyBatch([image], opts))[0];
  }

  /** Classifies several images in one batched forward. */
  async classifyBatch(images: ImageInput[], opts: ClassifyOptions = {}): Promise<Prediction[][]> {
    const topK = opts.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1)
      throw new Error(`vit-wasm: classify: topK must be a positive integer, got ${topK}`);
    const n = this.inputSize,
      pixels = new Float32Array(images.length * n);
    for (let i = 0; i < images.length; i++) pixels.set(await this.pixels(images[i]), i * n);
    const logits = await this.forward(pixels, images.length);
    const L = this.config.numLabels;
    return images.map((_, b) => topPredictions(softmax(logits.subarray(b * L, (b + 1) * L)), this.config.labels, topK));
  }

  /**
   * The model as an ONNX graph (opset 17) with the same weights: input `pixel_values`
   * [batch, C, H, W], output `logits` [batch, numLabels]. For running peers on identical weights.
   * With `int8`, the linear layers are dynamically quantized (DynamicQuantizeLinear + MatMulInteger,
   * int8 weights with one scale per output channel), as 8-bit web models are.
   */
  toOnnx(opts: { int8?: boolean } = {}): Uint8Array {
    return exportOnnx(this.config, this.weights, this.memory(), opts);
  }

  /** Stops the workers and frees the model's memory. Further calls reject. */
  async dispose(): Promise<void> {
    await this.serial(async () => {
      await this.pool?.dispose();
      this.mem = null;
      this.acts = null;
    });
  }

  /** @internal for tests of fault handling: kill worker `id` now, or make it trap or exit at op N in its next forward. */
  async _injectFault(id: number, kind: Fault): Promise<void> {
    if (!this.pool) throw new Error('vit-wasm: no worker pool (no SharedArrayBuffer)');
    await this.pool.fault(id, kind);
  }
}

function topPredictions(probs: Float32Array, labels: string[], k: number): Prediction[] {
  return Array.from(probs, (score, index) => ({ label: labels[index], index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}

/**
 * Loads a ViT from a Hugging Face-layout directory: config.json, model.safetensors (or sharded
 * model.safetensors.index.json) and optional preprocessor_config.json. Weights named in the Hugging
 * Face, timm or torchvision scheme, as F32, F16 or BF16, are recognised automatically.
 * @param where a directory path (Node), a base URL (browsers), or a map of file name → contents
 */
export async function loadModel(where: ModelLocation, opts: LoadOptions = {}): Promise<ViTModel> {
  if (opts === null || typeof opts !== 'object') throw new Error('vit-wasm: loadModel: options must be an object');
  const threads = checkThreads(opts.threads ?? defaultThreadCount());
  const limits = resolveLimits(opts.limits);
  const simd = opts.simd ?? 'auto';
  if (simd !== 'auto' && simd !== 'simd' && simd !== 'relaxed')
    throw new Error(`vit-wasm: simd must be 'auto', 'simd' or 'relaxed', got ${JSON.stringify(simd)}`);
  const fallback = sharedMemoryUnavailable();
  const shared = fallback === null;
  // Workers even for one thread: the caller's thread (a page, a server's event loop) never computes.
  if (!shared && !warnedFallback)
    console.warn(`vit-wasm: threads are off, running on one thread in the calling thread: ${fallback}`);
  warnedFallback ||= !shared;
  const files = await modelFiles(where, limits);
  const { module, flavor } = await compileKernels(simd, shared);
  const mem = new WasmMemory(shared);
  const k = instantiateKernels(module, mem.memory);
  const weightsForm = opts.weights ?? 'f32';
  if (weightsForm !== 'f32' && weightsForm !== 'int8')
    throw new Error(`vit-wasm: weights must be 'f32' or 'int8', got ${JSON.stringify(weightsForm)}`);
  const { config, weights, scheme } = await loadCheckpoint(files, mem, {
    int8: weightsForm === 'int8' ? k : undefined,
  });
  const pre = (await files.exists('preprocessor_config.json'))
    ? await readJson(files, 'preprocessor_config.json')
    : null;
  const preprocessing = parsePreprocess(pre, config, `${files.where}/preprocessor_config.json`);
  let pool: WorkerPool<InferenceInit, Activations> | null = null;
  if (shared) {
    pool = new WorkerPool({
      workers: threads,
      memory: mem.memory,
      kind: 'worker',
      workerUrl: opts.workerUrl,
      init: (id): InferenceInit => ({ module, memory: mem.memory, id, workers: threads, shape: config, weights }),
    });
    await pool.started();
  }
  const runtime: RuntimeInfo = {
    platform: PLATFORM,
    threads: pool?.size ?? 1,
    workers: !!pool,
    simd: flavor,
    sharedMemory: shared,
    crossOriginIsolated:
      PLATFORM === 'browser' ? (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true : null,
    fallback,
    simdReason:
      flavor === 'relaxed'
        ? null
        : !shared
          ? 'the one-thread fallback build is plain SIMD'
          : simd === 'simd'
            ? "plain SIMD was asked for (simd: 'simd')"
            : 'this engine has no relaxed SIMD',
  };
  return new ViTModel({
    config,
    preprocessing,
    scheme,
    simd: flavor,
    mem,
    k,
    weights,
    keepAttention: !!opts.keepAttention,
    allowNonFinite: !!opts.allowNonFinite,
    int8: weightsForm === 'int8',
    limits,
    pool,
    runtime,
  });
}

/** The one-thread fallback is announced once per page or process, not once per model. */
let warnedFallback = false;
