/**
 * Position embeddings for another image size, as the checkpoint's library computes them: the
 * prefix tokens' positions kept, the patches' grid resized by torch's `F.interpolate(mode='bicubic',
 * align_corners=False)` to the new grid — computed in float64, rounded once to f32.
 *   bicubic           Hugging Face's ViT, DeiT and DINOv2 (`interpolate_pos_encoding`): cubic
 *                     convolution with A = −0.75 on the 4 nearest source positions, source index
 *                     (o + ½)·in/out − ½, taps clamped at the edges.
 *   bicubicAntialias  timm's `resample_abs_pos_embed` and DINOv2 with registers (`antialias=True`):
 *                     torch's antialiased kernel (Pillow's), cubic with A = −0.5 stretched by in/out
 *                     when shrinking, over the source positions within its support around
 *                     (o + ½)·in/out, the weights normalised to sum to 1.
 *   bilinear          BEiT's relative position bias tables (`mode='bilinear'`): the 2 nearest
 *                     source positions, source index (o + ½)·in/out − ½ clamped at 0 below.
 *   bicubicAligned    torchvision's interpolate_embeddings (`align_corners=True`): as bicubic,
 *                     source index o·(in − 1)/(out − 1), so the corners stay where they are.
 */

/** How a library resizes the position grid. */
export type PositionResize = 'bicubic' | 'bicubicAntialias' | 'bilinear' | 'bicubicAligned';

const cubic = (A: number) => (x: number) => {
  x = Math.abs(x);
  if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
};
const keys = cubic(-0.75),
  keysAntialias = cubic(-0.5);

/** For each output index of an axis in → out: its source indices and their weights. */
type Taps = { idx: number[]; w: number[] }[];

/** torch's upsample_bicubic2d taps: 4 a side, clamped at the edges (align_corners: the corners' source indices kept). */
function bicubicTaps(inSize: number, outSize: number, alignCorners = false): Taps {
  const scale = alignCorners ? (outSize > 1 ? (inSize - 1) / (outSize - 1) : 0) : inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const src = alignCorners ? o * scale : (o + 0.5) * scale - 0.5,
      x0 = Math.floor(src),
      t = src - x0;
    return {
      idx: [0, 1, 2, 3].map((k) => Math.min(inSize - 1, Math.max(0, x0 - 1 + k))),
      w: [keys(t + 1), keys(t), keys(1 - t), keys(2 - t)],
    };
  });
}

/** torch's _upsample_bicubic2d_aa taps (its _compute_weights_aa): the support widened when shrinking. */
function antialiasTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize,
    support = scale >= 1 ? 2 * scale : 2,
    invscale = scale >= 1 ? 1 / scale : 1;
  return Array.from({ length: outSize }, (_, o) => {
    const center = scale * (o + 0.5),
      // torch truncates toward zero (a C++ cast), then clamps
      xmin = Math.max(Math.trunc(center - support + 0.5), 0),
      xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    const idx: number[] = [],
      w: number[] = [];
    for (let j = xmin; j < xmax; j++) {
      idx.push(j);
      w.push(keysAntialias((j - center + 0.5) * invscale));
    }
    const total = w.reduce((a, b) => a + b, 0);
    return { idx, w: total === 0 ? w : w.map((v) => v / total) };
  });
}

/** torch's upsample_bilinear2d taps (align_corners=False): 2 a side, the upper one clamped at the edge. */
function bilinearTaps(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  return Array.from({ length: outSize }, (_, o) => {
    const src = Math.max(0, (o + 0.5) * scale - 0.5),
      x0 = Math.floor(src),
      t = src - x0;
    return { idx: [x0, Math.min(inSize - 1, x0 + 1)], w: [1 - t, t] };
  });
}

const TAPS: Record<PositionResize, (inSize: number, outSize: number) => Taps> = {
  bicubic: bicubicTaps,
  bicubicAntialias: antialiasTaps,
  bilinear: bilinearTaps,
  bicubicAligned: (inSize, outSize) => bicubicTaps(inSize, outSize, true),
};

/**
 * pos (prefix + gh·gw, D) → (prefix + h·w, D): the patch positions of a gh×gw grid resized to h×w,
 * along x within each source row, then across the rows.
 */
export function interpolatePositions(
  pos: Float32Array,
  prefix: number,
  [gh, gw]: [number, number],
  D: number,
  [h, w]: [number, number],
  mode: PositionResize = 'bicubic',
): Float32Array {
  const out = new Float32Array((prefix + h * w) * D);
  out.set(pos.subarray(0, prefix * D));
  const taps = TAPS[mode],
    ty = taps(gh, h),
    tx = taps(gw, w);
  const row = new Float64Array(D);
  for (let oy = 0; oy < h; oy++)
    for (let ox = 0; ox < w; ox++) {
      const v = new Float64Array(D),
        { idx: ys, w: wy } = ty[oy],
        { idx: xs, w: wx } = tx[ox];
      for (let ky = 0; ky < ys.length; ky++) {
        row.fill(0);
        for (let kx = 0; kx < xs.length; kx++) {
          const at = (prefix + ys[ky] * gw + xs[kx]) * D;
          for (let d = 0; d < D; d++) row[d] += pos[at + d] * wx[kx];
        }
        for (let d = 0; d < D; d++) v[d] += row[d] * wy[ky];
      }
      out.set(v, (prefix + oy * w + ox) * D);
    }
  return out;
}
