/**
 * Step 13 for a model with a text tower (a CLIPModel or SiglipModel): no classifier, but labels
 * typed as words. Each picture's image embedding is compared with the embedding of "a photo of
 * {label}." for every label, and the softmax over their scaled cosine similarities (SigLIP: each
 * label's own sigmoid, with its bias) is drawn where a classifier's probabilities would be
 * (ViTModel.zeroShot; the labels' text embeddings are cached by the model).
 */
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
    // for tests: what was ranked, and the pixels it was ranked for (their bits)
    (window as unknown as { __zeroShot: unknown }).__zeroShot = {
      labels,
      ranked,
      pixels: Array.from(new Uint32Array(pixels.buffer.slice(0))),
    };
  } catch (e) {
    status.textContent = (e as Error).message;
  }
}
