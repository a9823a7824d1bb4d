/**
 * Running the forward: the inference pool worker's side (one kernel instance over the model's
 * shared memory, the same forward on its share of each op) and the one-thread run for memories
 * that cannot be shared. Both build their Exec here, so nothing above this layer computes.
 */

import { barrier, controlWords } from '../runtime/barrier.js';
import { instantiateKernels, type KernelExports } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import type { Fault, PoolWorkerApi } from '../runtime/pool.js';
import { PLAIN_VIT } from './arch.js';
import { Exec } from './ops.js';
import { type Activations, stream } from './plan.js';
import { tokens, type ViTShape } from './shape.js';
import { type TextActivations, type TextShape, type TextWeights, textForward } from './text.js';
import { meanOfTokens } from './trace.js';
import { vitForward } from './vit.js';
import type { Weights } from './weights.js';

/** What an inference pool worker is started with. */
export interface InferenceInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  /** This worker's index, 0 … workers − 1. */
  id: number;
  workers: number;
  shape: ViTShape;
  weights: Weights;
  /** Ops cheaper than this run on worker 0 alone (Exec's pool.serialBelow); 0 until calibrated. */
  serialBelow: number;
  /** A text tower beside the image tower (a CLIPModel's): its shape and weights in the same memory. */
  text?: { shape: TextShape; weights: TextWeights };
}

/** A text forward for the pool: its plan (tokens written) and the row each text is read at. */
export interface TextJob {
  text: TextActivations;
  rows: number[];
}

/** What the inference pool runs: an image forward over its plan, or a text forward. */
export type InferenceJob = Activations | TextJob;

/** What one worker measures at load (src/model/load.ts, tuneThreads). */
export interface Calibration {
  /** ns per barrier, all workers meeting, median of many. */
  barrierNs: number;
  /** ns per flop of a small GEMM on this worker. */
  nsPerFlop: number;
}

/** The inference worker's API: `run` computes its share of one forward over the plan it is given. */
export function inferenceWorker(exit: () => never): PoolWorkerApi<InferenceInit, InferenceJob, void> & {
  calibrate(scratch: number): Calibration;
  tune(serialBelow: number): void;
} {
  let init: InferenceInit, k: KernelExports, sync: () => void, ctl: Int32Array;
  let pendingFault: Exclude<Fault, 'kill'> | null = null;
  return {
    init(o) {
      init = o;
      k = instantiateKernels(o.module, o.memory);
      sync = barrier(o.memory, o.workers);
      ctl = controlWords(o.memory);
    },
    run(job, solo) {
      const fault = pendingFault;
      pendingFault = null;
      if (fault === 'trap') k.gemm_4x8(0, 1, 0, 0, 2 ** 31, 1, 8, 8, 8, 0); // a store far past the memory: RuntimeError
      const exitAt = typeof fault === 'object' && fault ? fault.exitAtOp : -1;
      const onOp = exitAt >= 0 ? (op: number) => (op === exitAt ? exit() : undefined) : undefined;
      const text = 'text' in job ? job : null;
      const ex = new Exec({
        k,
        memory: init.memory,
        scratch: text ? text.text.scratch[init.id] : (job as Activations).scratch[init.id],
        // solo: the pool called this worker alone (a job too small to share): every op here, no barrier
        pool: solo
          ? { workers: 1, id: 0, serialBelow: Number.POSITIVE_INFINITY, ctl, sync, onOp }
          : { workers: init.workers, id: init.id, serialBelow: init.serialBelow, ctl, sync, onOp },
      });
      if (!text) vitForward(ex, init.shape, init.weights, job as Activations);
      else if (init.text) textForward(ex, init.text.shape, init.text.weights, text.text, text.rows);
      else throw new Error('vit-wasm: internal: a text forward on a pool started without the text tower');
    },
    /**
     * Called on every worker at once: the time of a barrier (all of them meeting), and of a small
     * GEMM in this worker's 3 · 64 · 64 floats at `scratch`.
     */
    calibrate(scratch) {
      const ts: number[] = [];
      for (let i = 0; i < 48; i++) {
        const t0 = performance.now();
        for (let j = 0; j < 8; j++) sync();
        ts.push((performance.now() - t0) / 8);
      }
      const n = 64,
        w = scratch + n * n * 4,
        c = w + n * n * 4,
        gemm = () => k.gemm_4x8(scratch, n, w, 0, c, n, n, n, n, 0);
      for (let i = 0; i < 64; i++) gemm(); // past V8's baseline tier
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < 5; r++) {
        const t0 = performance.now();
        for (let i = 0; i < 16; i++) gemm();
        best = Math.min(best, (performance.now() - t0) / 16);
      }
      ts.sort((x, y) => x - y);
      return { barrierNs: ts[ts.length >> 1] * 1e6, nsPerFlop: (best * 1e6) / (2 * n * n * n) };
    },
    tune(serialBelow) {
      init.serialBelow = serialBelow;
    },
    /** For tests of the pool's fault handling: the next run traps in a kernel, or exits this worker at op N. */
    fault(kind) {
      pendingFault = kind;
    },
  };
}

/** The forward over plan `a` (already holding its pixels) in the calling thread: the one-thread fallback. */
export function forwardHere(
  k: KernelExports,
  mem: WasmMemory,
  shape: ViTShape,
  weights: Weights,
  a: Activations,
): void {
  vitForward(new Exec({ k, memory: mem.memory, scratch: a.scratch[0] }), shape, weights, a);
}

/** The text forward over plan `a` (its tokens written) in the calling thread: the one-thread fallback. */
export function textForwardHere(
  k: KernelExports,
  mem: WasmMemory,
  tower: { shape: TextShape; weights: TextWeights },
  a: TextActivations,
  rows: readonly number[],
): void {
  textForward(new Exec({ k, memory: mem.memory, scratch: a.scratch[0] }), tower.shape, tower.weights, a, rows);
}

/**
 * Mean-pooled embeddings (B, D) after a forward over plan `a`: the final layernorm over every token
 * (the forward normed only the cls rows), in the calling thread, then the mean of the patch tokens
 * (timm's global_pool='avg'). Uses memory above `mem.end`, given back before it returns.
 */
export function meanPooled(k: KernelExports, mem: WasmMemory, c: ViTShape, w: Weights, a: Activations): Float32Array {
  const D = c.hiddenSize,
    { T, Np } = tokens(c),
    end = mem.end,
    normed = mem.alloc(a.B * T * D);
  try {
    const ex = new Exec({ k, memory: mem.memory, scratch: a.scratch[0] });
    ex.layernorm(stream(a), w.norm, normed, a.B * T, D, c.layerNormEps);
    // the patch tokens only: the prefix tokens (cls, and a DeiT's distillation token) left out
    return meanOfTokens(mem.f32(normed, a.B * T * D), new Float32Array(a.B * D), a.B, T, T - Np, D);
  } finally {
    mem.reset(end);
  }
}

/**
 * The final-normed cls token (B, D) of a model whose head reads un-normed tokens (finalNorm
 * 'none': CLIPForImageClassification, where it is CLIP's pooler output). Memory above `mem.end`,
 * given back before it returns.
 */
function normedCls(k: KernelExports, mem: WasmMemory, c: ViTShape, w: Weights, a: Activations): Float32Array {
  const D = c.hiddenSize,
    end = mem.end,
    out = mem.alloc(a.B * D);
  try {
    const ex = new Exec({ k, memory: mem.memory, scratch: a.scratch[0] });
    ex.layernorm(stream(a), w.norm, out, a.B, D, c.layerNormEps, tokens(c).T * D); // the cls rows
    return mem.f32(out, a.B * D).slice();
  } finally {
    mem.reset(end);
  }
}

/**
 * Hugging Face's pooler output (B, D) after a forward over plan `a` whose head reads the final-normed
 * cls token (a.cls): tanh(cls · Wᵀ + b), the dense layer as a GEMM in the calling thread, tanh in
 * float64 rounded once. Uses memory above `mem.end`, given back before it returns.
 */
export function poolerOutput(k: KernelExports, mem: WasmMemory, c: ViTShape, w: Weights, a: Activations): Float32Array {
  if (!w.pooler) throw new Error('vit-wasm: internal: a pooler output without the pooler');
  const D = c.hiddenSize,
    end = mem.end,
    out = mem.alloc(a.B * D);
  try {
    new Exec({ k, memory: mem.memory, scratch: a.scratch[0] }).linear(a.cls, w.pooler, out, a.B);
    return Float32Array.from(mem.f32(out, a.B * D), Math.tanh);
  } finally {
    mem.reset(end);
  }
}

/**
 * What embed() gives: an image tower's projection, Hugging Face's pooler output, the cls token,
 * the mean of the patch tokens, or (`own`) what the model's head reads.
 */
export type EmbedPooling = 'projected' | 'pooler' | 'cls' | 'mean' | 'own' | 'head';

/**
 * The embedding `asked` for (embed's `pooling` option) on this model, or by default the family's
 * pooler's: an Error naming what the model lacks for it.
 */
export function embedPooling(c: ViTShape, w: Weights, asked: unknown): EmbedPooling {
  const arch = c.arch ?? PLAIN_VIT,
    own = arch.pooling;
  if (asked !== undefined && asked !== 'cls' && asked !== 'mean' && asked !== 'pooler' && asked !== 'head')
    throw new Error(`vit-wasm: embed: pooling must be 'cls', 'mean', 'pooler' or 'head', got ${JSON.stringify(asked)}`);
  if (asked === 'head') return 'head';
  if (asked === undefined) return arch.head === 'projection' ? 'projected' : own === 'clsMean' ? 'cls' : 'own';
  if (asked === 'pooler' && (!w.pooler || own !== 'cls'))
    throw new Error(
      "vit-wasm: embed: pooling 'pooler' needs Hugging Face's pooler (pooler.dense, a ViTModel's or DeiTModel's) on a model that reads its cls token; this model has none",
    );
  if (asked === 'cls' && arch.prefix[0] !== 'cls')
    throw new Error("vit-wasm: embed: pooling 'cls' is not defined for this model: it has no class token; use 'mean'");
  if (asked === 'cls' && own === 'mean' && arch.finalNorm === 'pooled')
    throw new Error(
      "vit-wasm: embed: pooling 'cls' is not defined for this model: its final norm (fc_norm) is on the mean of its patch tokens, not on its tokens; use 'mean'",
    );
  return asked === own ? 'own' : asked;
}

/** The embeddings (B, D) — or (B, projectionDim) for 'projected' — after a forward over plan `a`. */
export function embeddings(
  k: KernelExports,
  mem: WasmMemory,
  c: ViTShape,
  w: Weights,
  a: Activations,
  pooling: EmbedPooling,
): Float32Array {
  const { B } = a,
    D = c.hiddenSize,
    own = (c.arch ?? PLAIN_VIT).pooling;
  if (pooling === 'projected') return mem.f32(need(a.projected), B * (c.projectionDim ?? 0)).slice();
  if (pooling === 'pooler') return poolerOutput(k, mem, c, w, a); // tanh(dense(cls)), HF's pooler_output
  if (pooling === 'head') return mem.f32(a.cls, B * (own === 'clsMean' ? 2 : 1) * D).slice(); // what a classifier reads
  if (pooling === 'cls' && (c.arch ?? PLAIN_VIT).finalNorm === 'none') return normedCls(k, mem, c, w, a);
  // DINOv2's head reads [cls; mean] per image: either half
  if (own === 'clsMean') return rowSlices(mem.f32(a.cls, B * 2 * D), B, 2 * D, pooling === 'mean' ? D : 0, D);
  if (pooling === 'own') return mem.f32(a.cls, B * D).slice(); // what the head reads
  if (pooling === 'mean') return meanPooled(k, mem, c, w, a);
  // a mean-pooling model's final-normed cls tokens: row 0 of each image's normed tokens
  const { T } = tokens(c);
  return rowSlices(mem.f32(need(a.pool?.normed), B * T * D), B, T * D, 0, D);
}

/** From each of B rows of `stride` floats, the `n` floats at `offset`: (B, n). */
function rowSlices(x: Float32Array, B: number, stride: number, offset: number, n: number): Float32Array {
  const out = new Float32Array(B * n);
  for (let b = 0; b < B; b++) out.set(x.subarray(b * stride + offset, b * stride + offset + n), b * n);
  return out;
}

/** A buffer the plan keeps for this embedding, or an internal error. */
function need(ptr: number | undefined): number {
  if (ptr === undefined) throw new Error('vit-wasm: internal: an embedding without its buffer in the plan');
  return ptr;
}
