/** What a training run is given: the shape to train and the optimiser's settings. */
import type { ModelLocation } from '../io/source.js';
import type { ViTShape } from '../nn/shape.js';

/** The shape of a ViT to train (the same type a loaded model's config extends). */
export type TrainDims = ViTShape;

/** The most micro-batches of maxBatch one step accumulates (Trainer.step). */
export const MAX_MICRO_BATCHES = 1024;

/** Optimiser and schedule settings for {@link createTrainer}. */
export interface TrainOptions {
  /**
   * Largest batch one pass computes (activations are planned for it). Default 64. A `step` on a
   * larger batch accumulates the gradients of micro-batches of this size.
   */
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
  /**
   * Layer-wise learning-rate decay for fine-tuning (BEiT's and timm's `layer_decay`, e.g. 0.65–0.75):
   * block i of L learns at lr·decay^(L − i), the embeddings at lr·decay^(L + 1), the final norm and
   * the head at lr. Default 1 (off).
   */
  layerDecay?: number;
  /** PyTorch's label_smoothing ε: the target is (1 − ε)·onehot + ε/classes. Default 0. */
  labelSmoothing?: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. Default 1. */
  clipNorm?: number;
  /**
   * Parameters kept fixed: `'none'` (default), `'all'` but the classifier (a linear probe), or N:
   * the embeddings and every block but the last N (the final layernorm and the head train).
   * Frozen parameters get no AdamW update, no weight decay, and stay out of the clipping norm.
   */
  freeze?: 'none' | 'all' | number;
  /**
   * Activation recomputation: keep only each block's input through the forward and run a block's
   * forward again just before its backward (about a third more arithmetic per step; the same bits),
   * so the activations take one block's memory instead of every block's: a batch that would not
   * fit in a wasm memory's 4 GiB (vit-b16 at batch 32) does. Default false.
   */
  recompute?: boolean;
  /** Seed of the initial weights (when not loaded from a checkpoint). Default 0. */
  seed?: number;
  /** Class labels for the saved config's id2label. Default "0", "1", … */
  labels?: string[];
  /** Start from this checkpoint (Hugging Face names) instead of random weights. */
  from?: ModelLocation;
  /**
   * With `from`: leave the checkpoint's classifier out and draw a new one (from `seed`) for
   * `dims.numLabels` classes — fine-tuning to your own classes, or from a backbone without a head.
   */
  newHead?: boolean;
  /** Workers for data-parallel training. Default 1. */
  threads?: number;
  /**
   * Run even a one-thread trainer in a worker, so the calling thread stays free: a worker sharing
   * the trainer's memory, or where memory cannot be shared (no SharedArrayBuffer: a page without
   * COOP/COEP, WebKit) a worker with its own memory that sends the parameters back after every step.
   * Default true on a page's main thread (where a step in the calling thread would freeze the page),
   * false elsewhere (Node, Deno, Bun, a worker: the step runs in the calling thread).
   */
  isolate?: boolean;
  /**
   * Where the training worker script is served, for pages whose Content-Security-Policy forbids
   * `blob:` workers: the package's `dist/train-worker.browser.js` (browsers) or `dist/train-worker.js` (Node).
   */
  workerUrl?: string | URL;
}

/** {@link TrainOptions} with every default filled in, as a training worker gets them. */
export type Options = Required<
  Omit<TrainOptions, 'from' | 'labels' | 'threads' | 'workerUrl' | 'isolate' | 'newHead'>
> & {
  labels: string[];
};

/** Learning rate at step `t` (1-based): linear warmup from 0 over warmupSteps, then cosine decay to 0 at totalSteps. */
export function scheduledRate(o: { lr: number; warmupSteps: number; totalSteps: number }, t: number): number {
  const { lr, warmupSteps: w, totalSteps: total } = o;
  if (w > 0 && t <= w) return (lr * t) / w;
  if (!total || total <= w) return lr;
  const f = Math.min(1, (t - w) / (total - w));
  return lr * 0.5 * (1 + Math.cos(Math.PI * f));
}
