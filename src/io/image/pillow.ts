/**
 * Pillow's own arithmetic for the two steps before normalization, reproduced so that results match
 * Pillow exactly on the same decoded pixels: mode conversion (to RGB or L) and the fixed-point
 * convolution resampler of libImaging/Resample.c, 8 bits per channel. Filters go by Pillow's names.
 */
import type { RawImage } from './decode.js';

/** Pillow's mode conversion to RGB (3) or L (1): alpha dropped, grey replicated, L = ITU-R 601 luma. */
export function convertChannels(img: RawImage, to: 1 | 3): RawImage {
  const { data, width, height, channels: c } = img,
    n = width * height;
  if (c === to) return img;
  const out = new Uint8Array(n * to);
  for (let i = 0; i < n; i++) {
    const s = i * c;
    if (to === 3) {
      if (c <= 2) out[i * 3] = out[i * 3 + 1] = out[i * 3 + 2] = data[s];
      else {
        out[i * 3] = data[s];
        out[i * 3 + 1] = data[s + 1];
        out[i * 3 + 2] = data[s + 2];
      }
    } else {
      out[i] = c <= 2 ? data[s] : (data[s] * 19595 + data[s + 1] * 38470 + data[s + 2] * 7471 + 0x8000) >> 16;
    }
  }
  return { data: out, width, height, channels: to };
}

// ---- Pillow's resampler (libImaging/Resample.c), 8 bits per channel ----

/** Pillow's resampling filters by name, each at the index that is Pillow's number for it (Image.Resampling). */
export const PILLOW_FILTERS = ['nearest', 'lanczos', 'bilinear', 'bicubic', 'box', 'hamming'] as const;
export type PillowFilter = (typeof PILLOW_FILTERS)[number];

/**
 * The filters vit-wasm resamples with: Pillow's convolution filters. NEAREST is a different code
 * path in Pillow (no convolution) and is not one of them.
 */
export type ResampleFilter = Exclude<PillowFilter, 'nearest'>;

type Filter = { support: number; f: (x: number) => number };
const sinc = (x: number) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));
const FILTERS: Record<ResampleFilter, Filter> = {
  lanczos: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  bilinear: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      return x < 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : x < 2 ? (((x - 5) * x + 8) * x - 4) * a : 0;
    },
  },
  box: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  hamming: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      if (x === 0) return 1;
      if (x >= 1) return 0;
      x *= Math.PI;
      return (Math.sin(x) / x) * (Math.fround(0.54) + Math.fround(0.46) * Math.cos(x));
    },
  },
};
const PRECISION_BITS = 32 - 8 - 2;

/** Per output pixel: first input index, tap count, and fixed-point weights (ksize per pixel). */
function coefficients(inSize: number, outSize: number, filter: Filter) {
  const scale = inSize / outSize,
    filterscale = Math.max(scale, 1),
    support = filter.support * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2),
    kk = new Int32Array(outSize * ksize),
    k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale,
      ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = filter.f((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      kk[xx * ksize + x] = Math.trunc(w < 0 ? -0.5 + w * (1 << PRECISION_BITS) : 0.5 + w * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, kk, ksize };
}

const clip8 = (v: number) => (v >= 1 << (PRECISION_BITS + 8) ? 255 : v <= 0 ? 0 : v >> PRECISION_BITS);

/** The convolution filter a name or Pillow number names, or undefined (unknown, or NEAREST). */
export function resampleFilter(resample: unknown): ResampleFilter | undefined {
  const name = typeof resample === 'number' ? PILLOW_FILTERS[resample] : resample;
  return typeof name === 'string' && Object.hasOwn(FILTERS, name) ? (name as ResampleFilter) : undefined;
}

/**
 * Pillow's Image.resize((w, h), resample) for 8-bit images: horizontal pass, then vertical.
 * `resample` is a filter's name, or Pillow's number for it (1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming).
 */
export function resize(
  img: RawImage,
  outW: number,
  outH: number,
  resample: ResampleFilter | number = 'bilinear',
): RawImage {
  const name = resampleFilter(resample);
  if (!name) throw new Error(`vit-wasm: resample ${JSON.stringify(resample)} is not supported`);
  const filter = FILTERS[name];
  let { data, width: w, height: h } = img;
  const c = img.channels;
  if (w !== outW) {
    const { bounds, kk, ksize } = coefficients(w, outW, filter);
    const out = new Uint8Array(outW * h * c);
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < outW; xx++) {
        const xmin = bounds[xx * 2],
          xmax = bounds[xx * 2 + 1],
          k0 = xx * ksize;
        for (let ch = 0; ch < c; ch++) {
          let ss = 1 << (PRECISION_BITS - 1);
          for (let x = 0; x < xmax; x++) ss += data[(y * w + x + xmin) * c + ch] * kk[k0 + x];
          out[(y * outW + xx) * c + ch] = clip8(ss);
        }
      }
    data = out;
    w = outW;
  }
  if (h !== outH) {
    const { bounds, kk, ksize } = coefficients(h, outH, filter);
    const out = new Uint8Array(w * outH * c);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = bounds[yy * 2],
        ymax = bounds[yy * 2 + 1],
        k0 = yy * ksize;
      for (let i = 0; i < w * c; i++) {
        let ss = 1 << (PRECISION_BITS - 1);
        for (let y = 0; y < ymax; y++) ss += data[(y + ymin) * w * c + i] * kk[k0 + y];
        out[yy * w * c + i] = clip8(ss);
      }
    }
    data = out;
    h = outH;
  }
  return { data, width: w, height: h, channels: c };
}
