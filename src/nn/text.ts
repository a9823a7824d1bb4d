/**
 * A text tower (CLIP's or SigLIP's text transformer): the ViT's encoder blocks (src/nn/vit.ts,
 * layerForward) over token embeddings instead of patches — CLIP's with each token attending to
 * itself and the tokens before it (a causal mask, as an attention bias of −3.4e38 above the
 * diagonal: exp of it is exactly 0, so a row's softmax and its P·V equal the unmasked computation
 * over its prefix), SigLIP's with every token attending to every token — then the final layernorm
 * of the row each text is read at (CLIP: its end-of-text token; SigLIP: the last) and the
 * projection into the space the image tower shares. Shapes: B texts of T tokens (CLIP: padded
 * after their end with any token, which the mask keeps from every row a text is read at; SigLIP:
 * every text at the model's length, padded by its tokenizer), D hidden, H heads, P the embedding size.
 */
import { attentionPanelFloats } from '../runtime/kernels.js';
import { type Arch, PLAIN_VIT } from './arch.js';
import type { Exec } from './ops.js';
import { type Alloc, type LayerActivations, type Quant, quantPlan } from './plan.js';
import { type BlockShape, layerForward } from './vit.js';
import type { Layer, Linear, Norm } from './weights.js';

/** A text tower's shape: every number its arithmetic depends on. */
export interface TextShape extends BlockShape {
  arch: Arch;
  numLayers: number;
  intermediateSize: number;
  /** Tokens a text may have (max_position_embeddings): longer ones are truncated by the tokenizer. */
  maxPositions: number;
  vocabSize: number;
  /** The size of the shared embedding space (projection_dim; SigLIP's projection_size). */
  projectionDim: number;
  /** Whether a token sees only the tokens before it (CLIP) or every token (SigLIP). */
  causal: boolean;
}

/** The arithmetic of CLIP's text blocks: the ViT's pre-norm blocks, with `activation`. */
export function textArch(activation: Arch['activation']): Arch {
  return { ...PLAIN_VIT, prefix: [], positions: 'all', activation, head: 'projection' };
}

/** A text tower's weights in the wasm memory; the token and position tables stay in JavaScript (read by row). */
export interface TextWeights {
  layers: Layer[];
  norm: Norm;
  projection: Linear;
}

/** Where one text forward keeps its buffers (byte pointers), for B texts of T tokens. */
export interface TextActivations {
  B: number;
  T: number;
  tokens: number; // (B·T, D) token + position embeddings, then the residual stream
  layer: LayerActivations; // every layer's intermediates (one set: inference)
  bias: number; // (H, T, T) the causal mask, each head's the same (0: none, every token sees every token)
  pooled: number; // (B, D) the final-normed row each text is read at
  projected: number; // (B, P)
  kv: number; // (B, H, attentionPanelFloats(T, dh))
  scratch: number[]; // per worker (4, T8): attention scores
  /** int8 weights only: where a linear layer's input rows are quantized. */
  quant?: Quant;
  /** A trace only: each layer's attention probabilities (B, H, T, T). */
  probs?: number[];
}

/** Buffers for B texts of T tokens (attention scratch for each of `workers`), a causal mask written (`f32` views the memory). */
export function textPlan(
  alloc: Alloc,
  f32: (ptr: number, n: number) => Float32Array,
  c: TextShape,
  B: number,
  T: number,
  workers = 1,
  int8 = false,
  keepAttention = false,
): TextActivations {
  const D = c.hiddenSize,
    H = c.numHeads,
    BT = B * T;
  const x = alloc(BT * D),
    h = alloc(BT * D);
  const layer: LayerActivations = {
    xin: x,
    h1: h,
    qkv: alloc(BT * 3 * D),
    att: alloc(BT * D),
    xmid: x,
    h2: h,
    act: alloc(BT * c.intermediateSize),
    xout: x,
  };
  const bias = c.causal ? alloc(H * T * T) : 0;
  if (c.causal) {
    const mask = f32(bias, H * T * T);
    // −FLT_MAX rather than −∞: a score plus it stays finite, and its exp is exactly 0 in every kernel
    for (let hd = 0; hd < H; hd++)
      for (let i = 0; i < T; i++)
        for (let j = 0; j < T; j++) mask[(hd * T + i) * T + j] = j > i ? -3.4028234663852886e38 : 0;
  }
  return {
    B,
    T,
    tokens: x,
    layer,
    bias,
    pooled: alloc(B * D),
    projected: alloc(B * c.projectionDim),
    kv: alloc(B * H * attentionPanelFloats(T, D / H)),
    scratch: Array.from({ length: workers }, () => alloc(4 * Math.ceil(T / 8) * 8)),
    quant: int8 ? quantPlan(alloc, c, BT) : undefined,
    probs: keepAttention ? Array.from({ length: c.numLayers }, () => alloc(B * H * T * T)) : undefined,
  };
}

/**
 * The forward over plan `a` (its tokens written): every block (with the causal mask where the plan
 * has one), then for text b the final layernorm of its row `rows[b]` and the projection → a.projected.
 */
export function textForward(ex: Exec, c: TextShape, w: TextWeights, a: TextActivations, rows: readonly number[]): void {
  const D = c.hiddenSize;
  const run = { B: a.B, T: a.T, kv: a.kv, quant: a.quant };
  const relBias = a.bias || undefined;
  w.layers.forEach((l, i) =>
    layerForward(ex, c, { ...l, relBias }, a.probs ? { ...a.layer, probs: a.probs[i] } : a.layer, run),
  );
  for (let b = 0; b < a.B; b++)
    ex.layernorm(a.tokens + (b * a.T + rows[b]) * D * 4, w.norm, a.pooled + b * D * 4, 1, D, c.layerNormEps);
  ex.linear(a.pooled, w.projection, a.projected, a.B);
}

/**
 * Token embeddings plus position embeddings (B·T, D) for `ids` (B texts of T ids each, row-major),
 * rounded to f32 as torch adds two f32 tensors, into `out`.
 */
export function embedIds(
  ids: Int32Array,
  tokenTable: Float32Array,
  positionTable: Float32Array,
  T: number,
  D: number,
  out: Float32Array,
): void {
  for (let r = 0; r < ids.length; r++) {
    const t = ids[r] * D,
      p = (r % T) * D;
    for (let d = 0; d < D; d++) out[r * D + d] = tokenTable[t + d] + positionTable[p + d];
  }
}

/** A loaded text tower: its shape and weights, its tables (row-major), its logit scale (and bias) and the row a text is read at. */
export interface TextTower {
  shape: TextShape;
  weights: TextWeights;
  tokens: Float32Array; // (V, D)
  positions: Float32Array; // (maxPositions, D)
  /** log of the temperature: similarities are scaled by exp(logitScale). */
  logitScale: number;
  /** SigLIP: a label's score is sigmoid(exp(logitScale) · cosine + logitBias), each label on its own. */
  logitBias?: number;
  /** The row a text is read at (endOfText): 'argmax', 'last', or the first of this token id. */
  endRow: 'argmax' | 'last' | number;
}

/**
 * The row a text is read at, as transformers' CLIPTextTransformer and open_clip find it: 'argmax'
 * (eos_token_id 2, the original checkpoints' config; open_clip's 'argmax' pool), the first highest
 * id (the end-of-text token is the last in CLIP's vocabulary); 'last', the last row (SigLIP); else
 * the first of that id, or row 0 when there is none (argmax of zeros).
 */
export function endOfText(ids: ArrayLike<number>, rule: TextTower['endRow']): number {
  if (rule === 'last') return ids.length - 1;
  let at = 0;
  for (let i = 1; i < ids.length; i++)
    if (rule === 'argmax' ? ids[i] > ids[at] : ids[i] === rule && ids[at] !== rule) at = i;
  return rule === 'argmax' || ids[at] === rule ? at : 0;
}
