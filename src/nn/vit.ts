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
import type { Exec } from './ops.js';
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
  ex.embedTokens(a.pe, prefixRows(c, w), w.pos, a.tokens, B, T, D); // prepend cls (and dist or registers), add position embeddings
  if (arch.embedNorm) ex.layernorm(a.tokens, need(w.embedNorm, 'pre-norm'), a.tokens, BT, D, eps); // CLIP: a layernorm before the blocks, in place
  w.layers.forEach((l, i) => {
    const s = a.layers[i];
    ex.layernorm(s.xin, l.ln1, s.h1, BT, D, eps); // pre-norm
    ex.linear(s.h1, l.qkv, s.qkv, BT, { quant }); // Q, K, V projections
    ex.attention(s.qkv, a.kv, s.att, B, T, D, c.numHeads, s.probs, l.relBias); // softmax(QKᵀ/√dh + bias)·V per head, concatenated
    ex.residual(s.att, l.proj, s.xin, s.xmid, BT, { sep: s.proj, quant }); // output projection + residual
    ex.layernorm(s.xmid, l.ln2, s.h2, BT, D, eps);
    ex.linearAct(s.h2, l.fc1, s.act, BT, arch.activation, { u: s.u, quant, gated: arch.mlp === 'gated' }); // MLP up, its activation (or gate)
    ex.residual(s.act, l.fc2, s.xmid, s.xout, BT, { sep: s.mlpOut, quant }); // MLP down + residual
  });
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

/** Where each prefix token's vector (D) is: the cls token, then a DeiT's distillation token or the registers. */
export function prefixRows(c: ViTShape, w: Weights): number[] {
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

/**
 * a.cls (B, D) from the last layer's tokens, as the arch says: the layernorm of the cls token; or
 * the mean of the patch tokens, normed before (layernorm of every token, then the mean) or after
 * (the mean, then its layernorm: timm's fc_norm); or (clsMean, B, 2D) the normed cls token and
 * the mean of the normed patch tokens side by side; or (map) the attention pool of the normed tokens;
 * or (finalNorm 'none') the mean of the patch tokens without a norm.
 */
function pool(ex: Exec, c: ViTShape, w: Weights, a: Activations): void {
  const arch = c.arch ?? PLAIN_VIT,
    { B } = a,
    D = c.hiddenSize,
    eps = c.layerNormEps,
    { T } = tokens(c),
    P = arch.prefix.length;
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
 * The backward of {@link vitForward} for a training plan (every layer's activations kept, GELU's
 * input in `u`): softmax cross-entropy, then every op's backward in reverse, accumulating parameter
 * gradients into `g` (which starts at zero). `scale` multiplies dlogits (the batch mean over a step
 * split among workers); `smoothing` is PyTorch's label_smoothing. Returns the summed loss of the B images.
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
    BT = B * T;
  const loss = ex.softmaxXent(a.logits, d.labels, d.dlogits, B, c.numLabels, scale, smoothing);
  ex.linearBackward(a.cls, need(w.head, 'classifier'), need(g.head, 'classifier'), d.dlogits, d.dcls, B, d);
  ex.zero(d.dx, BT * D);
  ex.layernormBackward(stream(a), w.norm, g.norm, d.dcls, d.dx, B, D, eps, T * D); // only the cls rows (row stride T·D)
  for (let i = w.layers.length - 1; i >= 0; i--) {
    const l = w.layers[i],
      gl = g.layers[i],
      s = a.layers[i];
    // xout = xmid + fc2(GELU(fc1(ln2(xmid)))): dx flows on, and through the MLP into dx
    ex.linearBackward(s.act, l.fc2, gl.fc2, d.dx, d.dact, BT, d);
    ex.geluBackward(s.u, d.dact, d.du, BT * c.intermediateSize);
    ex.linearBackward(s.h2, l.fc1, gl.fc1, d.du, d.dh, BT, d);
    ex.layernormBackward(s.xmid, l.ln2, gl.ln2, d.dh, d.dx, BT, D, eps);
    // xmid = xin + proj(attention(qkv(ln1(xin))))
    ex.linearBackward(s.att, l.proj, gl.proj, d.dx, d.datt, BT, d);
    ex.attentionBackward(s.qkv, s.probs, d.datt, d.dqkv, B, T, D, c.numHeads);
    ex.linearBackward(s.h1, l.qkv, gl.qkv, d.dqkv, d.dh, BT, d);
    ex.layernormBackward(s.xin, l.ln1, gl.ln1, d.dh, d.dx, BT, D, eps);
  }
  ex.embedTokensBackward(d.dx, d.dpe, need(g.cls, 'class token'), g.pos, B, T, D);
  ex.linearBackward(a.patches, w.patch, g.patch, d.dpe, undefined, B * Np, d); // no dX: pixels need no gradient
  return loss;
}
