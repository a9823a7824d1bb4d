/**
 * The network's parameters as they sit in wasm memory: byte pointers, in the model's own terms
 * (not a checkpoint's names). A linear layer is in one of three forms, told apart by `kind`:
 *   packed     f32 W packed for the forward GEMM (inference)
 *   trainable  the packed W and, beside it, W unpacked for the backward (training)
 *   int8       int8 W only, one scale per output channel (loadModel's `weights: 'int8'`)
 * Shapes: N outputs, K inputs, D hidden, T tokens.
 */
import type { WasmMemory } from '../runtime/memory.js';
import { dequantizeRows, packedSize, unpackWeight, unpackWeightI8 } from '../runtime/pack.js';

/** f32 W packed (⌈N/8⌉, K, 8) for gemm_4x8, and the bias b (N, read 8 at a time: padded, or followed by other floats). */
export interface PackedLinear {
  kind: 'packed';
  w: number;
  b: number;
  N: number;
  K: number;
}

/** A {@link PackedLinear} that also keeps W unpacked, raw (N, K) row-major, for the backward. */
export interface TrainableLinear extends Omit<PackedLinear, 'kind'> {
  kind: 'trainable';
  raw: number;
}

/**
 * int8 weights only, for gemm_i8_4x8: wq packed (⌈N/8⌉, Kp/4, 2, 4, 4) bytes, wsum (⌈N/8⌉·8) i32
 * channel sums, sw (⌈N/8⌉·8) f32 channel scales, Kp = K padded to 4; the bias b (N) stays f32.
 */
export interface Int8Linear {
  kind: 'int8';
  wq: number;
  wsum: number;
  sw: number;
  Kp: number;
  b: number;
  N: number;
  K: number;
}

export type Linear = PackedLinear | TrainableLinear | Int8Linear;

/** A linear layer's gradients: dW (N, K) row-major and db (N). */
export interface LinearGrad {
  dw: number;
  db: number;
  N: number;
  K: number;
}

/** A layernorm's γ (D) and β (D); in gradients, dγ and dβ. */
export interface Norm {
  g: number;
  b: number;
}

/** One encoder block: pre-norm attention, then pre-norm MLP. */
export interface Layer<L = Linear> {
  ln1: Norm;
  qkv: L; // (3D, D) rows [q | k | v]
  proj: L; // (D, D)
  ln2: Norm;
  fc1: L; // (M, D)
  fc2: L; // (D, M)
  relBias?: number; // (H, T, T) added to the attention scores (Arch.attentionBias 'relative'); may be every layer's
  /** LayerScale's γ (D) on the attention and MLP branches, kept apart when training (inference folds them into proj and fc2). */
  ls1?: number;
  ls2?: number;
}

/**
 * An attention-pool head (Arch.pooling 'map': SigLIP's, timm's AttentionPoolLatent): the query
 * projected from its learned probe once at load, K and V from the tokens, the output projection,
 * then x + MLP(layernorm(x)).
 */
export interface MapHead<L = Linear> {
  q: number; // (D) probe · Wqᵀ + bq
  kv: L; // (2D, D) rows [k | v]
  proj: L; // (D, D)
  norm: Norm;
  fc1: L; // (Mh, D)
  fc2: L; // (D, Mh)
}

/** Pointers to every parameter of the model. */
export interface Weights<L = Linear> {
  patch: L; // (D, C·p·p) the patch embedding, a conv of stride p as a GEMM
  cls?: number; // (D); absent without a class token (Arch.prefix [])
  pos: number; // (T, D), zero rows for tokens without a position embedding (Arch.positions)
  layers: Layer<L>[];
  norm: Norm; // the final layernorm
  head?: L; // (numLabels, D) the classifier; absent without one (Arch.head 'none')
  dist?: number; // (D) the distillation token (DeiT: Arch.prefix ['cls', 'dist'])
  registers?: number; // (n, D) the register tokens (Arch.prefix ['cls', 'reg' × n])
  headDist?: L; // (numLabels, D) the distillation head (Arch.head 'distilled')
  embedNorm?: Norm; // the layernorm before the first block (Arch.embedNorm)
  projection?: L; // (projectionDim, D) an image tower's projection, zero bias (Arch.head 'projection')
  mapHead?: MapHead<L>; // the attention-pool head (Arch.pooling 'map')
  pooler?: L; // (D, D) Hugging Face's pooler dense layer (tanh after it), where the checkpoint has one
}

/** Gradients of the parameters, laid out as {@link Weights}. */
export type Gradients = Weights<LinearGrad>;

/**
 * A linear layer's W (N, K), row-major as in the checkpoint, read back out of its packed panels
 * (an int8 layer's dequantized: scale[n] · q[n, k]).
 */
export function linearWeight(mem: WasmMemory, l: Linear): Float32Array {
  if (l.kind !== 'int8') return unpackWeight(mem.f32(l.w, packedSize(l.N, l.K)), l.N, l.K);
  const q = unpackWeightI8(new Int8Array(mem.memory.buffer, l.wq, Math.ceil(l.N / 8) * 8 * l.Kp), l.N, l.K);
  return dequantizeRows(q, mem.f32(l.sw, l.N), l.K, new Float32Array(l.N * l.K));
}
