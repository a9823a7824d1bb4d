/**
 * The public model: a loaded ViT that runs the forward, classifies, traces and embeds images.
 * Created by loadModel (src/model/load.ts).
 */

import { exportOnnx } from '../export/onnx.js';
import { exportTextOnnx } from '../export/onnx-text.js';
import type { Scheme } from '../io/checkpoint.js';
import type { PreprocessConfig, ViTConfig } from '../io/config.js';
import { type ImageInput, readImage } from '../io/image/read.js';
import type { TextTokenizer } from '../io/tokenizer.js';
import { PLAIN_VIT } from '../nn/arch.js';
import {
  embeddings,
  embedPooling,
  forwardHere,
  type InferenceInit,
  type InferenceJob,
  textForwardHere,
} from '../nn/infer.js';
import { type Activations, inferencePlan, inspectionPlan } from '../nn/plan.js';
import { tokens } from '../nn/shape.js';
import type { TextActivations, TextTower } from '../nn/text.js';
import { readTrace, softmax, type Trace } from '../nn/trace.js';
import type { Weights } from '../nn/weights.js';
import type { Limits } from '../platform/limits.js';
import type { KernelExports, SimdFlavor } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import type { Fault, WorkerPool } from '../runtime/pool.js';
import { checkFinite, checkForwardInput, needClassifier, needTextTower, preprocessInto } from './checks.js';
import { type Prediction, type RuntimeInfo, topPredictions } from './options.js';
import { TextSide, type TextTrace, type ZeroShotOptions } from './zero-shot.js';

export type { Prediction };

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
  /** The ViT family the checkpoint was recognised as (src/io/families/): `vit`, `deit`, `dinov2`, `clip`, `siglip` or `beit`. */
  readonly family: string;
  /** Kernel build in use. */
  readonly simd: SimdFlavor;

  /** Threads the forward runs on. */
  readonly threads: number;
  /** How this model runs (threads, kernel build, shared memory) and why it fell back when it did. */
  readonly runtime: RuntimeInfo;

  private mem: WasmMemory | null;
  private readonly k: KernelExports;
  private readonly pool: WorkerPool<InferenceInit, InferenceJob> | null;
  private readonly weights: Weights;
  private readonly weightsEnd: number;
  private acts: Activations | null = null;
  private readonly keepAttention: boolean;
  private readonly allowNonFinite: boolean;
  private readonly int8: boolean;
  /** The limits images are read under. */
  readonly limits: Readonly<Limits>;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly text: TextSide | null;

  /** @internal use {@link loadModel} */
  constructor(init: {
    config: ViTConfig;
    preprocessing: PreprocessConfig;
    scheme: Scheme;
    family: string;
    simd: SimdFlavor;
    mem: WasmMemory;
    k: KernelExports;
    weights: Weights;
    keepAttention: boolean;
    allowNonFinite: boolean;
    int8: boolean;
    limits: Limits;
    pool: WorkerPool<InferenceInit, InferenceJob> | null;
    runtime: RuntimeInfo;
    text?: { tower: TextTower; tokenizer: TextTokenizer | null; where: string };
  }) {
    this.text = init.text
      ? new TextSide({
          ...init.text,
          memory: () => this.memory(),
          workers: init.pool?.size ?? 1,
          int8: init.int8,
          run: (plan, rows) => this.runText(plan, rows),
        })
      : null;
    this.allowNonFinite = init.allowNonFinite;
    this.int8 = init.int8;
    this.limits = Object.freeze(init.limits);
    this.config = init.config;
    this.preprocessing = init.preprocessing;
    this.scheme = init.scheme;
    this.family = init.family;
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
    // Each call writes its inputs into the shared memory before it runs: after a failed forward,
    // not until the pool is quiet, or a worker of that forward, still unwinding, could overwrite them.
    const turn = async () => {
      await this.pool?.quiet();
      return fn();
    };
    const run = this.queue.then(turn, turn);
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
  async forward(pixels: Float32Array, batch = 1): Promise<Float32Array> {
    needClassifier((this.config.arch ?? PLAIN_VIT).head, 'forward');
    checkForwardInput(pixels, batch, this.config);
    // The input is copied now, so the caller may reuse its buffer while this call waits its turn.
    return this.logits(pixels.slice(), batch, 'forward');
  }

  /** Logits (batch, L) of pixels this model owns and has checked finite, in their turn. */
  private logits(pixels: Float32Array, batch: number, what: string): Promise<Float32Array> {
    return this.serial(async () => {
      const mem = this.memory(),
        a = this.activations(batch);
      mem.f32(a.pixels, pixels.length).set(pixels);
      await this.run(a);
      return this.finite(mem.f32(a.logits, batch * this.config.numLabels).slice(), pixels, what);
    });
  }

  /** `out` when all finite, or non-finite results are allowed; otherwise an Error naming the likely cause. */
  private finite(out: Float32Array, pixels: Float32Array, what: string): Float32Array {
    return this.allowNonFinite ? out : checkFinite(out, pixels, this.preprocessing, what);
  }

  /**
   * The attention maps of the last forward, when loaded with `keepAttention`: per layer a
   * Float32Array (batch, heads, T, T), T = the prefix tokens (cls; a DeiT's distillation token second) + the patches.
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

  /** Runs a text forward over `plan` (its tokens written), as run() does the image forward. */
  private async runText(plan: TextActivations, rows: number[]): Promise<void> {
    if (this.pool) await this.pool.run({ text: plan, rows });
    else textForwardHere(this.k, this.memory(), this.text!.tower, plan, rows);
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
   * Image embeddings for similarity search, one row per image. By default what the family's pooler
   * gives: an image tower's projected embedding (CLIP's image_embeds, projectionDim floats); else
   * D floats: the final-normed cls token (ViT, DeiT, CLIP's pooler output, DINOv2's, also for a
   * Dinov2ForImageClassification, whose head reads it beside the mean), or for a model that pools
   * the mean of its patch tokens (timm's global_pool='avg') that mean, normed, or for one with an
   * attention pool (SigLIP's head, timm's 'map') what the pool gives. `pooling` asks for
   * one of D floats: `'cls'`, the final-normed cls token; `'mean'`, the mean of the patch tokens
   * (register and distillation tokens left out) as the model norms them (after its final
   * layernorm, or for a model with fc_norm its pooled norm); `'pooler'`, Hugging Face's pooler
   * output, tanh(dense(cls)), where the checkpoint has the pooler (a ViTModel's); `'head'`, the
   * vector a classifier reads (a linear probe's features: what pooling gives, before an image
   * tower's projection; 2D floats for DINOv2's classifier, its cls and mean side by side). Compare
   * them with cosine similarity.
   * @param images images, or their preprocessed pixels (C, H, W) as Float32Arrays
   * @returns (images, projectionDim), (images, D), or for `'head'` (images, what the classifier reads)
   */
  async embed(
    images: ImageInput | Float32Array | (ImageInput | Float32Array)[],
    opts: { pooling?: 'cls' | 'mean' | 'pooler' | 'head' } = {},
  ): Promise<Float32Array> {
    const pooling = embedPooling(this.config, this.weights, opts.pooling);
    const list = Array.isArray(images) ? images : [images],
      n = this.inputSize,
      B = list.length;
    if (B === 0) throw new Error('vit-wasm: embed: no images');
    const pixels = new Float32Array(B * n);
    for (let i = 0; i < B; i++) await this.input(list[i], 'embed', pixels.subarray(i * n, (i + 1) * n));
    return this.serial(async () => {
      const mem = this.memory(),
        a = this.activations(B);
      mem.f32(a.pixels, pixels.length).set(pixels);
      await this.run(a);
      const out = embeddings(this.k, mem, this.config, this.weights, a, pooling);
      return this.finite(out, pixels, 'embed');
    });
  }

  /** Whether the model has a text tower (a CLIPModel, a SiglipModel): {@link embedText} and {@link zeroShot} work. */
  get hasText(): boolean {
    return this.text !== null;
  }

  /**
   * Embeddings of texts in the space the image embeddings ({@link embed}) share, as CLIPModel's and
   * SiglipModel's get_text_features give them (not normalized; {@link similarity} normalizes). Each
   * text is tokenized as its tokenizer.json (or vocab.json + merges.txt; SigLIP: spiece.model) says
   * and truncated to the model's length; embeddings are cached by text.
   * @returns (texts, projectionDim)
   */
  async embedText(texts: string | string[]): Promise<Float32Array> {
    return needTextTower(this.text, this.family, 'embedText').embedText(texts, (fn) => this.serial(fn));
  }

  /**
   * The text tower's insides for one text, as {@link trace} gives the image tower's: its ids and
   * tokens, each layer's attention over them (H, T, T), the row it is read at, its embedding.
   */
  async traceText(text: string): Promise<TextTrace> {
    return needTextTower(this.text, this.family, 'traceText').traceText(text, (fn) => this.serial(fn));
  }

  /**
   * Ranks `labels` for `image` by words alone: each label put in the prompt `template` (several
   * templates averaged), the softmax over exp(logit_scale) × the cosine similarity of the image's
   * embedding and each label's, as CLIPModel's logits_per_image; a SiglipModel's each label's own
   * sigmoid of that plus logit_bias (the scores do not sum to 1). Labels' embeddings are cached.
   * @returns every label (or the `topK` best) with its probability, most probable first
   */
  async zeroShot(
    image: ImageInput | Float32Array,
    labels: string[],
    opts: ZeroShotOptions = {},
  ): Promise<Prediction[]> {
    return needTextTower(this.text, this.family, 'zeroShot').zeroShot(
      () => this.embed(image),
      labels,
      opts,
      (fn) => this.serial(fn),
    );
  }

  /** An image preprocessed, or pixels given preprocessed (C, H, W) checked, into `out` (C·H·W floats). */
  private async input(
    image: ImageInput | Float32Array,
    what: string,
    out = new Float32Array(this.inputSize),
  ): Promise<Float32Array> {
    if (!(image instanceof Float32Array)) return this.pixelsInto(image, out);
    if (image.length !== this.inputSize)
      throw new Error(`vit-wasm: ${what}: got ${image.length} pixels, expected ${this.inputSize} (C×H×W)`);
    out.set(image);
    return out;
  }

  /** Preprocesses one image into a Float32Array (C, H, W). */
  async pixels(image: ImageInput): Promise<Float32Array> {
    return this.pixelsInto(image, new Float32Array(this.inputSize));
  }

  /** Preprocesses one image into `out` (C·H·W floats), refusing a preprocessing that overflows f32. */
  private async pixelsInto(image: ImageInput, out: Float32Array): Promise<Float32Array> {
    return preprocessInto(await readImage(image, this.limits), this.preprocessing, this.config.numChannels, out);
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
    needClassifier((this.config.arch ?? PLAIN_VIT).head, 'classify');
    const topK = opts.topK ?? 5;
    if (!Number.isInteger(topK) || topK < 1)
      throw new Error(`vit-wasm: classify: topK must be a positive integer, got ${topK}`);
    const n = this.inputSize,
      pixels = new Float32Array(images.length * n);
    // preprocessed straight into one batch, each image checked finite as it lands (pixelsInto)
    for (let i = 0; i < images.length; i++) await this.pixelsInto(images[i], pixels.subarray(i * n, (i + 1) * n));
    const logits = await this.logits(pixels, images.length, 'forward'); // named as before: classify runs the forward
    const L = this.config.numLabels;
    return images.map((_, b) => topPredictions(softmax(logits.subarray(b * L, (b + 1) * L)), this.config.labels, topK));
  }

  /**
   * The model as an ONNX graph (opset 17) with the same weights: input `pixel_values`
   * [batch, C, H, W], output `logits` [batch, numLabels]. For running peers on identical weights.
   * With `int8`, the linear layers are dynamically quantized (DynamicQuantizeLinear + MatMulInteger,
   * int8 weights with one scale per output channel), as 8-bit web models are. With `text` (a
   * model with a text tower), its text tower instead: input `input_ids` [batch, textLength] int64
   * (texts padded with their end token; default length the model's max_position_embeddings),
   * output `text_embeds` [batch, projectionDim].
   */
  toOnnx(opts: { int8?: boolean; text?: boolean; textLength?: number } = {}): Uint8Array {
    if (!opts.text) return exportOnnx(this.config, this.weights, this.memory(), opts);
    const t = needTextTower(this.text, this.family, 'toOnnx({ text: true })').tower;
    return exportTextOnnx(t, this.memory(), opts.textLength ?? t.shape.maxPositions, opts);
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
