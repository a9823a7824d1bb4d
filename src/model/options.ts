/**
 * What loadModel takes, and what a loaded model reports about how it runs.
 */
import type { Limits } from '../platform/limits.js';
import type { SimdFlavor } from '../runtime/kernels.js';

/** Options for {@link loadModel}. */
export interface LoadOptions {
  /**
   * Threads for the forward pass. Default: all cores in Node (`os.availableParallelism()`),
   * `navigator.hardwareConcurrency` up to 8 in browsers, but no more than one per 100 MFLOP of the
   * model's forward (a smaller model is faster on fewer: the bundled MNIST model runs on 1). The work runs in a pool of that many workers
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
   * about a quarter of the weight memory. Logits move by a few percent of their scale
   * (docs/int8.md); the patch embedding, the classifier, layernorms and attention stay f32. Default `'f32'`.
   */
  weights?: 'f32' | 'int8';
  /**
   * Run at this image size (pixels: one side, or [height, width], multiples of the patch size)
   * instead of the checkpoint's: the position embeddings are interpolated as the checkpoint's
   * library does (Hugging Face's `interpolate_pos_encoding`, timm's and open_clip's antialiased
   * resampling, torchvision's `interpolate_embeddings`, BEiT's bias tables), and images are
   * resized to it. Default: the checkpoint's size.
   */
  imageSize?: number | [number, number];
  /**
   * Preprocess images as a torchvision weights enum's transforms do, by its name (torchvision's
   * checkpoints carry no processor config): `'ViT_B_16_Weights.IMAGENET1K_V1'` (resize the shorter
   * side to 256, bilinear; center crop 224), `…IMAGENET1K_SWAG_E2E_V1`, `…IMAGENET1K_SWAG_LINEAR_V1`,
   * and the same for ViT_B_32, ViT_L_16, ViT_L_32 and ViT_H_14 (TORCHVISION_TRANSFORMS lists them).
   * Overrides the directory's own processor. Default: the directory's.
   */
  transforms?: string;
}

/** How a model runs, and why, for showing or logging: see {@link ViTModel.runtime}. */
export interface RuntimeInfo {
  /** `node` or `browser`. */
  platform: 'node' | 'browser';
  /**
   * What runs it, with its version: `Node 20.20.2`, `Deno 2.9.6` and `Bun 1.4.5` (all three run the
   * Node build, and get the same threads and kernels), or the browser (`Chrome 150`, `Firefox 140`,
   * `Safari 18`, `WebKitGTK`).
   */
  engine: string;
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

/** The `k` most probable of `probs` with their labels, most probable first (ties: the lower index first). */
export function topPredictions(probs: ArrayLike<number>, labels: readonly string[], k: number): Prediction[] {
  return Array.from(probs, (score, index) => ({ label: labels[index], index, score }))
    .sort((a, b) => b.score - a.score || a.index - b.index)
    .slice(0, k);
}
