/**
 * Any image a user has → decoded pixels: a path (Node) or URL, bytes, a Blob, pixels, or a
 * browser element (img, canvas, bitmap, video) drawn to a canvas. Sizes are checked against the
 * limits before anything is read whole.
 */
import { DEFAULT_LIMITS, type Limits } from '../../platform/limits.js';
import { locate, readLocalFile } from '../../platform/platform.js';
import { fetchOk, readResponse } from '../http.js';
import { checkImageBytes, checkSize, decodeImage, isJpeg, isPng, type RawImage } from './decode.js';
import { prepareJpegDecoder } from './jpeg.js';

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
 * (fast-png; libjpeg-turbo in wasm, Pillow's pixels), so they give the same pixels in Node and every browser; other formats
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

/** Encoded bytes → pixels: PNG and JPEG by our decoders; anything else by the browser's, where there is one. */
async function decodeBytes(bytes: Uint8Array, name: string, limits: Limits): Promise<RawImage> {
  if (isJpeg(bytes)) await prepareJpegDecoder(); // compiled once, asynchronously (a page's main thread may not compile it synchronously)
  if (isPng(bytes) || isJpeg(bytes) || typeof createImageBitmap !== 'function' || bytes.length === 0)
    return decodeImage(bytes, name, limits);
  checkImageBytes(bytes.length, name, limits);
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
    checkImageBytes(input.size, name, lim); // before the Blob is read
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
