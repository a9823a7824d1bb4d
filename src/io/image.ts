/**
 * Images → model input, as HF's ViTImageProcessor computes it: decode, convert to RGB (alpha
 * dropped, greyscale expanded; or to L for 1-channel models), resize with Pillow's own
 * fixed-point convolution resampler (reproduced here so results match Pillow exactly on the
 * same decoded pixels), rescale by 1/255, normalize by mean/std, lay out as CHW.
 */
import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import { Unzlib } from 'fflate';
import jpeg from 'jpeg-js';
import type { PreprocessConfig } from '../io/config.js';
import { DEFAULT_LIMITS, type Limits, overLimit } from '../platform/limits.js';
import { locate, readLocalFile } from '../platform/platform.js';
import { fetchOk, readResponse } from './http.js';

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

const isPng = (b: Uint8Array) => b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

interface PngHeader {
  width: number;
  height: number;
  /** Bytes the IDAT stream must inflate to: filter bytes and scanlines of every (Adam7) pass. */
  rawBytes: number;
  /** The IDAT chunks' contents, in order. */
  idat: Uint8Array[];
}

/**
 * IHDR's size and the IDAT chunks, read before decoding so that a bomb is refused before its
 * pixels are allocated. Null when the chunk structure is broken (the decoder then says how).
 */
function pngHeader(b: Uint8Array): PngHeader | { bad: string } | null {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (b.length < 33 || String.fromCharCode(...b.subarray(12, 16)) !== 'IHDR') return null;
  const width = v.getUint32(16),
    height = v.getUint32(20),
    depth = b[24],
    color = b[25],
    interlace = b[28];
  const channels = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[color] ?? 0;
  // the bit depths the PNG specification allows for each colour type
  const depths = (
    { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] } as Record<number, number[]>
  )[color];
  if (!depths?.includes(depth) || interlace > 1)
    return {
      bad: `invalid PNG header: colour type ${color} with bit depth ${depth}${interlace > 1 ? `, interlace method ${interlace}` : ''}`,
    };
  const line = (w: number) => (w > 0 ? 1 + Math.ceil((w * channels * depth) / 8) : 0);
  let rawBytes = 0;
  if (interlace === 1) {
    // Adam7: [x0, y0, dx, dy] of the seven passes; an empty pass has no scanlines at all
    for (const [x0, y0, dx, dy] of [
      [0, 0, 8, 8],
      [4, 0, 8, 8],
      [0, 4, 4, 8],
      [2, 0, 4, 4],
      [0, 2, 2, 4],
      [1, 0, 2, 2],
      [0, 1, 1, 2],
    ]) {
      const w = Math.ceil((width - x0) / dx),
        h = Math.ceil((height - y0) / dy);
      if (w > 0 && h > 0) rawBytes += h * line(w);
    }
  } else rawBytes = height * line(width);
  const idat: Uint8Array[] = [];
  for (let p = 8; p + 8 <= b.length; ) {
    const len = v.getUint32(p),
      type = String.fromCharCode(...b.subarray(p + 4, p + 8));
    if (p + 12 + len > b.length) break;
    if (type === 'IDAT') idat.push(b.subarray(p + 8, p + 8 + len));
    if (type === 'IEND') break;
    p += 12 + len;
  }
  return { width, height, rawBytes, idat };
}

/**
 * Bytes the zlib stream of `idat` inflates to, counted without keeping them. It stops once past
 * `cap`: input is fed 64 KiB at a time (at most ~66 MB of output each), so a zlib bomb costs
 * neither memory nor minutes.
 */
function inflatedLength(idat: Uint8Array[], cap: number): number {
  let n = 0;
  const z = new Unzlib((chunk) => {
    n += chunk.length;
  });
  try {
    for (const c of idat)
      for (let o = 0; o < c.length; o += 65536) {
        z.push(c.subarray(o, o + 65536), false);
        if (n > cap) return n;
      }
    z.push(new Uint8Array(0), true);
  } catch {
    /* a corrupt stream: the decoder reports it */
  }
  return n;
}

/** A JPEG's frame size from its SOF marker, or null when none is found before the scan. */
function jpegSize(b: Uint8Array): { width: number; height: number } | null {
  for (let p = 2; p + 9 < b.length; ) {
    if (b[p] !== 0xff) return null;
    const m = b[p + 1];
    if (m === 0xff) {
      p++; // fill byte
      continue;
    }
    if (m === 0xd8 || (m >= 0xd0 && m <= 0xd7) || m === 0x01) {
      p += 2;
      continue;
    }
    const len = (b[p + 2] << 8) | b[p + 3];
    // SOF0…SOF15 except DHT (C4), JPG (C8) and DAC (CC)
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc)
      return { height: (b[p + 5] << 8) | b[p + 6], width: (b[p + 7] << 8) | b[p + 8] };
    if (m === 0xda || m === 0xd9) return null;
    p += 2 + len;
  }
  return null;
}

/** Refuses an image with no pixels or more than the limit, before its pixels are decoded. */
function checkSize(name: string, width: number, height: number, limits: Limits): void {
  if (width === 0 || height === 0)
    throw new Error(`vit-wasm: ${name}: cannot read image: it has no pixels (${width}x${height})`);
  if (width * height > limits.maxImagePixels)
    throw overLimit(
      `${name}: the image is ${width}x${height} = ${(width * height).toLocaleString('en-US')} pixels, which`,
      'maxImagePixels',
      limits.maxImagePixels,
    );
}

/** Decodes PNG or JPEG bytes. `name` labels errors; images over `limits.maxImagePixels` are refused from their header. */
export function decodeImage(bytes: Uint8Array, name = 'image', limits: Partial<Limits> = {}): RawImage {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  const fail = (why: string): never => {
    throw new Error(`vit-wasm: ${name}: cannot read image: ${why}`);
  };
  if (bytes.length > lim.maxImageBytes)
    throw overLimit(
      `${name}: ${bytes.length.toLocaleString('en-US')} bytes of image`,
      'maxImageBytes',
      lim.maxImageBytes,
    );
  if (isPng(bytes)) {
    const h = pngHeader(bytes);
    if (h && 'bad' in h) fail(h.bad);
    if (h && !('bad' in h)) {
      checkSize(name, h.width, h.height, lim);
      // fast-png fills missing scanline bytes with zeros: a truncated image would be classified
      // and with more data than that, the decoder would inflate all of it into memory first
      const slack = 65536,
        got = inflatedLength(h.idat, h.rawBytes + slack);
      if (got > h.rawBytes + slack)
        fail(
          `corrupt PNG: its pixel data inflates to more than the ${h.rawBytes} bytes a ${h.width}x${h.height} image needs`,
        );
      if (got < h.rawBytes)
        fail(
          `truncated PNG: its pixel data inflates to ${got} bytes, a ${h.width}x${h.height} image needs ${h.rawBytes}`,
        );
    }
    let png: ReturnType<typeof decodePng>;
    try {
      png = decodePng(bytes);
    } catch (e) {
      return fail(`corrupt PNG (${(e as Error).message})`);
    }
    let data: Uint8Array,
      channels = png.channels;
    if (png.palette) {
      try {
        data = convertIndexedToRgb(png);
      } catch (e) {
        return fail(`corrupt PNG palette (${(e as Error).message})`);
      }
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
  if (isJpeg(bytes)) {
    const size = jpegSize(bytes);
    if (size) checkSize(name, size.width, size.height, lim);
    try {
      const j = jpeg.decode(bytes, {
        useTArray: true,
        formatAsRGBA: false,
        // a second guard for frames our marker scan did not find
        maxResolutionInMP: lim.maxImagePixels / 1e6,
        // jpeg-js counts ~13 bytes per pixel (coefficients, planes, output): room for the largest image allowed
        maxMemoryUsageInMB: Math.max(512, Math.ceil((lim.maxImagePixels * 16) / 2 ** 20)),
      });
      return { data: j.data, width: j.width, height: j.height, channels: 3 };
    } catch (e) {
      return fail(`corrupt JPEG (${(e as Error).message})`);
    }
  }
  return fail(bytes.length === 0 ? 'the file is empty' : 'not a PNG or JPEG file');
}

/** Encoded bytes → pixels: PNG and JPEG by our decoders; anything else by the browser's, where there is one. */
async function decodeBytes(bytes: Uint8Array, name: string, limits: Limits): Promise<RawImage> {
  if (isPng(bytes) || isJpeg(bytes) || typeof createImageBitmap !== 'function' || bytes.length === 0)
    return decodeImage(bytes, name, limits);
  if (bytes.length > limits.maxImageBytes)
    throw overLimit(
      `${name}: ${bytes.length.toLocaleString('en-US')} bytes of image`,
      'maxImageBytes',
      limits.maxImageBytes,
    );
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>]));
  } catch (e) {
    throw new Error(
      `vit-wasm: ${name}: cannot read image: not a PNG or JPEG, and the browser cannot decode it either (${(e as Error).message})`,
    );
  }
  try {
    return drawnPixels(bitmap, name, limits);
  } finally {
    bitmap.close();
  }
}

const isA = (x: unknown, ctor: string): boolean => {
  const C = (globalThis as Record<string, unknown>)[ctor];
  return typeof C === 'function' && x instanceof (C as new () => unknown);
};

/** An element, canvas or bitmap, drawn to a fresh canvas and read back as RGBA. */
function drawnPixels(src: CanvasImageSource, name: string, limits: Limits): RawImage {
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
  checkSize(name, w, h, limits);
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

/**
 * Loads any {@link ImageInput} as decoded pixels. Files, downloads and images over `limits`
 * (default {@link DEFAULT_LIMITS}: 256 MiB, 89,478,485 pixels) are refused before they are read whole.
 */
export async function readImage(input: ImageInput, limits: Partial<Limits> = {}): Promise<RawImage> {
  const lim = { ...DEFAULT_LIMITS, ...limits };
  if (typeof input === 'string' || input instanceof URL) {
    const at = locate(String(input));
    if ('path' in at)
      return decodeImage(
        await readLocalFile(at.path, 'image', { key: 'maxImageBytes', max: lim.maxImageBytes }),
        at.path,
        lim,
      );
    const r = await fetchOk(at.url, 'image', lim.stallTimeoutMs);
    return decodeBytes(await readResponse(r, 'image', 'maxImageBytes', lim.maxImageBytes), at.url, lim);
  }
  if (input instanceof ArrayBuffer) return decodeBytes(new Uint8Array(input), 'image', lim);
  if (input instanceof Uint8Array) return decodeBytes(input, 'image', lim);
  if (typeof Blob === 'function' && input instanceof Blob) {
    const name = (input as { name?: string }).name || `Blob (${input.type || 'no type'})`;
    if (input.size > lim.maxImageBytes)
      throw overLimit(
        `${name}: ${input.size.toLocaleString('en-US')} bytes of image`,
        'maxImageBytes',
        lim.maxImageBytes,
      );
    return decodeBytes(new Uint8Array(await input.arrayBuffer()), name, lim);
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
    return drawnPixels(img, elementName(img), lim);
  }
  if (['HTMLCanvasElement', 'OffscreenCanvas', 'ImageBitmap', 'HTMLVideoElement'].some((c) => isA(input, c))) {
    return drawnPixels(input as CanvasImageSource, elementName(input), lim);
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
