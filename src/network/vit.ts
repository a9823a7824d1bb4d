/**
 * The ViT, written once: the forward as "A Visual Guide to Vision Transformers" walks through it and
 * HF's ViTForImageClassification computes it, and beside it the backward, op by op in reverse.
 * Three uses run this same code over different activation plans:
 *   inference   one set of buffers shared by every layer; residuals added in place, GELU fused
 *   training    every layer keeps its own buffers (the backward reads them); GELU's input kept
 *   inspection  as training, and the attention and MLP outputs kept apart from the residual sums
 * Shapes: B images, C×H×W pixels, p patch, Np patches, T = Np + 1 tokens, D hidden, H heads,
 * dh = D/H, M MLP size, L labels.
 */
import type { Weights } from '../io/checkpoint.js';
import type { ViTShape } from './config.js';
import type { Exec } from './ops.js';

/** Where one encoder layer's intermediates go (byte pointers into the wasm memory). */
export interface LayerActivations {
  xin: number; // (B·T, D)  residual stream into the layer
  h1: number; // (B·T, D)  layernorm before attention
  qkv: number; // (B·T, 3D) [q | k | v] per token
  probs: number; // (B, H, T, T) softmax(QKᵀ/√dh) per head, or 0: not kept
  att: number; // (B·T, D)  attention output, heads concatenated
  proj: number; // (B·T, D)  the output projection alone, or 0: added straight into xmid
  xmid: number; // (B·T, D)  xin + projection (may be xin itself: added in place)
  h2: number; // (B·T, D)  layernorm before the MLP
  u: number; // (B·T, M)  fc1 output before GELU, or 0: GELU fused into the fc1 GEMM
  act: number; // (B·T, M)  GELU(fc1)
  mlpOut: number; // (B·T, D)  fc2 alone, or 0: added straight into xout
  xout: number; // (B·T, D)  xmid + MLP (may be xmid itself)
}

/** Every activation pointer of one forward, for a batch of B. */
export interface Activations {
  B: number;
  pixels: number; // (B, C, H, W)  normalized input
  patches: number; // (B·Np, C·p·p) flattened patches
  pe: number; // (B·Np, D)     patch embeddings
  tokens: number; // (B·T, D)      transformer input: [cls; pe] + position embeddings
  layers: LayerActivations[];
  cls: number; // (B, D)        final-normed cls tokens
  logits: number; // (B, L)
  kt: number; // (B, H, ⌈T/8⌉, dh, 8) Kᵀ panels per head (scratch)
  scratch: number[]; // per worker (4, T8): four rows of attention scores, T8 = T rounded up to 8
  /** int8 weights only: the activations of a linear layer quantized per row (see Exec.linear). */
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
function quantPlan(alloc: Alloc, c: ViTShape, BT: number): Quant {
  const Kp = Math.ceil(Math.max(c.hiddenSize, c.intermediateSize) / 4) * 4;
  return { aq: alloc(Math.ceil(BT / 4) * Kp), sa: alloc(BT), za: alloc(BT) };
}

/** Token and patch counts of a shape. */
export function tokens(s: ViTShape): { Np: number; T: number; T8: number } {
  const Np = (s.imageSize[0] / s.patchSize) * (s.imageSize[1] / s.patchSize);
  return { Np, T: Np + 1, T8: Math.ceil((Np + 1) / 8) * 8 };
}

export function vitForward(ex: Exec, c: ViTShape, w: Weights, a: Activations): void {
  ex.quant = a.quant ?? null;
  const { B } = a,
    [Hpx, Wpx] = c.imageSize,
    p = c.patchSize,
    D = c.hiddenSize,
    eps = c.layerNormEps;
  const { Np, T } = tokens(c),
    BT = B * T;
  ex.patchify(a.pixels, a.patches, B, c.numChannels, Hpx, Wpx, p); // image → p×p patches, flattened
  ex.linear(a.patches, w.patch, a.pe, B * Np); // linear patch embedding
  ex.embedTokens(a.pe, w.cls, w.pos, a.tokens, B, T, D); // prepend cls, add position embeddings
  w.layers.forEach((l, i) => {
    const s = a.layers[i];
    ex.layernorm(s.xin, l.ln1, s.h1, BT, D, eps); // pre-norm
    ex.linear(s.h1, l.qkv, s.qkv, BT); // Q, K, V projections
    ex.attention(s.qkv, a.kt, s.att, B, T, D, c.numHeads, s.probs); // softmax(QKᵀ/√dh)·V per head, concatenated
    ex.residual(s.att, l.proj, s.xin, s.xmid, BT, s.proj); // output projection + residual
    ex.layernorm(s.xmid, l.ln2, s.h2, BT, D, eps);
    ex.linearGelu(s.h2, l.fc1, s.act, BT, s.u); // MLP up, exact GELU
    ex.residual(s.act, l.fc2, s.xmid, s.xout, BT, s.mlpOut); // MLP down + residual
  });
  ex.layernorm(stream(a), w.norm, a.cls, B, D, eps, T * D); // final layernorm of the cls tokens
  ex.linear(a.cls, w.head, a.logits, B); // classifier → logits
}

/** The residual stream after the last layer. */
export const stream = (a: Activations) => a.layers[a.layers.length - 1]?.xout ?? a.tokens;

/** Gradients of the parameters, laid out as {@link Weights} (each linear's `w` is the gradient of its (N, K) matrix). */
export type Gradients = Weights;

/** The backward's working buffers, for a batch of B (byte pointers). */
export interface BackwardBuffers {
  labels: number; // (B) i32
  dlogits: number; // (B, L)
  dcls: number; // (B, D)
  dx: number; // (B·T, D) gradient of the residual stream
  dh: number; // (B·T, D)
  datt: number; // (B·T, D)
  dqkv: number; // (B·T, 3D)
  dact: number; // (B·T, M)
  du: number; // (B·T, M)
  dpe: number; // (B·Np, D)
}

/**
 * The backward of {@link vitForward} for a training plan (every layer's activations kept, GELU's
 * input in `u`): softmax cross-entropy, then every op's backward in reverse, accumulating parameter
 * gradients into `g` (which starts at zero). `scale` multiplies dlogits (the batch mean over a step
 * split among workers). Returns the summed loss of the B images.
 */
export function vitBackward(
  ex: Exec,
  c: ViTShape,
  w: Weights,
  g: Gradients,
  a: Activations,
  d: BackwardBuffers,
  scale: number,
): number {
  const { B } = a,
    D = c.hiddenSize,
    eps = c.layerNormEps,
    { Np, T } = tokens(c),
    BT = B * T;
  const loss = ex.softmaxXent(a.logits, d.labels, d.dlogits, B, c.numLabels, scale);
  ex.linearBackward(a.cls, w.head, g.head, d.dlogits, d.dcls, B);
  ex.zero(d.dx, BT * D);
  ex.layernormBackward(stream(a), w.norm, g.norm, d.dcls, d.dx, B, D, eps, T * D); // only the cls rows (row stride T·D)
  for (let i = w.layers.length - 1; i >= 0; i--) {
    const l = w.layers[i],
      gl = g.layers[i],
      s = a.layers[i];
    // xout = xmid + fc2(GELU(fc1(ln2(xmid)))): dx flows on, and through the MLP into dx
    ex.linearBackward(s.act, l.fc2, gl.fc2, d.dx, d.dact, BT);
    ex.geluBackward(s.u, d.dact, d.du, BT * c.intermediateSize);
    ex.linearBackward(s.h2, l.fc1, gl.fc1, d.du, d.dh, BT);
    ex.layernormBackward(s.xmid, l.ln2, gl.ln2, d.dh, d.dx, BT, D, eps);
    // xmid = xin + proj(attention(qkv(ln1(xin))))
    ex.linearBackward(s.att, l.proj, gl.proj, d.dx, d.datt, BT);
    ex.attentionBackward(s.qkv, s.probs, d.datt, d.dqkv, B, T, D, c.numHeads);
    ex.linearBackward(s.h1, l.qkv, gl.qkv, d.dqkv, d.dh, BT);
    ex.layernormBackward(s.xin, l.ln1, gl.ln1, d.dh, d.dx, BT, D, eps);
  }
  ex.embedTokensBackward(d.dx, d.dpe, g.cls, g.pos, B, T, D);
  ex.linearBackward(a.patches, w.patch, g.patch, d.dpe, 0, B * Np);
  return loss;
}

/** A bump allocator of f32 slots (byte pointers), e.g. WasmMemory.alloc. */
export type Alloc = (floats: number) => number;

/**
 * Inference: one buffer per role shared by every layer (the residual added in place, GELU fused),
 * so a forward's memory does not grow with depth. `keepAttention` keeps every layer's maps.
 */
export function inferencePlan(
  alloc: Alloc,
  c: ViTShape,
  B: number,
  workers: number,
  keepAttention: boolean,
  int8 = false,
): Activations {
  const { Np, T, T8 } = tokens(c),
    D = c.hiddenSize,
    C = c.numChannels,
    p = c.patchSize,
    BT = B * T;
  const x = alloc(BT * D),
    h = alloc(BT * D),
    qkv = alloc(BT * 3 * D),
    att = alloc(BT * D),
    act = alloc(BT * c.intermediateSize);
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
      probs: keepAttention ? alloc(B * c.numHeads * T * T) : 0,
      att,
      proj: 0,
      xmid: x,
      h2: h,
      u: 0,
      act,
      mlpOut: 0,
      xout: x,
    })),
    cls: alloc(B * D),
    logits: alloc(B * c.numLabels),
    kt: alloc(B * D * T8),
    scratch: Array.from({ length: workers }, () => alloc(4 * T8)),
    quant: int8 ? quantPlan(alloc, c, BT) : undefined,
  };
}

/**
 * Training (`keepParts` false) and inspection (`keepParts` true): every layer its own buffers, each
 * layer's output the next one's input. Inspection also keeps the attention projection and the MLP
 * output apart from the residual sums (the sums are then formed separately: the same bits).
 */
export function keptPlan(
  alloc: Alloc,
  c: ViTShape,
  B: number,
  keepParts: boolean,
  workers = 1,
  int8 = false,
): Activations {
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
  const layers = Array.from({ length: c.numLayers }, (): LayerActivations => {
    const s = {
      xin,
      h1: alloc(BT * D),
      qkv: alloc(BT * 3 * D),
      probs: alloc(B * c.numHeads * T * T),
      att: alloc(BT * D),
      proj: keepParts ? alloc(BT * D) : 0,
      xmid: alloc(BT * D),
      h2: alloc(BT * D),
      u: alloc(BT * M),
      act: alloc(BT * M),
      mlpOut: keepParts ? alloc(BT * D) : 0,
      xout: alloc(BT * D),
    };
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
    cls: alloc(B * D),
    logits: alloc(B * c.numLabels),
    kt: alloc(B * D * T8),
    scratch: Array.from({ length: workers }, () => alloc(4 * T8)),
    quant: int8 ? quantPlan(alloc, c, BT) : undefined,
  };
}

/** The backward's buffers for a batch of B. */
export function backwardBuffers(alloc: Alloc, c: ViTShape, B: number): BackwardBuffers {
  const { Np, T } = tokens(c),
    D = c.hiddenSize,
    M = c.intermediateSize,
    BT = B * T;
  return {
    labels: alloc(B),
    dlogits: alloc(B * c.numLabels),
    dcls: alloc(B * D),
    dx: alloc(BT * D),
    dh: alloc(BT * D),
    datt: alloc(BT * D),
    dqkv: alloc(BT * 3 * D),
    dact: alloc(BT * M),
    du: alloc(BT * M),
    dpe: alloc(B * Np * D),
  };
}
