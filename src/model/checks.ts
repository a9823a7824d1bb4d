/**
 * What ViTModel refuses, by name: a call that needs a classifier or a text tower on a model without
 * one, a preprocessing that overflows f32, and a forward that did (with the likely cause).
 */
import type { PreprocessConfig, ViTConfig } from '../io/config.js';
import type { RawImage } from '../io/image/decode.js';
import { preprocess } from '../io/image/preprocess.js';
import type { Arch } from '../nn/arch.js';

/** Refuses, naming `what`, a call that needs logits on a model whose head is `head` and gives none. */
export function needClassifier(head: Arch['head'], what: string): void {
  if (head === 'none')
    throw new Error(
      `vit-wasm: ${what}: this model has no classifier (a ViTModel, or timm's num_classes=0: weights for embeddings): use model.embed(images)`,
    );
  if (head === 'projection')
    throw new Error(
      `vit-wasm: ${what}: this model is an image tower (CLIP's vision side): it has no classifier; model.embed(images) gives its image embeddings`,
    );
}

/**
 * `out` when all finite; otherwise an Error naming the likely cause. The inputs (`pixels`) were
 * checked finite, so f32 overflowed somewhere inside the network.
 */
export function checkFinite(out: Float32Array, pixels: Float32Array, p: PreprocessConfig, what: string): Float32Array {
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad < 0) return out;
  let big = 0;
  for (let i = 0; i < pixels.length; i++) big = Math.max(big, Math.abs(pixels[i]));
  const scale = Math.max(...p.imageMean.map(Math.abs), ...p.imageStd.map((s) => 1 / Math.abs(s)));
  const cause =
    scale > 1e6
      ? `preprocessor_config.json's image_mean/image_std scale pixels by up to ${scale.toExponential(2)}`
      : big > 1e6
        ? `the input holds values as large as ${big.toExponential(2)} (normalized pixels are usually within ±3)`
        : 'the weights overflow f32 on this input (extreme weight magnitudes, or a layer_norm_eps too small for a constant row)';
  throw new Error(
    `vit-wasm: ${what}: the model produced ${out[bad]} (output ${bad}): ${cause}. ` +
      'Load with { allowNonFinite: true } to get non-finite results anyway.',
  );
}

/** `img` preprocessed into `out` (C·H·W floats), refusing a preprocessing that overflows f32. */
export function preprocessInto(img: RawImage, p: PreprocessConfig, channels: number, out: Float32Array): Float32Array {
  preprocess(img, p, channels === 1 ? 1 : 3, out);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0)
    throw new Error(
      `vit-wasm: preprocessing turned pixel ${bad} into ${out[bad]}: the model's rescale_factor, image_mean and image_std (preprocessor_config.json) overflow f32`,
    );
  return out;
}

/** `side` (a model's text tower), or an Error naming `what` and why this `family` checkpoint has none. */
export function needTextTower<S>(side: S | null, family: string, what: string): S {
  if (!side)
    throw new Error(
      `vit-wasm: ${what} needs a text tower: this ${family} checkpoint has none (a CLIPModel's or SiglipModel's, text_model.* in Hugging Face's names, has one)`,
    );
  return side;
}

/** forward()'s pixels checked: `batch` images of the model's C×H×W, every value finite; else an Error naming what is wrong. */
export function checkForwardInput(pixels: unknown, batch: number, c: ViTConfig): void {
  if (!Number.isInteger(batch) || batch < 1)
    throw new Error(`vit-wasm: forward: batch must be a positive integer, got ${batch}`);
  if (!(pixels instanceof Float32Array)) throw new Error('vit-wasm: forward: pixels must be a Float32Array (NCHW)');
  const [H, W] = c.imageSize,
    n = c.numChannels * H * W;
  if (pixels.length !== batch * n)
    throw new Error(
      `vit-wasm: forward: got ${pixels.length} floats, expected batch ${batch} × ${c.numChannels}×${H}×${W} = ${batch * n}`,
    );
  for (let i = 0; i < pixels.length; i++)
    if (!Number.isFinite(pixels[i]))
      throw new Error(`vit-wasm: forward: pixel ${i} is ${pixels[i]} (inputs must be finite)`);
}
