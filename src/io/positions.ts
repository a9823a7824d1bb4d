/**
 * Position embeddings for another image size, as Hugging Face's ViT and DeiT compute them
 * (`interpolate_pos_encoding`): the prefix tokens' positions kept, the patches' (a square grid in
 * the checkpoint) resized by torch's bicubic interpolation — `F.interpolate(mode='bicubic',
 * align_corners=False)` to the new grid: cubic convolution with A = −0.75, source index
 * (o + ½)·in/out − ½, taps clamped at the edges — computed in float64, rounded once to f32.
 */

const A = -0.75;
const near = (x: number) => ((A + 2) * x - (A + 3)) * x * x + 1; // |x| ≤ 1
const far = (x: number) => ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; // 1 < |x| < 2

/** For each output index of an axis in → out: the four source indices (clamped) and their weights. */
function taps(inSize: number, outSize: number): { idx: Int32Array; w: Float64Array } {
  const scale = inSize / outSize,
    idx = new Int32Array(outSize * 4),
    w = new Float64Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    const src = (o + 0.5) * scale - 0.5,
      x0 = Math.floor(src),
      t = src - x0;
    const ws = [far(t + 1), near(t), near(1 - t), far(2 - t)];
    for (let k = 0; k < 4; k++) {
      idx[o * 4 + k] = Math.min(inSize - 1, Math.max(0, x0 - 1 + k));
      w[o * 4 + k] = ws[k];
    }
  }
  return { idx, w };
}

/**
 * pos (prefix + side², D) → (prefix + h·w, D): the patch positions of a side×side grid resized to
 * h×w. torch interpolates rows within each of the 4 source rows, then across them; so does this.
 */
export function interpolatePositions(
  pos: Float32Array,
  prefix: number,
  side: number,
  D: number,
  [h, w]: [number, number],
): Float32Array {
  const out = new Float32Array((prefix + h * w) * D);
  out.set(pos.subarray(0, prefix * D));
  const ty = taps(side, h),
    tx = taps(side, w),
    at = (y: number, x: number, d: number) => pos[(prefix + y * side + x) * D + d];
  for (let oy = 0; oy < h; oy++)
    for (let ox = 0; ox < w; ox++)
      for (let d = 0; d < D; d++) {
        let v = 0;
        for (let ky = 0; ky < 4; ky++) {
          const y = ty.idx[oy * 4 + ky];
          let row = 0;
          for (let kx = 0; kx < 4; kx++) row += at(y, tx.idx[ox * 4 + kx], d) * tx.w[ox * 4 + kx];
          v += row * ty.w[oy * 4 + ky];
        }
        out[(prefix + oy * w + ox) * D + d] = v;
      }
  return out;
}
