/** Every step's picture, drawn from the current trace. */
import { attentionRollout, positionSimilarity, type Trace } from '../src/index.js';
import { bars, colour, heatmap, legend, overlay, patchGrid, prepare } from './draw.js';
import { $, canvas, type State } from './state.js';

/** Every step's picture, from the current trace. */
export function render(s: State): void {
  const t = s.trace;
  if (!t) return;
  const c = s.model.config,
    [H, W] = c.imageSize,
    p = c.patchSize,
    C = c.numChannels,
    D = c.hiddenSize,
    T = t.input.dims[0];
  const dh = D / c.numHeads,
    L = t.layers[s.layer],
    h = s.head,
    i = s.token;
  const scale = Math.max(1, Math.floor(224 / Math.max(H, W)));
  const head = (x: Float32Array, cols: number, rows = T) => x.subarray(h * rows * cols, (h + 1) * rows * cols);
  patchGrid(canvas('patches'), t.pixels.data, C, H, W, p, scale);
  heatmap(canvas('flattened'), t.flattened.data, t.flattened.dims[0], t.flattened.dims[1]);
  // the prefix tokens (cls, and DeiT's distillation token or the registers) come before the patches
  const Np = t.patchEmbeddings.dims[0],
    prefix = T - Np;
  heatmap(canvas('embeddings'), t.patchEmbeddings.data, Np, D);
  const withPrefix = new Float32Array(T * D);
  if (t.clsToken) withPrefix.set(t.clsToken.data);
  if (t.distillationToken) withPrefix.set(t.distillationToken.data, D);
  if (t.registerTokens) withPrefix.set(t.registerTokens.data, D);
  withPrefix.set(t.patchEmbeddings.data, prefix * D);
  heatmap(canvas('cls'), withPrefix, T, D, { highlightRow: 0 });
  heatmap(canvas('positions'), t.positionEmbeddings.data, T, D);
  similarityGrid(canvas('similarity'), positionSimilarity(t.positionEmbeddings, prefix).data, H / p, W / p);
  heatmap(canvas('input'), t.input.data, T, D, { highlightRow: 0 });
  heatmap(canvas('layernorm1'), L.layernorm1.data, T, D);
  heatmap(canvas('q'), head(L.q.data, dh), T, dh, { width: 160 });
  heatmap(canvas('k'), head(L.k.data, dh), T, dh, { width: 160 });
  heatmap(canvas('v'), head(L.v.data, dh), T, dh, { width: 160 });
  heatmap(canvas('scores'), head(L.scores.data, T), T, T, { highlightRow: i });
  heatmap(canvas('attention'), head(L.attention.data, T), T, T, { signed: false, max: 1, highlightRow: i });
  heatmap(canvas('weighted'), head(L.heads.data, dh), T, dh, { width: 160, highlightRow: i });
  heatmap(canvas('concat'), L.concat.data, T, D);
  heatmap(canvas('projection'), L.projection.data, T, D);
  heatmap(canvas('residual'), L.residual.data, T, D);
  heatmap(canvas('mlp-hidden'), L.mlpHidden.data, T, c.intermediateSize);
  heatmap(canvas('mlp-output'), L.mlpOutput.data, T, D);
  heatmap(canvas('output'), L.output.data, T, D);
  heatmap(canvas('cls-output'), t.clsOutput.data, 1, D, { cell: Math.max(2, Math.floor(320 / D)) });
  // many classes (ImageNet's 1000): the ten most probable, in order
  const order = Array.from(t.probabilities.data.keys());
  if (c.numLabels > 12) order.sort((a, b) => t.probabilities.data[b] - t.probabilities.data[a]).splice(10);
  bars(
    canvas('probabilities'),
    order.map((k) => c.labels[k]),
    Float32Array.from(order, (k) => t.probabilities.data[k]),
  );
  drawAttention(s, t, prefix);
  document.body.classList.remove('loading');
  $('#prediction').textContent = prediction(s, t);
}

/** The line above the pad: the most probable class, or what a model without a classifier gives. */
function prediction(s: State, t: Trace): string {
  const labels = s.model.config.labels,
    p = t.probabilities.data;
  if (labels.length === 0) return 'This model has no classifier: what it gives is the cls output, an embedding.';
  let best = 0;
  p.forEach((v, k) => {
    if (v > p[best]) best = k;
  });
  return (
    `The model reads a ${labels[best]} (${(100 * p[best]).toFixed(1)}%)` +
    (s.truth !== null ? `; this held-out digit is a ${s.truth}.` : '.')
  );
}

/**
 * Attention on the image: this head's attention from the chosen token to every patch (the prefix
 * tokens left out), rollout through every layer, and every head of this layer small.
 */
function drawAttention(s: State, t: Trace, prefix: number): void {
  const c = s.model.config,
    [H, W] = c.imageSize,
    p = c.patchSize,
    C = c.numChannels,
    T = t.input.dims[0],
    L = t.layers[s.layer],
    i = s.token,
    scale = Math.max(1, Math.floor(224 / Math.max(H, W)));
  const patches = (map: Float32Array, at: number) => map.subarray(at + i * T + prefix, at + (i + 1) * T);
  overlay(canvas('overlay'), t.pixels.data, C, H, W, p, patches(L.attention.data, s.head * T * T), scale);
  const rollout = attentionRollout(t.layers.map((l) => l.attention));
  overlay(canvas('rollout'), t.pixels.data, C, H, W, p, patches(rollout.data, 0), scale);
  const box = $('#all-heads');
  while (box.children.length < c.numHeads)
    box.append(Object.assign(document.createElement('canvas'), { title: `head ${box.children.length + 1}` }));
  while (box.children.length > c.numHeads) box.lastChild!.remove();
  [...box.children].forEach((cv, k) =>
    overlay(
      cv as HTMLCanvasElement,
      t.pixels.data,
      C,
      H,
      W,
      p,
      patches(L.attention.data, k * T * T),
      Math.max(1, Math.floor(76 / W)),
    ),
  );
}

/** The ViT paper's position-embedding figure: for each patch, its similarity to every patch, on the grid. */
function similarityGrid(cv: HTMLCanvasElement, sim: Float32Array, gh: number, gw: number): void {
  const n = gh * gw,
    cell = Math.max(1, Math.floor(240 / (gw * gw + gw))),
    tile = gw * cell + cell;
  const ctx = prepare(cv, Math.max(gw * tile, 160), gh * tile + 22);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++) {
      ctx.fillStyle = colour(sim[a * n + b], 1, true);
      ctx.fillRect(
        (a % gw) * tile + (b % gw) * cell,
        Math.floor(a / gw) * tile + Math.floor(b / gw) * cell,
        cell,
        cell,
      );
    }
  legend(ctx, 0, gh * tile + 6, 160, 1, true);
}
