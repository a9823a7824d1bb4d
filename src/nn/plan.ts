/**
 * Activation plans: where one forward (and a training step's backward) keeps its intermediates, as
 * byte pointers into the wasm memory. Three uses, one forward:
 *   inference   one set of buffers shared by every layer; residuals added in place, GELU fused
 *   training    every layer keeps its own buffers (the backward reads them); GELU's input kept
 *   inspection  as training, and the attention and MLP outputs kept apart from the residual sums
 * A pointer of 0 is never a buffer: optional buffers are `undefined` when not kept.
 * Shapes: B images, C×H×W pixels, p patch, Np patches, T = P + Np tokens (P prefix tokens: cls, and a
 * DeiT's distillation token or registers), D hidden, H heads,
 * dh = D/H, M MLP size, L labels.
 */
import { attentionPanelFloats, GEMM_ROW_BLOCK_BYTES } from '../runtime/kernels.js';
import { checkArch, PLAIN_VIT, untrainable } from './arch.js';
import { fc1Width, tokens, type ViTShape } from './shape.js';

/** Where one encoder layer's intermediates go (byte pointers into the wasm memory). */
export interface LayerActivations {
  xin: number; // (B·T, D)  residual stream into the layer
  h1: number; // (B·T, D)  layernorm before attention
  qkv: number; // (B·T, 3D) [q | k | v] per token
  probs?: number; // (B, H, T, T) softmax(QKᵀ/√dh) per head, when kept
  att: number; // (B·T, D)  attention output, heads concatenated
  proj?: number; // (B·T, D)  the output projection alone, when kept apart (else added straight into xmid)
  xmid: number; // (B·T, D)  xin + projection (may be xin itself: added in place)
  h2: number; // (B·T, D)  layernorm before the MLP
  u?: number; // (B·T, M)  fc1 output before GELU, when kept (else GELU is fused into the fc1 GEMM); (B·T, 2M) for a gated MLP, always
  act: number; // (B·T, M)  GELU(fc1)
  mlpOut?: number; // (B·T, D)  fc2 alone, when kept apart (else added straight into xout)
  xout: number; // (B·T, D)  xmid + MLP (may be xmid itself)
}

/** A layer of a kept plan (training, inspection): what the backward reads is there. */
export interface KeptLayerActivations extends LayerActivations {
  probs: number;
  u: number;
}

/** A layer of an inspection plan: the projection and MLP outputs kept apart from the residual sums. */
export interface InspectedLayerActivations extends KeptLayerActivations {
  proj: number;
  mlpOut: number;
}

/** Every activation pointer of one forward, for a batch of B. */
export interface Activations<Lyr extends LayerActivations = LayerActivations> {
  B: number;
  pixels: number; // (B, C, H, W)  normalized input
  patches: number; // (B·Np, C·p·p) flattened patches
  pe: number; // (B·Np, D)     patch embeddings
  tokens: number; // (B·T, D)      transformer input: [cls; pe] + position embeddings
  /** Training a model with a layernorm before the blocks (Arch.embedNorm): the tokens before it (B·T, D); else it runs in place. */
  embedded?: number;
  layers: Lyr[];
  cls: number; // (B, D)        what the head reads: the final-normed cls token, or the (normed) mean of the patch tokens (clsMean: (B, 2D), both)
  /**
   * Mean pooling and the attention pool: the final-normed tokens (B·T, D) before the mean or the
   * pool (norm on the tokens), or the mean (B, D) before its norm; the attention pool's K and V
   * (B·T, 2D), its attention (B, D), projection (B, D), normed projection (B, D) and MLP (B, M).
   */
  pool?: { normed?: number; mean?: number; map?: { kv: number; att: number; o: number; h: number; u: number } };
  /** The distilled head only: the final-normed distillation tokens (B, D) and their head's logits (B, L). */
  distilled?: { token: number; logits: number };
  logits: number; // (B, L)
  /** An image tower only (Arch.head 'projection'): the projected embeddings (B, projectionDim). */
  projected?: number;
  kv: number; // (B, H, attentionPanelFloats(T, dh)): each head's Kᵀ and V panels (attention_pack_kv; scratch)
  scratch: number[]; // per worker (4, T8): four rows of attention scores, T8 = T rounded up to 8
  /** int8 weights only: where a linear layer's input rows are quantized (see Exec.linear). */
  quant?: Quant;
}

/**
 * aq (⌈B·T/4⌉, Kp/4, 4, 4) u8 rows quantized to u7 (interleaved by blocks of 4 rows), sa (B·T) f32
 * their scales, za (B·T) i32 their zero points; Kp the largest padded K.
 */
export interface Quant {
  aq: number;
  sa: number;
  za: number;
}

/** Room for quantized activations: every row of the largest int8 linear layer's input. */
export function quantPlan(alloc: Alloc, c: Pick<ViTShape, 'hiddenSize' | 'intermediateSize'>, BT: number): Quant {
  const Kp = Math.ceil(Math.max(c.hiddenSize, c.intermediateSize) / 4) * 4;
  return { aq: alloc(Math.ceil(BT / 4) * Kp), sa: alloc(BT), za: alloc(BT) };
}

/** Mean pooling's buffers (none for cls pooling); the normed tokens in `tokensAt` when given. */
function poolPlan(alloc: Alloc, c: ViTShape, B: number, tokensAt?: number): Activations['pool'] {
  const arch = c.arch ?? PLAIN_VIT,
    D = c.hiddenSize;
  if (arch.pooling === 'cls' || arch.finalNorm === 'none') return undefined; // (none: the mean goes straight to a.cls)
  if (arch.finalNorm === 'pooled') return { mean: alloc(B * D) };
  const normed = tokensAt ?? alloc(B * tokens(c).T * D);
  if (arch.pooling !== 'map') return { normed };
  const T = tokens(c).T;
  return {
    normed,
    map: {
      kv: alloc(B * T * 2 * D),
      att: alloc(B * D),
      o: alloc(B * D),
      h: alloc(B * D),
      u: alloc(B * c.intermediateSize),
    },
  };
}

/** Floats per image of what the head reads: D, or 2D for the cls token and the mean side by side. */
export function headInput(c: ViTShape): number {
  return (c.arch ?? PLAIN_VIT).pooling === 'clsMean' ? 2 * c.hiddenSize : c.hiddenSize;
}

/** An image tower's projected embeddings (none for other heads). */
function projectedPlan(alloc: Alloc, c: ViTShape, B: number): number | undefined {
  if ((c.arch ?? PLAIN_VIT).head !== 'projection') return undefined;
  if (!c.projectionDim) throw new Error('vit-wasm: internal: an image tower without its projectionDim');
  return alloc(B * c.projectionDim);
}

/** The distilled head's buffers (none for one head). */
function distilledPlan(alloc: Alloc, c: ViTShape, B: number): Activations['distilled'] {
  if ((c.arch ?? PLAIN_VIT).head !== 'distilled') return undefined;
  return { token: alloc(B * c.hiddenSize), logits: alloc(B * c.numLabels) };
}

/** The residual stream after the last layer. */
export const stream = (a: Activations) => a.layers[a.layers.length - 1]?.xout ?? a.tokens;

/** The backward's working buffers, for a batch of B (byte pointers). */
export interface BackwardBuffers {
  labels: number; // (B) i32
  dlogits: number; // (B, L)
  dcls: number; // (B, D), or (B, 2D) for a head that reads the cls token and the mean
  dx: number; // (B·T, D) gradient of the residual stream
  dh: number; // (B·T, D)
  datt: number; // (B·T, D)
  dqkv: number; // (B·T, 3D)
  dact: number; // (B·T, M)
  du: number; // (B·T, M)
  dpe: number; // (B·Np, D)
  /** dW = dYᵀ·X's packed operands (src/nn/ops.ts, linearBackward): a row block of dYᵀ, X's panels. */
  packA: number; // (gemmRowBlock(R), R) for any R the backward runs
  packB: number; // (⌈K/8⌉·8, rows) for the widest X of any layer
}

/** A bump allocator of f32 slots (byte pointers), e.g. WasmMemory.alloc. */
export type Alloc = (floats: number) => number;

/** Options of {@link inferencePlan} and {@link keptPlan}. */
export interface PlanOptions {
  /** Images in the batch. */
  B: number;
  /** Pool workers (each gets its own attention scratch). Default 1. */
  workers?: number;
  /** Room to quantize linear layers' inputs (int8 weights). Default false. */
  int8?: boolean;
}

/**
 * Inference: one buffer per role shared by every layer (the residual added in place, GELU fused),
 * so a forward's memory does not grow with depth. `keepAttention` keeps every layer's maps.
 */
export function inferencePlan(
  alloc: Alloc,
  c: ViTShape,
  { B, workers = 1, int8 = false, keepAttention = false }: PlanOptions & { keepAttention?: boolean },
): Activations {
  checkArch(c.arch ?? PLAIN_VIT); // a family whose arithmetic the ops do not compute never runs
  const { Np, T, T8 } = tokens(c),
    D = c.hiddenSize,
    C = c.numChannels,
    p = c.patchSize,
    BT = B * T;
  const x = alloc(BT * D),
    h = alloc(BT * D),
    qkv = alloc(BT * 3 * D),
    att = alloc(BT * D),
    act = alloc(BT * c.intermediateSize),
    // a gated MLP's fc1 output (2M per row) cannot be gated in place by chunks of rows: its own buffer
    u = (c.arch ?? PLAIN_VIT).mlp === 'gated' ? alloc(BT * fc1Width(c)) : undefined;
  return {
    B,
    pixels: alloc(B * C * c.imageSize[0] * c.imageSize[1]),
    patches: alloc(B * Np * C * p * p),
    pe: alloc(B * Np * D),
    tokens: x,
    layers: Array.from({ length: c.numLayers }, () => ({
      xin: x,
      h1: h,
      qkv,
      probs: keepAttention ? alloc(B * c.numHeads * T * T) : undefined,
      att,
      xmid: x,
      h2: h,
      u,
      act,
      xout: x,
    })),
    cls: alloc(B * headInput(c)),
    // the layers are done with h: the normed tokens of mean pooling go there
    pool: poolPlan(alloc, c, B, h),
    distilled: distilledPlan(alloc, c, B),
    logits: alloc(B * c.numLabels),
    projected: projectedPlan(alloc, c, B),
    kv: alloc(B * c.numHeads * attentionPanelFloats(T, c.hiddenSize / c.numHeads)),
    scratch: Array.from({ length: workers }, () => alloc(4 * T8)),
    quant: int8 ? quantPlan(alloc, c, BT) : undefined,
  };
}

/**
 * Training: every layer its own buffers (the backward reads them), each layer's output the next
 * one's input. With `recompute` (activation recomputation) only each layer's input is kept: the
 * layers share one set of the other buffers, which the backward refills by running a layer's
 * forward again just before its backward — one more forward per step, in the memory of one layer.
 */
export function trainingPlan(
  alloc: Alloc,
  c: ViTShape,
  o: PlanOptions & { recompute?: boolean },
): Activations<KeptLayerActivations> {
  const arch = c.arch ?? PLAIN_VIT,
    why = untrainable(arch);
  if (why) throw new Error(`vit-wasm: training a model with ${why} is not supported yet (its backward is not written)`);
  // LayerScale trains γ apart from W: the branches' outputs are kept for dγ
  const a = keptPlan(alloc, c, o, arch.layerScale, o.recompute ?? false);
  return arch.embedNorm ? { ...a, embedded: alloc(o.B * tokens(c).T * c.hiddenSize) } : a;
}

/**
 * Inspection: as training, and the attention projection and the MLP output kept apart from the
 * residual sums (the sums are then formed separately: the same bits).
 */
export function inspectionPlan(alloc: Alloc, c: ViTShape, o: PlanOptions): Activations<InspectedLayerActivations> {
  const a = keptPlan(alloc, c, o, true);
  return { ...a, layers: a.layers.map((l) => ({ ...l, proj: l.proj!, mlpOut: l.mlpOut! })) };
}

function keptPlan(
  alloc: Alloc,
  c: ViTShape,
  { B, workers = 1, int8 = false }: PlanOptions,
  keepParts: boolean,
  shareLayers = false,
): Activations<KeptLayerActivations> {
  checkArch(c.arch ?? PLAIN_VIT);
  const { Np, T, T8 } = tokens(c),
    D = c.hiddenSize,
    M = c.intermediateSize,
    C = c.numChannels,
    p = c.patchSize,
    BT = B * T;
  const pixels = alloc(B * C * c.imageSize[0] * c.imageSize[1]),
    patches = alloc(B * Np * C * p * p),
    pe = alloc(B * Np * D);
  let xin = alloc(BT * D);
  const tokensAt = xin;
  const inner = () => ({
    h1: alloc(BT * D),
    qkv: alloc(BT * 3 * D),
    probs: alloc(B * c.numHeads * T * T),
    att: alloc(BT * D),
    proj: keepParts ? alloc(BT * D) : undefined,
    xmid: alloc(BT * D),
    h2: alloc(BT * D),
    u: alloc(BT * fc1Width(c)),
    act: alloc(BT * M),
    mlpOut: keepParts ? alloc(BT * D) : undefined,
  });
  const shared = shareLayers ? inner() : null;
  const layers = Array.from({ length: c.numLayers }, (): KeptLayerActivations => {
    const s = { xin, ...(shared ?? inner()), xout: alloc(BT * D) };
    xin = s.xout;
    return s;
  });
  return {
    B,
    pixels,
    patches,
    pe,
    tokens: tokensAt,
    layers,
    cls: alloc(B * headInput(c)),
    pool: poolPlan(alloc, c, B),
    distilled: distilledPlan(alloc, c, B),
    logits: alloc(B * c.numLabels),
    projected: projectedPlan(alloc, c, B),
    kv: alloc(B * c.numHeads * attentionPanelFloats(T, c.hiddenSize / c.numHeads)),
    scratch: Array.from({ length: workers }, () => alloc(4 * T8)),
    quant: int8 ? quantPlan(alloc, c, BT) : undefined,
  };
}

/** The backward's buffers for a batch of B. */
export function backwardBuffers(alloc: Alloc, c: ViTShape, B: number): BackwardBuffers {
  const pad8 = (n: number) => Math.ceil(n / 8) * 8;
  const { Np, T } = tokens(c),
    D = c.hiddenSize,
    M = c.intermediateSize,
    BT = B * T;
  return {
    labels: alloc(B),
    dlogits: alloc(B * c.numLabels),
    dcls: alloc(B * headInput(c)),
    dx: alloc(BT * D),
    dh: alloc(BT * D),
    datt: alloc(BT * D),
    dqkv: alloc(BT * 3 * D),
    dact: alloc(BT * M),
    du: alloc(BT * M),
    dpe: alloc(B * Np * D),
    packA: alloc(GEMM_ROW_BLOCK_BYTES / 4 + 4 * Math.max(BT, B * Np)), // gemmRowBlock(R)·R floats at most, any R
    packB: alloc(Math.max(BT * pad8(Math.max(M, D)), B * Np * pad8(c.patchSize ** 2 * c.numChannels))),
  };
}
