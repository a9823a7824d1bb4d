/**
 * Train-time augmentation, as torchvision's recipe does it: RandomResizedCrop (scale and ratio
 * ranges, ten tries then a center crop) and RandomHorizontalFlip, then the model's own rescale and
 * normalize. Every random draw comes from {@link streamRandom}, keyed by (seed, step, image), so a
 * run's augmentation depends on where it is, not on what ran before: a resumed run draws the same.
 */
import type { PreprocessConfig } from '../io/config.js';
import type { RawImage } from '../io/image/decode.js';
import { convertChannels, resize } from '../io/image/pillow.js';
import { preprocess } from '../io/image/preprocess.js';

/**
 * `none`: the model's eval preprocessing. `flip`: that, mirrored half the time. `light`: crops of
 * 50–100% of the area and flips. `strong`: ImageNet's 8–100% and flips.
 */
export type AugmentMode = 'none' | 'flip' | 'light' | 'strong';
export const AUGMENT_MODES: readonly AugmentMode[] = ['none', 'flip', 'light', 'strong'];

const SCALE: Record<'light' | 'strong', [number, number]> = { light: [0.5, 1], strong: [0.08, 1] };
const RATIO: [number, number] = [3 / 4, 4 / 3];

/** A uniform [0, 1) stream from integer keys (splitmix32 over each key): the same numbers on every machine. */
export function streamRandom(...keys: number[]): () => number {
  let s = 0x9e3779b9;
  const mix = (x: number) => {
    x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
    x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
    return (x ^ (x >>> 16)) >>> 0;
  };
  for (const k of keys) s = mix((s + Math.imul(k | 0, 0x27d4eb2d) + (Math.floor(k / 4294967296) | 0)) | 0);
  return () => {
    s = (s + 0x9e3779b9) | 0;
    return mix(s) / 4294967296;
  };
}

/** A Fisher–Yates permutation of 0…n−1 from `rand`. */
export function permutation(n: number, rand: () => number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

/** torchvision's RandomResizedCrop.get_params: [top, left, height, width] of the crop. */
export function cropParams(
  H: number,
  W: number,
  scale: [number, number],
  rand: () => number,
): [number, number, number, number] {
  const area = H * W,
    [lr0, lr1] = [Math.log(RATIO[0]), Math.log(RATIO[1])];
  for (let attempt = 0; attempt < 10; attempt++) {
    const target = area * (scale[0] + rand() * (scale[1] - scale[0])),
      aspect = Math.exp(lr0 + rand() * (lr1 - lr0));
    const w = Math.round(Math.sqrt(target * aspect)),
      h = Math.round(Math.sqrt(target / aspect));
    if (w > 0 && w <= W && h > 0 && h <= H)
      return [Math.floor(rand() * (H - h + 1)), Math.floor(rand() * (W - w + 1)), h, w];
  }
  // fallback: the whole image cut to the nearest allowed ratio, centred
  const r = W / H;
  const [h, w] = r < RATIO[0] ? [Math.round(W / RATIO[0]), W] : r > RATIO[1] ? [H, Math.round(H * RATIO[1])] : [H, W];
  return [Math.floor((H - h) / 2), Math.floor((W - w) / 2), h, w];
}

/** The pixels of a box of `img`. */
function crop(img: RawImage, top: number, left: number, h: number, w: number): RawImage {
  const c = img.channels,
    out = new Uint8Array(h * w * c);
  for (let y = 0; y < h; y++)
    out.set(img.data.subarray(((top + y) * img.width + left) * c, ((top + y) * img.width + left + w) * c), y * w * c);
  return { data: out, width: w, height: h, channels: c };
}

/** The image mirrored left to right. */
function flip(img: RawImage): RawImage {
  const c = img.channels,
    { width: w, height: h } = img,
    out = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let k = 0; k < c; k++) out[(y * w + x) * c + k] = img.data[(y * w + (w - 1 - x)) * c + k];
  return { data: out, width: w, height: h, channels: c };
}

/**
 * One training image → model input (C, H, W) in `out`: with `mode` none the model's preprocessing,
 * else a random resized crop to the model's size (the processor's filter), a flip half the time,
 * then its rescale and normalize.
 */
export function augment(
  img: RawImage,
  pre: PreprocessConfig,
  channels: 1 | 3,
  mode: AugmentMode,
  rand: () => number,
  out: Float32Array,
): void {
  if (mode === 'none') {
    preprocess(img, pre, channels, out);
    return;
  }
  if (mode === 'flip') {
    // the flip after the resize (and crop): the mirror image of what 'none' gives, as torchvision's order leaves it
    const C = channels,
      [H, W] = pre.size;
    preprocess(img, pre, C, out);
    if (rand() < 0.5)
      for (let c = 0; c < C; c++)
        for (let y = 0; y < H; y++) out.subarray((c * H + y) * W, (c * H + y + 1) * W).reverse();
    return;
  }
  let im = convertChannels(img, channels);
  const [H, W] = pre.size,
    [top, left, h, w] = cropParams(im.height, im.width, SCALE[mode], rand);
  im = resize(crop(im, top, left, h, w), W, H, pre.resample);
  if (rand() < 0.5) im = flip(im);
  preprocess(im, { ...pre, doResize: false, crop: false }, channels, out);
}
