/**
 * The ViT, written once: the forward as "A Visual Guide to Vision Transformers" walks through it and
 * HF's ViTForImageClassification computes it, and beside it the backward, op by op in reverse.
 * Three uses run this same code over different activation plans:
 *   inference   one set of buffers shared by every layer; residuals added in place, GELU fused
 *   training    every layer keeps its own buffers (the backward reads them); GELU's input kept
 *   inspection  as training, and the attention and MLP outputs kept apart from the residual sums
 * Shapes: B images, C×H×W pixels, p patch, Np patches, T = P + Np tokens (P prefix tokens: cls, and a
 * DeiT's distillation token or registers), D hidden, H heads,
 * dh = D/H, M MLP size, L labels.
 */
import { PLAIN_VIT } from './arch.js';
import { type Exec, GATES } from './ops.js';
import { type Activations, type BackwardBuffers, type KeptLayerActivations, stream } from './plan.js';
import { tokens, type ViTShape } from './shape.js';
import type { Gradients, TrainableLinear, Weights } from './weights.js';

/** The forward of B images: pixels (B, C, H, W) in plan `a` → logits (B, L) there. */
export function vitForward(ex: Exec, c: ViTShape, w: Weights, a: Activations): void {
  const { B, quant } = a,
    [Hpx, Wpx] = c.imageSize,
    p = c.patchSize,
    D = c.hiddenSize,
    eps = c.layerNormEps;
  const { Np, T } = tokens(c),
    BT = B * T,
    arch = c.arch ?? PLAIN_VIT;
  ex.patchify(a.pixels, a.patches, B, c.numChannels, Hpx, Wpx, p); // image → p×p patches, flattened
  ex.linear(a.patches, w.patch, a.pe, B * Np, { quant }); // linear patch embedding
  const embedded = a.embedded ?? a.tokens; // (training keeps the tokens before CLIP's pre-norm apart)
  ex.embedTokens(a.pe, prefixRows(c, w), w.pos, embedded, B, T, D); // prepend cls (and dist or registers), add position embeddings
  if (arch.embedNorm) ex.layernorm(embedded, need(w.embedNorm, 'pre-norm'), a.tokens, BT, D, eps); // CLIP: a layernorm before the blocks
  const run = { B, T, kv: a.kv, quant };
  w.layers.forEach((l, i) => layerForward(ex, c, l, a.layers[i], run));
  pool(ex, c, w, a); // what the head reads: the final-normed cls token, or the mean of the patch tokens
  if (w.head) ex.linear(a.cls, w.head, a.logits, B, { quant }); // classifier → logits (none: an embedding model)
  if (a.projected !== undefined) ex.linear(a.cls, need(w.projection, 'projection'), a.projected, B, { quant }); // an image tower: its embedding
  if (a.distilled) {
    // DeiT with its teacher's head: the distillation token, normed, through its own head; the two averaged
    const { token, logits } = a.distilled;
    ex.layernorm(stream(a) + D * 4, w.norm, token, B, D, eps, T * D);
    ex.linear(token, need(w.headDist, 'distillation head'), logits, B, { quant });
    ex.average(a.logits, logits, B * c.numLabels);
  }
}

/** What one encoder block reads of the network's shape (a ViT's, or a text tower's: src/nn/text.ts). */
export type BlockShape = Pick<ViTShape, 'hiddenSize' | 'layerNormEps' | 'numHeads' | 'arch'>;

/** What one encoder block reads of its forward: B sequences of T tokens, the attention's K/V panels, int8 room. */
export type BlockRun = Pick<Activations, 'B' | 'kv' | 'quant'> & { T: number };

/**
 * One encoder block: s.xin (B·T, D) → s.xout, its intermediates in s; the attention's bias (each
 * head's (T, T): BEiT's relative position bias, a text tower's causal mask) from the layer.
 */
export function layerForward(
  ex: Exec,
  c: BlockShape,
  l: Weights['layers'][number],
  s: Activations['layers'][number],
  r: BlockRun,
): void {
  const { B, T, quant } = r,
    D = c.hiddenSize,
    eps = c.layerNormEps,
    BT = B * T,
    arch = c.arch ?? PLAIN_VIT;
  ex.layernorm(s.xin, l.ln1, s.h1, BT, D, eps); // pre-norm
  ex.linear(s.h1, l.qkv, s.qkv, BT, { quant }); // Q, K, V projections
  ex.attention(s.qkv, r.kv, s.att, B, T, D, c.numHeads, s.probs, l.relBias); // softmax(QKᵀ/√dh + bias)·V per head, concatenated
  branch(ex, s.att, l.proj, l.ls1, s.xin, s.xmid, BT, D, s.proj, quant); // output projection (× LayerScale γ) + residual
  ex.layernorm(s.xmid, l.ln2, s.h2, BT, D, eps);
  ex.linearAct(s.h2, l.fc1, s.act, BT, arch.activation, { u: s.u, quant, gated: arch.mlp === 'gated' }); // MLP up, its activation (or gate)
  branch(ex, s.act, l.fc2, l.ls2, s.xmid, s.xout, BT, D, s.mlpOut, quant); // MLP down (× γ) + residual
}

/**
 * xout (R, D) = xin + linear(x), or with LayerScale kept apart (training) xin + γ ⊙ linear(x),
 * the linear layer's output kept in `sep` (inference folds γ into the layer: no γ here).
 */
function branch(
  ex: Exec,
  x: number,
  l: Weights['layers'][number]['proj'],
  gamma: number | undefined,
  xin: number,
  xout: number,
  R: number,
  D: number,
  sep: number | undefined,
  quant: Activations['quant'],
): void {
  if (gamma === undefined) {
    ex.residual(x, l, xin, xout, R, { sep, quant });
    return;
  }
  const out = need(sep, 'LayerScale branch buffer');
  ex.linear(x, l, out, R, { quant });
  ex.scaleResidual(out, gamma, xin, xout, R, D);
}

/** Where each prefix token's vector (D) is: the cls token, then a DeiT's distillation token or the registers. */
export function prefixRows<L>(c: ViTShape, w: Weights<L>): number[] {
  const prefix = (c.arch ?? PLAIN_VIT).prefix,
    D = c.hiddenSize;
  return prefix.map((t, i) =>
    t === 'cls'
      ? need(w.cls, 'class token')
      : t === 'dist'
        ? need(w.dist, 'distillation token')
        : need(w.registers, 'register tokens') + (i - prefix.indexOf('reg')) * D * 4,
  );
}

/** A part a family's weights must have, or an internal error: the loader reads it when the arch says so. */
function need<P>(part: P | undefined, what: string): P {
  if (part === undefined) throw new Error(`vit-wasm: internal: a forward without the ${what} its arch needs`);
  return part;
}

/** What pooling and its backward read of the shape: the arch, B images, D, eps, T tokens, P prefix tokens. */
function poolShape(c: ViTShape, a: Activations) {
  const arch = c.arch ?? PLAIN_VIT;
  return { arch, B: a.B, D: c.hiddenSize, eps: c.layerNormEps, T: tokens(c).T, P: arch.prefix.length };
}

/**
 * a.cls (B, D) from the last layer's tokens, as the arch says: the layernorm of the cls token; or
 * the mean of the patch tokens, normed before (layernorm of every token, then the mean) or after
 * (the mean, then its layernorm: timm's fc_norm); or (clsMean, B, 2D) the normed cls token and
 * the mean of the normed patch tokens side by side; or (map) the attention pool of the normed tokens;
 * or (finalNorm 'none') the mean of the patch tokens without a norm.
 */
function pool(ex: Exec, c: ViTShape, w: Weights, a: Activations): void {
  const { arch, B, D, eps, T, P } = poolShape(c, a);
  if (arch.pooling === 'cls') {
    ex.layernorm(stream(a), w.norm, a.cls, B, D, eps, T * D); // only the cls rows (row stride T·D)
    return;
  }
  if (arch.finalNorm === 'none') {
    ex.meanTokens(stream(a), a.cls, B, T, P, D); // CLIPForImageClassification: the tokens as the last block leaves them
    return;
  }
  const { normed, mean, map } = a.pool ?? {};
  if (arch.finalNorm === 'tokens' && normed !== undefined) {
    ex.layernorm(stream(a), w.norm, normed, B * T, D, eps);
    if (arch.pooling === 'map' && map) {
      // the attention pool: the probe's query over the tokens, projected, then + MLP(layernorm(·))
      const m = need(w.mapHead, 'attention-pool head');
      ex.linear(normed, m.kv, map.kv, B * T, { quant: a.quant });
      ex.poolAttention(m.q, map.kv, map.att, B, T, D, c.numHeads);
      ex.linear(map.att, m.proj, map.o, B, { quant: a.quant });
      ex.layernorm(map.o, m.norm, map.h, B, D, eps);
      ex.linearAct(map.h, m.fc1, map.u, B, arch.activation, { quant: a.quant });
      ex.residual(map.u, m.fc2, map.o, a.cls, B, { quant: a.quant });
    } else if (arch.pooling === 'clsMean') ex.clsMeanTokens(normed, a.cls, B, T, P, D);
    else ex.meanTokens(normed, a.cls, B, T, P, D);
  } else if (arch.finalNorm === 'pooled' && mean !== undefined) {
    ex.meanTokens(stream(a), mean, B, T, P, D);
    ex.layernorm(mean, w.norm, a.cls, B, D, eps);
  } else throw new Error('vit-wasm: internal: a mean-pooling forward over a plan without room to pool');
}

/**
 * The backward of {@link vitForward} for a training plan (every layer's activations kept, the
 * activation's input in `u`, LayerScale branches in proj and mlpOut): softmax cross-entropy, then
 * every op's backward in reverse, accumulating parameter gradients into `g` (which starts at zero).
 * `scale` multiplies dlogits (the batch mean over a step split among workers); `smoothing` is
 * PyTorch's label_smoothing. Returns the summed loss of the B images.
 */
export function vitBackward(
  ex: Exec,
  c: ViTShape,
  w: Weights<TrainableLinear>,
  g: Gradients,
  a: Activations<KeptLayerActivations>,
  d: BackwardBuffers,
  scale: number,
  smoothing = 0,
): number {
  const { B } = a,
    D = c.hiddenSize,
    eps = c.layerNormEps,
    { Np, T } = tokens(c),
    BT = B * T,
    arch = c.arch ?? PLAIN_VIT,
    gate = arch.activation === 'gelu' || arch.activation === 'relu' ? null : GATES[arch.activation];
  const loss = ex.softmaxXent(a.logits, d.labels, d.dlogits, B, c.numLabels, scale, smoothing);
  ex.linearBackward(a.cls, need(w.head, 'classifier'), need(g.head, 'classifier'), d.dlogits, d.dcls, B, d);
  ex.zero(d.dx, BT * D);
  poolBackward(ex, c, w, g, a, d); // dcls → dx
  // a plan whose layers share their intermediates (activation recomputation) keeps the last layer's only
  const recompute = a.layers.length > 1 && a.layers[0].h1 === a.layers[1].h1;
  for (let i = w.layers.length - 1; i >= 0; i--) {
    const l = w.layers[i],
      gl = g.layers[i],
      s = a.layers[i];
    if (recompute && i < w.layers.length - 1) layerForward(ex, c, l, s, { ...a, T }); // its intermediates again, the same bits
    // xout = xmid + [γ2 ⊙] fc2(act(fc1(ln2(xmid)))): dx flows on, and through the MLP into dx
    const dMlp = scaledBranchBackward(ex, d, l.ls2, gl.ls2, s.mlpOut, BT, D);
    ex.linearBackward(s.act, l.fc2, gl.fc2, dMlp, d.dact, BT, d);
    ex.activationBackward(arch.activation, gate, s.u, d.dact, d.du, BT * c.intermediateSize);
    ex.linearBackward(s.h2, l.fc1, gl.fc1, d.du, d.dh, BT, d);
    ex.layernormBackward(s.xmid, l.ln2, gl.ln2, d.dh, d.dx, BT, D, eps);
    // xmid = xin + [γ1 ⊙] proj(attention(qkv(ln1(xin))))
    const dProj = scaledBranchBackward(ex, d, l.ls1, gl.ls1, s.proj, BT, D);
    ex.linearBackward(s.att, l.proj, gl.proj, dProj, d.datt, BT, d);
    ex.attentionBackward(s.qkv, s.probs, d.datt, d.dqkv, B, T, D, c.numHeads, gl.relBias); // (BEiT: the bias's gradient too)
    ex.linearBackward(s.h1, l.qkv, gl.qkv, d.dqkv, d.dh, BT, d);
    ex.layernormBackward(s.xin, l.ln1, gl.ln1, d.dh, d.dx, BT, D, eps);
  }
  let dTokens = d.dx;
  if (arch.embedNorm) {
    // CLIP's pre-norm: from the normed tokens' gradient to the embedded tokens'
    ex.zero(d.dh, BT * D);
    ex.layernormBackward(
      need(a.embedded, 'tokens before the pre-norm'),
      need(w.embedNorm, 'pre-norm'),
      need(g.embedNorm, 'pre-norm'),
      d.dx,
      d.dh,
      BT,
      D,
      eps,
    );
    dTokens = d.dh;
  }
  if (arch.prefix.length === 1) ex.embedTokensBackward(dTokens, d.dpe, need(g.cls, 'class token'), g.pos, B, T, D);
  else ex.prefixTokensBackward(dTokens, d.dpe, prefixRows(c, g), g.pos, B, T, D);
  ex.linearBackward(a.patches, w.patch, g.patch, d.dpe, undefined, B * Np, d); // no dX: pixels need no gradient
  return loss;
}

/**
 * A residual branch's gradient: dx itself, or through LayerScale γ ⊙ dx (into dh), dγ += Σ dx ⊙
 * the branch's output.
 */
function scaledBranchBackward(
  ex: Exec,
  d: BackwardBuffers,
  gamma: number | undefined,
  dGamma: number | undefined,
  out: number | undefined,
  R: number,
  D: number,
): number {
  if (gamma === undefined) return d.dx;
  ex.scaleResidualBackward(
    d.dx,
    need(out, 'LayerScale branch'),
    gamma,
    need(dGamma, 'LayerScale gradient'),
    d.dh,
    R,
    D,
  );
  return d.dh;
}

/**
 * Backward of {@link pool}: dcls (B, headInput) into dx (B·T, D), the last layer's output: through
 * the final layernorm of the cls rows; or of every token after the mean (or cls ⊕ mean) of the
 * normed tokens; or straight from the mean (finalNorm 'none').
 */
function poolBackward(
  ex: Exec,
  c: ViTShape,
  w: Weights<TrainableLinear>,
  g: Gradients,
  a: Activations,
  d: BackwardBuffers,
): void {
  const { arch, B, D, eps, T, P } = poolShape(c, a);
  if (arch.pooling === 'cls') {
    ex.layernormBackward(stream(a), w.norm, g.norm, d.dcls, d.dx, B, D, eps, T * D); // only the cls rows (row stride T·D)
    return;
  }
  if (arch.pooling !== 'mean' && arch.pooling !== 'clsMean')
    throw new Error(`vit-wasm: internal: a backward of ${arch.pooling} pooling`);
  if (arch.finalNorm === 'none') {
    ex.meanTokensBackward(d.dcls, d.dx, B, T, P, D, false);
    return;
  }
  if (arch.finalNorm === 'pooled') {
    // the mean, then its norm (timm's fc_norm, BEiT's pooler): through the norm into the mean's gradient (dh's first rows), then to the patch rows
    const mean = a.pool?.mean;
    if (mean === undefined || arch.pooling !== 'mean')
      throw new Error('vit-wasm: internal: a pooled norm without its mean');
    ex.zero(d.dh, B * D);
    ex.layernormBackward(mean, w.norm, g.norm, d.dcls, d.dh, B, D, eps);
    ex.meanTokensBackward(d.dh, d.dx, B, T, P, D, false);
    return;
  }
  ex.meanTokensBackward(d.dcls, d.dh, B, T, P, D, arch.pooling === 'clsMean'); // the normed tokens' gradient
  ex.layernormBackward(stream(a), w.norm, g.norm, d.dh, d.dx, B * T, D, eps);
}
