/**
 * The geometry of Hugging Face's image processors beyond a resize to a fixed size: the size a
 * `shortest_edge` resize gives (image_utils' get_resize_output_image_size, default_to_square=False),
 * and image_transforms' center_crop, zero-padded where the crop is larger than the image.
 */
import type { RawImage } from './decode.js';

/** [height, width] with the shorter side `edge` and the longer int(edge · long / short), as HF computes it. */
export function shortestEdgeSize(height: number, width: number, edge: number): [number, number] {
  const [short, long] = width <= height ? [width, height] : [height, width];
  const newLong = Math.trunc((edge * long) / short); // Python's int() of the same double
  return width <= height ? [newLong, edge] : [edge, newLong];
}

/**
 * The [height, width] window of `img` centered as HF's center_crop centers it: top = ⌊(H − h)/2⌋,
 * left = ⌊(W − w)/2⌋ (with `transforms` 'torchvision', as torchvision's CenterCrop: rounded, half to
 * even); where the crop is larger than the image, the image sits in zeros, offset by
 * ⌈(new − old)/2⌉, and the same window is cut from that.
 */
export function centerCrop(img: RawImage, [h, w]: [number, number], transforms?: 'torchvision'): RawImage {
  const { width: W, height: H, channels: C } = img;
  if (W === w && H === h) return img;
  // torchvision's CenterCrop on a larger image: int(round((H − h) / 2)), Python's round (half to even)
  const offset = (big: number, small: number) => {
    const x = (big - small) / 2,
      f = Math.floor(x);
    return transforms === 'torchvision' && big >= small && x !== f && f % 2 === 1 ? f + 1 : f;
  };
  const padTop = h > H ? Math.ceil((h - H) / 2) : 0,
    padLeft = w > W ? Math.ceil((w - W) / 2) : 0,
    top = offset(H, h) + padTop,
    left = offset(W, w) + padLeft;
  const out = new Uint8Array(h * w * C);
  for (let y = 0; y < h; y++) {
    const sy = top + y - padTop; // the source row, or outside the image (a zero row)
    if (sy < 0 || sy >= H) continue;
    for (let x = 0; x < w; x++) {
      const sx = left + x - padLeft;
      if (sx < 0 || sx >= W) continue;
      for (let c = 0; c < C; c++) out[(y * w + x) * C + c] = img.data[(sy * W + sx) * C + c];
    }
  }
  return { data: out, width: w, height: h, channels: C };
}
