/**
 * PNG and JPEG bytes → pixels, with every size checked from the headers before anything is
 * inflated or allocated: a decompression bomb or a lying header costs an error, not gigabytes.
 * PNGs are decoded by fast-png, JPEGs by libjpeg-turbo (src/io/image/jpeg.ts): Pillow's pixels.
 */
import { convertIndexedToRgb, decode as decodePng } from 'fast-png';
import { Unzlib } from 'fflate';
import { DEFAULT_LIMITS, type Limits, overLimit } from '../../platform/limits.js';
import { decodeJpeg } from './jpeg.js';

/** Decoded pixels: interleaved 8-bit channels (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), row-major. */
export interface RawImage {
  data: Uint8Array | Uint8ClampedArray;
  width: number;
  height: number;
  channels: 1 | 2 | 3 | 4;
}

export const isPng = (b: Uint8Array) =>
  b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47;
export const isJpeg = (b: Uint8Array) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;

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

/** Refuses encoded image bytes over `limits.maxImageBytes` (every way in checks here, before decoding). */
export function checkImageBytes(n: number, name: string, limits: Limits): void {
  if (n > limits.maxImageBytes)
    throw overLimit(`${name}: ${n.toLocaleString('en-US')} bytes of image`, 'maxImageBytes', limits.maxImageBytes);
}

/** Refuses an image with no pixels or more than the limit, before its pixels are decoded. */
export function checkSize(name: string, width: number, height: number, limits: Limits): void {
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
  checkImageBytes(bytes.length, name, lim);
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
  if (isJpeg(bytes)) return decodeJpeg(bytes, fail, (w, h) => checkSize(name, w, h, lim));
  return fail(bytes.length === 0 ? 'the file is empty' : 'not a PNG or JPEG file');
}
