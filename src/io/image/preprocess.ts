/**
 * Images → model input, as HF's image processors compute it: convert to RGB (alpha dropped,
 * greyscale expanded; or to L for 1-channel models), resize with Pillow's resampler (to a size, or
 * the shortest edge to a length), center crop (CLIP, BiT, DeiT), rescale by 1/255, normalize by
 * mean/std, lay out as CHW.
 */
import type { PreprocessConfig } from '../config.js';
import { centerCrop, shortestEdgeSize } from './crop.js';
import type { RawImage } from './decode.js';
import { convertChannels, resize } from './pillow.js';

/**
 * ViTImageProcessor: convert, resize, rescale, normalize → Float32Array (C, H, W), written into `out`
 * when given. Arithmetic in float32 steps, as numpy does it.
 */
export function preprocess(img: RawImage, p: PreprocessConfig, channels: 1 | 3, out?: Float32Array): Float32Array {
  if (p.refuse) throw new Error(p.refuse);
  let im = convertChannels(img, channels);
  const [H, W] = p.size;
  if (p.doResize) {
    const to = p.resizeTo ?? { size: p.size },
      [h, w] = 'size' in to ? to.size : shortestEdgeSize(im.height, im.width, to.shortestEdge);
    im = resize(im, w, h, p.resample);
  }
  if (p.crop) im = centerCrop(im, p.size, p.transforms);
  if (im.width !== W || im.height !== H) {
    throw new Error(
      `vit-wasm: image is ${im.width}x${im.height} but do_resize is false and the model expects ${W}x${H}`,
    );
  }
  const n = H * W,
    res = out ?? new Float32Array(channels * n),
    f = Math.fround;
  const divide = p.transforms === 'torchvision'; // ToTensor: v / 255 in f32
  for (let ch = 0; ch < channels; ch++) {
    const m = f(p.imageMean[ch]),
      s = f(p.imageStd[ch]);
    for (let i = 0; i < n; i++) {
      let v = im.data[i * channels + ch];
      if (p.doRescale) v = divide ? f(v / 255) : f(v * p.rescaleFactor);
      if (p.doNormalize) v = f(f(v - m) / s);
      res[ch * n + i] = v;
    }
  }
  return res;
}
