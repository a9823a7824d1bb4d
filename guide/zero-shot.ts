/**
 * Step 13 for a model with a text tower (a CLIPModel or SiglipModel): no classifier, but labels
 * typed as words. Each picture's image embedding is compared with the embedding of "a photo of
 * {label}." for every label, and the softmax over their scaled cosine similarities (SigLIP: each
 * label's own sigmoid, with its bias) is drawn where a classifier's probabilities would be
 * (ViTModel.zeroShot; the labels' text embeddings are cached by the model).
 */
import type { TextTrace } from '../src/index.js';
import { bars } from './draw.js';
import { $, canvas, type State } from './state.js';

const TEMPLATE = 'a photo of {}.';

/** Shows the labels box when the model has a text tower; redraws when the labels change. */
export function setUpZeroShot(s: State): void {
  const box = $('#zs');
  box.hidden = !s.model.hasText;
  if (!s.model.hasText) return;
  const kind = s.model.family === 'siglip' ? 'each label’s own sigmoid' : 'a softmax over the labels';
  $('#probabilities-caption').textContent =
    `zero-shot probabilities (${kind}): “${TEMPLATE.replace('{}', '…')}” for each label`;
  let timer = 0;
  $<HTMLInputElement>('#zs-labels').addEventListener('input', () => {
    clearTimeout(timer);
    timer = window.setTimeout(() => void drawZeroShot(s), 150);
  });
}

/** The labels typed, ranked for the current picture, drawn as bars; the line above the pad says the best. */
export async function drawZeroShot(s: State): Promise<void> {
  if (!s.model.hasText || !s.trace) return;
  const labels = $<HTMLInputElement>('#zs-labels')
    .value.split(',')
    .map((l) => l.trim())
    .filter(Boolean);
  const status = $('#zs-status');
  if (labels.length === 0) {
    status.textContent = 'Type a few labels, separated by commas.';
    return;
  }
  const pixels = s.trace.pixels.data;
  try {
    const ranked = await s.model.zeroShot(pixels, labels, { template: TEMPLATE });
    bars(
      canvas('probabilities'),
      ranked.map((r) => r.label),
      Float32Array.from(ranked, (r) => r.score),
    );
    status.textContent = '';
    $('#prediction').textContent =
      `By words, the closest label is “${ranked[0].label}” (${(100 * ranked[0].score).toFixed(1)}%).`;
    const prompt = TEMPLATE.replace('{}', ranked[0].label),
      read = promptAttention(await s.model.traceText(prompt));
    bars(canvas('zs-attention'), read.tokens, read.values);
    $('#zs-attention-caption').textContent =
      `“${prompt}”: what its ${s.model.family === 'siglip' ? 'last' : 'end-of-text'} row draws from, last layer, mean of the heads`;
    // for tests: what was ranked, and the pixels it was ranked for (their bits); the prompt's attention
    (window as unknown as { __zeroShot: unknown }).__zeroShot = {
      labels,
      ranked,
      pixels: Array.from(new Uint32Array(pixels.buffer.slice(0))),
      attention: { prompt, ...read },
    };
  } catch (e) {
    status.textContent = (e as Error).message;
  }
}

/**
 * The read row's attention in the last layer, averaged over the heads, per token; SigLIP's padding
 * (the end token repeated to the model's length, every copy attended to) summed into one bar.
 */
export function promptAttention(t: TextTrace): { tokens: string[]; values: number[] } {
  const a = t.attention[t.attention.length - 1],
    T = t.ids.length,
    H = a.length / (T * T);
  const mean = (j: number) => {
    let s = 0;
    for (let h = 0; h < H; h++) s += a[(h * T + t.row) * T + j];
    return s / H;
  };
  // the padding: the run of end tokens after the first, when the text is read at its last row
  let end = T;
  if (t.row === T - 1) while (end > 1 && t.ids[end - 1] === t.ids[T - 1] && t.ids[end - 2] === t.ids[T - 1]) end--;
  const tokens = t.tokens.slice(0, end),
    values = tokens.map((_, j) => mean(j));
  if (end < T) {
    let pad = 0;
    for (let j = end; j < T; j++) pad += mean(j);
    tokens.push(`${t.tokens[T - 1]} ×${T - end} (padding)`);
    values.push(pad);
  }
  return { tokens, values };
}
