/**
 * Inspection, the third use of src/nn/vit.ts's forward: every tensor the walk through a ViT names, for
 * one image, read out of an inspection plan (every layer kept, attention and MLP outputs apart
 * from the residual sums) after the forward has run. Also pooling for embeddings.
 */
import type { WasmMemory } from '../runtime/memory.js';
import { PLAIN_VIT, registerCount } from './arch.js';
import type { Activations, InspectedLayerActivations } from './plan.js';
import { fc1Width, tokens, type ViTShape } from './shape.js';
import type { Weights } from './weights.js';

/** A tensor of a trace: its values (row-major, a copy) and its dims. */
export interface Tensor {
  data: Float32Array;
  dims: number[];
}

/** One encoder layer's intermediates. T tokens (token 0 is cls), D hidden, H heads of dh, M MLP size. */
export interface LayerTrace {
  /** (T, D) layernorm before attention. */
  layernorm1: Tensor;
  /** (H, T, dh) queries, keys and values, per head. */
  q: Tensor;
  k: Tensor;
  v: Tensor;
  /** (H, T, T) attention scores QKᵀ/√dh before softmax (formed in float64 from q and k, then rounded). */
  scores: Tensor;
  /** (H, T, T) attention weights: each row a softmax of the scores. */
  attention: Tensor;
  /** (H, T, dh) each head's weighted sum of its values. */
  heads: Tensor;
  /** (T, D) the heads concatenated. */
  concat: Tensor;
  /** (T, D) the output projection of the concatenation. */
  projection: Tensor;
  /** (T, D) the layer's input plus the projection: the first residual sum. */
  residual: Tensor;
  /** (T, D) layernorm before the MLP. */
  layernorm2: Tensor;
  /** (T, M) the MLP's first linear layer, before its activation ((T, 2M) for a gated MLP: gate, then the half it multiplies). */
  mlpPreActivation: Tensor;
  /** (T, M) the activation of it (GELU for the plain ViT): the MLP's hidden activation. */
  mlpHidden: Tensor;
  /** (T, D) the MLP's output. */
  mlpOutput: Tensor;
  /** (T, D) residual plus MLP output: the layer's output, the next layer's input. */
  output: Tensor;
}

/** Everything one image goes through, in the order of the walk-through. Np patches of C·p·p values. */
export interface Trace {
  /** (C, H, W) the preprocessed pixels. */
  pixels: Tensor;
  /** (Np, C, p, p) the image cut into p×p patches, row by row. */
  patches: Tensor;
  /** (Np, C·p·p) each patch flattened. */
  flattened: Tensor;
  /** (Np, D) the linear patch embeddings. */
  patchEmbeddings: Tensor;
  /** (D) the learned cls token, prepended as token 0 (absent without one: SigLIP). */
  clsToken?: Tensor;
  /** (D) DeiT's learned distillation token, token 1 (absent for other families). */
  distillationToken?: Tensor;
  /** (n, D) the learned register tokens after the cls token (DINOv2 with registers, timm's reg_tokens; absent for others). */
  registerTokens?: Tensor;
  /** (T, D) the learned position embeddings, added to every token; zero rows for tokens without one (registers). */
  positionEmbeddings: Tensor;
  /** (T, D) the transformer's input: [cls; patch embeddings] + position embeddings. */
  input: Tensor;
  layers: LayerTrace[];
  /** (D) what the classifier reads: the final-normed cls token, or for a mean-pooling model (timm global_pool="avg") the normed mean of its patch tokens. */
  clsOutput: Tensor;
  /** (L) the classifier's output. */
  logits: Tensor;
  /** (L) softmax of the logits. */
  probabilities: Tensor;
}

const tensor = (data: Float32Array, dims: number[]): Tensor => ({ data, dims });

/** (T, 3D) rows of [q | k | v] → the part `which` (0 q, 1 k, 2 v) as (H, T, dh). */
function headsOf(qkv: Float32Array, which: number, T: number, D: number, H: number): Float32Array {
  const dh = D / H,
    out = new Float32Array(H * T * dh);
  for (let h = 0; h < H; h++)
    for (let t = 0; t < T; t++) {
      out.set(qkv.subarray(t * 3 * D + which * D + h * dh, t * 3 * D + which * D + (h + 1) * dh), (h * T + t) * dh);
    }
  return out;
}

/** (T, D) with heads side by side → (H, T, dh). */
function splitHeads(x: Float32Array, T: number, D: number, H: number): Float32Array {
  const dh = D / H,
    out = new Float32Array(T * D);
  for (let h = 0; h < H; h++)
    for (let t = 0; t < T; t++) out.set(x.subarray(t * D + h * dh, t * D + (h + 1) * dh), (h * T + t) * dh);
  return out;
}

/** Probabilities from logits (in float64, then rounded). */
export function softmax(logits: ArrayLike<number>): Float32Array {
  let m = -Infinity;
  for (let i = 0; i < logits.length; i++) m = Math.max(m, logits[i]);
  let s = 0;
  const e = Array.from(logits, (x) => {
    const v = Math.exp(x - m);
    s += v;
    return v;
  });
  return Float32Array.from(e, (v) => v / s);
}

/** Reads the trace of image 0 out of an inspection plan (src/nn/plan.ts, inspectionPlan) after its forward. */
export function readTrace(mem: WasmMemory, c: ViTShape, w: Weights, a: Activations<InspectedLayerActivations>): Trace {
  const { Np, T } = tokens(c),
    D = c.hiddenSize,
    H = c.numHeads,
    M = c.intermediateSize,
    dh = D / H;
  const p = c.patchSize,
    C = c.numChannels,
    K = C * p * p;
  const read = (ptr: number, n: number) => mem.f32(ptr, n).slice();
  const flat = read(a.patches, Np * K);
  return {
    pixels: tensor(read(a.pixels, C * c.imageSize[0] * c.imageSize[1]), [C, c.imageSize[0], c.imageSize[1]]),
    patches: tensor(flat.slice(), [Np, C, p, p]),
    flattened: tensor(flat, [Np, K]),
    patchEmbeddings: tensor(read(a.pe, Np * D), [Np, D]),
    ...(w.cls === undefined ? {} : { clsToken: tensor(read(w.cls, D), [D]) }),
    ...(w.dist === undefined ? {} : { distillationToken: tensor(read(w.dist, D), [D]) }),
    ...(w.registers === undefined
      ? {}
      : {
          registerTokens: tensor(read(w.registers, registerCount(c.arch ?? PLAIN_VIT) * D), [
            registerCount(c.arch ?? PLAIN_VIT),
            D,
          ]),
        }),
    positionEmbeddings: tensor(read(w.pos, T * D), [T, D]),
    input: tensor(read(a.tokens, T * D), [T, D]),
    layers: a.layers.map((s, li): LayerTrace => {
      const qkv = read(s.qkv, T * 3 * D),
        q = headsOf(qkv, 0, T, D, H),
        k = headsOf(qkv, 1, T, D, H);
      const scores = new Float32Array(H * T * T),
        scale = 1 / Math.sqrt(dh),
        relBias = w.layers[li].relBias, // BEiT's: the scores softmax sees include it
        bias = relBias === undefined ? undefined : mem.f32(relBias, H * T * T);
      for (let h = 0; h < H; h++)
        for (let i = 0; i < T; i++)
          for (let j = 0; j < T; j++) {
            let dot = 0;
            for (let d = 0; d < dh; d++) dot += q[(h * T + i) * dh + d] * k[(h * T + j) * dh + d];
            scores[(h * T + i) * T + j] = dot * scale + (bias ? bias[(h * T + i) * T + j] : 0);
          }
      const att = read(s.att, T * D);
      return {
        layernorm1: tensor(read(s.h1, T * D), [T, D]),
        q: tensor(q, [H, T, dh]),
        k: tensor(k, [H, T, dh]),
        v: tensor(headsOf(qkv, 2, T, D, H), [H, T, dh]),
        scores: tensor(scores, [H, T, T]),
        attention: tensor(read(s.probs, H * T * T), [H, T, T]),
        heads: tensor(splitHeads(att, T, D, H), [H, T, dh]),
        concat: tensor(att, [T, D]),
        projection: tensor(read(s.proj, T * D), [T, D]),
        residual: tensor(read(s.xmid, T * D), [T, D]),
        layernorm2: tensor(read(s.h2, T * D), [T, D]),
        mlpPreActivation: tensor(read(s.u, T * fc1Width(c)), [T, fc1Width(c)]),
        mlpHidden: tensor(read(s.act, T * M), [T, M]),
        mlpOutput: tensor(read(s.mlpOut, T * D), [T, D]),
        output: tensor(read(s.xout, T * D), [T, D]),
      };
    }),
    clsOutput: tensor(read(a.cls, D), [D]),
    logits: tensor(read(a.logits, c.numLabels), [c.numLabels]),
    probabilities: tensor(softmax(mem.f32(a.logits, c.numLabels)), [c.numLabels]),
  };
}

/**
 * out (B, D) = the mean of tokens prefix … T−1 of each image of x (B·T, D), summed in float64 in
 * token order (so every worker count gives the same bits). Returns `out`.
 */
export function meanOfTokens(
  x: Float32Array,
  out: Float32Array,
  B: number,
  T: number,
  prefix: number,
  D: number,
): Float32Array {
  const acc = new Float64Array(D);
  for (let b = 0; b < B; b++) {
    acc.fill(0);
    for (let t = prefix; t < T; t++) for (let d = 0; d < D; d++) acc[d] += x[(b * T + t) * D + d];
    for (let d = 0; d < D; d++) out[b * D + d] = acc[d] / (T - prefix);
  }
  return out;
}

/** Options for {@link attentionRollout}. */
export interface RolloutOptions {
  /** How a layer's heads are fused into one map: their mean (default), max or min. */
  headFusion?: 'mean' | 'max' | 'min';
  /** Drop this fraction of the smallest fused weights of each layer (not the cls column) before the identity is added. Default 0. */
  discardRatio?: number;
}

/**
 * Attention rollout (Abnar & Zuidema 2020): how much each token draws on every input token through
 * all the layers. Per layer the heads are fused, A' = ½A + ½I with rows renormalised, and the
 * layers multiplied from the first up: R = A'_L ⋯ A'_1. Row 0 of R is the cls token's relevance of
 * each patch (columns 1… in the patch grid's row order). Computed in float64.
 * @param attention per layer the (H, T, T) attention weights, e.g. trace.layers.map((l) => l.attention)
 * @returns (T, T)
 */
export function attentionRollout(attention: Tensor[], opts: RolloutOptions = {}): Tensor {
  if (attention.length === 0) throw new Error('vit-wasm: attentionRollout: no layers');
  const [H, T, T2] = attention[0].dims;
  if (attention[0].dims.length !== 3 || T !== T2)
    throw new Error(`vit-wasm: attentionRollout: expected (H, T, T) maps, got (${attention[0].dims})`);
  const fusion = opts.headFusion ?? 'mean',
    discard = opts.discardRatio ?? 0;
  if (!['mean', 'max', 'min'].includes(fusion))
    throw new Error(`vit-wasm: attentionRollout: headFusion must be mean, max or min, got ${JSON.stringify(fusion)}`);
  if (!(discard >= 0 && discard < 1))
    throw new Error(`vit-wasm: attentionRollout: discardRatio must be in [0, 1), got ${discard}`);
  let R = new Float64Array(T * T);
  for (let i = 0; i < T; i++) R[i * T + i] = 1;
  for (const [layer, m] of attention.entries()) {
    if (m.dims.join() !== [H, T, T].join())
      throw new Error(`vit-wasm: attentionRollout: layer ${layer} has dims (${m.dims}), expected (${H}, ${T}, ${T})`);
    const A = new Float64Array(T * T);
    for (let k = 0; k < T * T; k++) {
      let v = fusion === 'mean' ? 0 : m.data[k];
      for (let h = 0; h < H; h++) {
        const x = m.data[h * T * T + k];
        v = fusion === 'mean' ? v + x / H : fusion === 'max' ? Math.max(v, x) : Math.min(v, x);
      }
      A[k] = v;
    }
    if (discard > 0) {
      // zero the smallest weights, never a token's attention to cls (column 0)
      const order = Array.from({ length: T * T }, (_, k) => k)
        .filter((k) => k % T !== 0)
        .sort((a, b) => A[a] - A[b]);
      for (const k of order.slice(0, Math.floor(order.length * discard))) A[k] = 0;
    }
    for (let i = 0; i < T; i++) {
      let sum = 0;
      for (let j = 0; j < T; j++) sum += A[i * T + j] = 0.5 * A[i * T + j] + (i === j ? 0.5 : 0);
      for (let j = 0; j < T; j++) A[i * T + j] /= sum;
    }
    const next = new Float64Array(T * T);
    for (let i = 0; i < T; i++)
      for (let k = 0; k < T; k++) {
        const a = A[i * T + k];
        if (a !== 0) for (let j = 0; j < T; j++) next[i * T + j] += a * R[k * T + j];
      }
    R = next;
  }
  return tensor(Float32Array.from(R), [T, T]);
}

/**
 * Cosine similarity between the position embeddings of every pair of patches (the `prefix` tokens'
 * positions left out: 1 for the cls token, 2 for DeiT's cls and distillation tokens): the picture in the ViT paper where each patch's row of similarities, laid out on the
 * patch grid, peaks at its own place and its row and column.
 * @param positionEmbeddings (T, D), e.g. trace.positionEmbeddings
 * @returns (Np, Np), Np = T − 1
 */
export function positionSimilarity(positionEmbeddings: Tensor, prefix = 1): Tensor {
  const [T, D] = positionEmbeddings.dims,
    p = positionEmbeddings.data,
    Np = T - prefix;
  if (positionEmbeddings.dims.length !== 2 || Np < 1 || !Number.isInteger(prefix) || prefix < 0)
    throw new Error(
      `vit-wasm: positionSimilarity: expected (T, D) embeddings and the prefix tokens before the patches, got (${positionEmbeddings.dims}) and ${prefix}`,
    );
  const row = (i: number) => (i + prefix) * D;
  const norm = new Float64Array(Np);
  for (let i = 0; i < Np; i++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += p[row(i) + d] ** 2;
    norm[i] = Math.sqrt(s) || 1;
  }
  const out = new Float32Array(Np * Np);
  for (let i = 0; i < Np; i++)
    for (let j = 0; j < Np; j++) {
      let s = 0;
      for (let d = 0; d < D; d++) s += p[row(i) + d] * p[row(j) + d];
      out[i * Np + j] = s / (norm[i] * norm[j]);
    }
  return tensor(out, [Np, Np]);
}
