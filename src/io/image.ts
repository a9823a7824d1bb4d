/**
 * Images → model input, as HF's ViTImageProcessor computes it: decode, convert to RGB (alpha
 * dropped, greyscale expanded; or to L for 1-channel models), resize with Pillow's own
 * fixed-point convolution resampler (reproduced here so results match Pillow exactly on the
 * same decoded pixels), rescale by 1/255, normalize by mean/std, lay out as CHW.
 */
import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import jpeg from 'jpeg-js';
import type { PreprocessConfig } from '../network/config.js';
import { locate, readLocalFile } from '../runtime/platform.js';
import { fetchOk } from './source.js';

/** Decoded pixels: interleaved 8-bit channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

/**
 * A DOM type where the DOM library is in scope (browser code), `never` elsewhere: Node-only
 * TypeScript projects need no DOM types to use vit-wasm's declarations.
 */
type Dom<Name extends string> = typeof globalThis extends Record<Name, { prototype: infer T }> ? T : never;

/** Images a page already has. Their pixels are read by drawing them to a canvas. */
export type BrowserImage =
  | Dom<'HTMLImageElement'>
  | Dom<'HTMLCanvasElement'>
  | Dom<'OffscreenCanvas'>
  | Dom<'ImageBitmap'>
  | Dom<'HTMLVideoElement'>;

/**
 * Anything `classify` and `pixels` accept: a file path (Node) or URL (relative URLs resolve against
 * the page), encoded image bytes (`Uint8Array`, `ArrayBuffer`, `Blob`/`File`), decoded pixels
 * (`ImageData` or `{ data, width, height[, channels] }`), or in a browser an `<img>`, `<canvas>`,
 * `<video>`, `OffscreenCanvas` or `ImageBitmap`. PNG and JPEG bytes are decoded by vit-wasm itself
 * (fast-png, jpeg-js), so they give the same pixels in Node and every browser; other formats
 * (WebP, GIF, AVIF, …) and elements go through the browser's own decoder and a canvas.
 */
export type ImageInput =
  | string
  | URL
  | Uint8Array
  | ArrayBuffer
  | Blob
  | RawImage
  | { data: Uint8ClampedArray; width: number; height: number }
  | BrowserImage;

/** Decodes PNG or JPEG bytes. `name` labels errors. */
export function decodeImage(bytes: Uint8Array, name = 'image'): RawImage {
  const fail = (why: string): never => {
    throw new Error(`vit-wasm: ${name}: cannot read image: ${why}`);
  };
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) {
    let png: ReturnType<typeof decodePng>;
    try {
      png = decodePng(bytes);
    } catch (e) {
      return fail(`corrupt PNG (${(e as Error).message})`);
    }
    let data: Uint8Array,
      channels = png.channels;
    if (png.palette) {
      data = convertIndexedToRgb(png);
      channels = data.length / (png.width * png.height);
    } else if (png.depth === 16) {
      const d16 = png.data as Uint16Array;
      data = new Uint8Array(d16.length);
      for (let i = 0; i < d16.length; i++) data[i] = d16[i] >> 8;
    } else if (png.depth < 8) {
      // Pillow expands 1/2/4-bit greyscale to the full 0..255 range.
      const src = png.data as Uint8Array,
        bits = png.depth,
        w = png.width * channels,
        scale = 255 / ((1 << bits) - 1);
      const rowBytes = Math.ceil((w * bits) / 8);
      data = new Uint8Array(w * png.height);
      for (let y = 0; y < png.height; y++)
        for (let x = 0; x < w; x++) {
          const bit = x * bits,
            v = (src[y * rowBytes + (bit >> 3)] >> (8 - bits - (bit & 7))) & ((1 << bits) - 1);
          data[y * w + x] = Math.round(v * scale);
        }
    } else data = png.data as Uint8Array;
    if (![1, 2, 3, 4].includes(channels)) fail(`unsupported PNG with ${channels} channels`);
    return { data, width: png.width, height: png.height, channels: channels as RawImage['channels'] };
  }
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    try {
      const j = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
      return { data: j.data, width: j.width, height: j.height, channels: 3 };
    } catch (e) {
      return fail(`corrupt JPEG (${(e as Error).message})`);
    }
  }
  return fail(bytes.length === 0 ? 'the file is empty' : 'not a PNG or JPEG file');
}

const isPngOrJpeg = (b: Uint8Array) =>
  (b.length >= 4 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) ||
  (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff);

/** Encoded bytes → pixels: PNG and JPEG by our decoders; anything else by the browser's, where there is one. */
async function decodeBytes(bytes: Uint8Array, name: string): Promise<RawImage> {
  if (isPngOrJpeg(bytes) || typeof createImageBitmap !== 'function' || bytes.length === 0)
    return decodeImage(bytes, name);
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  } catch (e) {
    throw new Error(
      `vit-wasm: ${name}: cannot read image: not a PNG or JPEG, and the browser cannot decode it either (${(e as Error).message})`,
    );
  }
  try {
    return drawnPixels(bitmap, name);
  } finally {
    bitmap.close();
  }
}

const isA = (x: unknown, ctor: string): boolean => {
  const C = (globalThis as Record<string, unknown>)[ctor];
  return typeof C === 'function' && x instanceof (C as new () => unknown);
};

/** An element, canvas or bitmap, drawn to a fresh canvas and read back as RGBA. */
function drawnPixels(src: CanvasImageSource, name: string): RawImage {
  let w: number, h: number;
  if (isA(src, 'HTMLImageElement')) {
    w = (src as HTMLImageElement).naturalWidth;
    h = (src as HTMLImageElement).naturalHeight;
  } else if (isA(src, 'HTMLVideoElement')) {
    w = (src as HTMLVideoElement).videoWidth;
    h = (src as HTMLVideoElement).videoHeight;
  } else {
    w = (src as HTMLCanvasElement).width;
    h = (src as HTMLCanvasElement).height;
  }
  if (!(w > 0 && h > 0))
    throw new Error(`vit-wasm: ${name}: the image has no pixels (${w}x${h}): not loaded yet, or empty`);
  const canvas =
    typeof OffscreenCanvas === 'function'
      ? new OffscreenCanvas(w, h)
      : Object.assign(document.createElement('canvas'), { width: w, height: h });
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D | null;
  if (!ctx) throw new Error(`vit-wasm: ${name}: cannot get a 2d canvas to read the image's pixels`);
  ctx.drawImage(src, 0, 0);
  try {
    return { data: ctx.getImageData(0, 0, w, h).data, width: w, height: h, channels: 4 };
  } catch (e) {
    throw new Error(
      `vit-wasm: ${name}: the page may not read this image's pixels (${(e as Error).message}): it comes from another ` +
        'origin without CORS; serve it with Access-Control-Allow-Origin and set crossOrigin="anonymous" on the <img>, or pass its URL',
    );
  }
}

/** A label for an element in error messages. */
function elementName(x: object): string {
  const src = (x as { currentSrc?: string; src?: string }).currentSrc || (x as { src?: string }).src;
  return src
    ? `<${(x as Element).tagName?.toLowerCase() ?? 'image'} src="${src.length > 80 ? `${src.slice(0, 77)}...` : src}">`
    : x.constructor.name;
}

/** Loads any {@link ImageInput} as decoded pixels. */
export async function readImage(input: ImageInput): Promise<RawImage> {
  if (typeof input === 'string' || input instanceof URL) {
    const at = locate(String(input));
    if ('path' in at) return decodeImage(await readLocalFile(at.path, 'image'), at.path);
    const r = await fetchOk(at.url, 'image');
    return decodeBytes(new Uint8Array(await r.arrayBuffer()), at.url);
  }
  if (input instanceof ArrayBuffer) return decodeBytes(new Uint8Array(input), 'image');
  if (input instanceof Uint8Array) return decodeBytes(input, 'image');
  if (typeof Blob === 'function' && input instanceof Blob) {
    const name = (input as { name?: string }).name || `Blob (${input.type || 'no type'})`;
    return decodeBytes(new Uint8Array(await input.arrayBuffer()), name);
  }
  if (input === null || typeof input !== 'object')
    throw new Error(
      `vit-wasm: image: expected a path, URL, bytes, Blob, pixels or image element, got ${input === null ? 'null' : typeof input}`,
    );
  if (isA(input, 'HTMLImageElement')) {
    const img = input as HTMLImageElement;
    if (!img.complete || img.naturalWidth === 0) {
      try {
        await img.decode();
      } catch {
        throw new Error(`vit-wasm: ${elementName(img)}: the image could not be loaded or decoded`);
      }
    }
    return drawnPixels(img, elementName(img));
  }
  if (['HTMLCanvasElement', 'OffscreenCanvas', 'ImageBitmap', 'HTMLVideoElement'].some((c) => isA(input, c))) {
    return drawnPixels(input as CanvasImageSource, elementName(input));
  }
  if (!('data' in input) || !('width' in input) || !('height' in input)) {
    throw new Error(
      `vit-wasm: image: expected a path, URL, bytes, Blob, pixels ({ data, width, height }) or image element, got ${elementName(input)}`,
    );
  }
  const { data, width, height } = input;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`vit-wasm: image: bad size ${width}x${height}`);
  }
  if (!(data instanceof Uint8Array || data instanceof Uint8ClampedArray))
    throw new Error('vit-wasm: image: pixel data must be a Uint8Array or Uint8ClampedArray');
  const channels = 'channels' in input ? input.channels : data.length / (width * height);
  if (![1, 2, 3, 4].includes(channels) || data.length !== width * height * channels) {
    throw new Error(`vit-wasm: image: ${data.length} bytes do not match ${width}x${height} with 1–4 channels`);
  }
  return { data, width, height, channels: channels as RawImage['channels'] };
}

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

type Filter = { support: number; f: (x: number) => number };
const sinc = (x: number) => (x === 0 ? 1 : Math.sin(x * Math.PI) / (x * Math.PI));
const FILTERS: Record<number, Filter> = {
  1: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
  2: {
    support: 1,
    f: (x) => {
      x = Math.abs(x);
      return x < 1 ? 1 - x : 0;
    },
  },
  3: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      return x < 1 ? ((a + 2) * x - (a + 3)) * x * x + 1 : x < 2 ? (((x - 5) * x + 8) * x - 4) * a : 0;
    },
  },
  4: { support: 0.5, f: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  5: {
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

/** Pillow's Image.resize((w, h), resample) for 8-bit images: horizontal pass, then vertical. */
export function resize(img: RawImage, outW: number, outH: number, resample = 2): RawImage {
  const filter = FILTERS[resample];
  if (!filter) throw new Error(`vit-wasm: resample ${resample} is not supported`);
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

/**
 * ViTImageProcessor: convert, resize, rescale, normalize → Float32Array (C, H, W), written into `out`
 * when given. Arithmetic in float32 steps, as numpy does it.
 */
export function preprocess(img: RawImage, p: PreprocessConfig, channels: 1 | 3, out?: Float32Array): Float32Array {
  let im = convertChannels(img, channels);
  const [H, W] = p.size;
  if (p.doResize) im = resize(im, W, H, p.resample);
  else if (im.width !== W || im.height !== H) {
    throw new Error(
      `vit-wasm: image is ${im.width}x${im.height} but do_resize is false and the model expects ${W}x${H}`,
    );
  }
  const n = H * W,
    res = out ?? new Float32Array(channels * n),
    f = Math.fround;
  for (let ch = 0; ch < channels; ch++) {
    const m = f(p.imageMean[ch]),
      s = f(p.imageStd[ch]);
    for (let i = 0; i < n; i++) {
      let v = im.data[i * channels + ch];
      if (p.doRescale) v = f(v * p.rescaleFactor);
      if (p.doNormalize) v = f(f(v - m) / s);
      res[ch * n + i] = v;
    }
  }
  return res;
}
