/**
 * Running the forward: the inference pool worker's side (one kernel instance over the model's
 * shared memory, the same forward on its share of each op) and the one-thread run for memories
 * that cannot be shared. Both build their Exec here, so nothing above this layer computes.
 */
import { barrier, controlWords } from '../runtime/barrier.js';
import { instantiateKernels, type KernelExports } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import type { Fault, PoolWorkerApi } from '../runtime/pool.js';
import { Exec } from './ops.js';
import { type Activations, stream } from './plan.js';
import { tokens, type ViTShape } from './shape.js';
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
}

/** The inference worker's API: `run` computes its share of one forward over the plan it is given. */
export function inferenceWorker(exit: () => never): PoolWorkerApi<InferenceInit, Activations, void> {
  let init: InferenceInit, k: KernelExports, sync: () => void, ctl: Int32Array;
  let pendingFault: Exclude<Fault, 'kill'> | null = null;
  return {
    init(o) {
      init = o;
      k = instantiateKernels(o.module, o.memory);
      sync = barrier(o.memory, o.workers);
      ctl = controlWords(o.memory);
    },
    run(a) {
      const fault = pendingFault;
      pendingFault = null;
      if (fault === 'trap') k.gemm_4x8(0, 1, 0, 0, 2 ** 31, 1, 8, 8, 8, 0); // a store far past the memory: RuntimeError
      const exitAt = typeof fault === 'object' && fault ? fault.exitAtOp : -1;
      const onOp = exitAt >= 0 ? (op: number) => (op === exitAt ? exit() : undefined) : undefined;
      const ex = new Exec({
        k,
        memory: init.memory,
        scratch: a.scratch[init.id],
        pool: { workers: init.workers, ctl, sync, onOp },
      });
      vitForward(ex, init.shape, init.weights, a);
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
