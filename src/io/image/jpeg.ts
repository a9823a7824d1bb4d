/**
 * JPEG → pixels as Pillow decodes them: libjpeg-turbo itself (its TurboJPEG API compiled to wasm,
 * the @cwasm/jpeg-turbo build, embedded in build/jpeg-wasm.ts), with Pillow's settings — ISLOW
 * IDCT, fancy upsampling, YCbCr → RGB (4:2:0, 4:2:2, 4:4:4, progressive, restart markers alike),
 * greyscale as L, CMYK as Pillow's "CMYK;I" for Adobe files and its CMYK → RGB. EXIF orientation is
 * not applied, as Image.open does not. Before a byte is decoded the frame is checked: its pixels
 * against limits.maxImagePixels, and its scan data against the least a Huffman-coded frame of that
 * size can hold (one bit per 8×8 block per component), so a 9000×9000 header over no data fails at
 * once, small. A truncated file is refused, as Pillow refuses one.
 */

import { JPEG_TURBO_WASM } from '../../../build/jpeg-wasm.js';
import { fromBase64 } from '../../runtime/kernels.js';

interface TurboJpeg {
  memory: WebAssembly.Memory;
  malloc(n: number): number;
  free(p: number): void;
  tjInitDecompress(): number;
  tjDestroy(h: number): number;
  tjDecompressHeader3(h: number, src: number, n: number, w: number, hh: number, sub: number, cs: number): number;
  tjDecompress2(
    h: number,
    src: number,
    n: number,
    dst: number,
    w: number,
    pitch: number,
    hh: number,
    pf: number,
    flags: number,
  ): number;
}

/** TurboJPEG's pixel formats and colour spaces (turbojpeg.h). */
const TJPF_RGB = 0,
  TJPF_GRAY = 6,
  TJPF_CMYK = 11;
const TJCS_GRAY = 2,
  TJCS_CMYK = 3,
  TJCS_YCCK = 4;
/** Past this the decoder's memory (grown for one large image) is let go rather than kept. */
const KEEP_BYTES = 64 << 20;
/**
 * Frames past this are handed over as a view of the decoder's memory (whose instance is then let
 * go) rather than copied out: a 12-megapixel photo costs its frame once, not twice.
 */
const VIEW_BYTES = 8 << 20;

let compiled: WebAssembly.Module | null = null;
let pending: Promise<WebAssembly.Module> | null = null;
let instance: TurboJpeg | null = null;

/** Compiles the decoder, once, off the calling thread's critical path (browsers refuse large synchronous compiles on a page's main thread). */
export async function prepareJpegDecoder(): Promise<void> {
  if (compiled) return;
  pending ??= WebAssembly.compile(fromBase64(JPEG_TURBO_WASM));
  compiled = await pending;
}

/** The decoder's instance: its imports are stubs, as no decode reaches them but libjpeg's error exit. */
function turbo(): TurboJpeg {
  if (instance) return instance;
  if (!compiled) {
    try {
      compiled = new WebAssembly.Module(fromBase64(JPEG_TURBO_WASM));
    } catch (e) {
      throw new Error(
        `vit-wasm: the JPEG decoder is not compiled yet on this thread (${(e as Error).message}): await readImage(…) once first, or pass pixels`,
      );
    }
  }
  const unused = () => {
    throw new Error('libjpeg-turbo called a system function');
  };
  instance = new WebAssembly.Instance(compiled, {
    // libjpeg's error exit longjmps: the throw unwinds the wasm, and the instance is dropped after
    env: {
      setjmp: () => 0,
      longjmp: () => {
        throw new Error('libjpeg-turbo stopped on an error');
      },
    },
    wasi_snapshot_preview1: {
      environ_sizes_get: () => 0,
      environ_get: unused,
      proc_exit: unused,
      fd_close: unused,
      fd_seek: unused,
      fd_write: unused,
    },
  }).exports as unknown as TurboJpeg;
  return instance;
}

/** What the frame header says: its size, its components' sampling, whether it is Huffman-coded, the Adobe marker, where the scan starts. */
interface Frame {
  width: number;
  height: number;
  sampling: [number, number][];
  huffman: boolean;
  adobe: boolean;
  scanStart: number;
}

/** Walks the markers to the first scan. null: no frame header before it. */
export function jpegFrame(b: Uint8Array): Frame | null {
  let frame: Omit<Frame, 'scanStart' | 'adobe'> | null = null,
    adobe = false;
  for (let p = 2; p + 3 < b.length; ) {
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
    if (m === 0xee && len >= 7 && String.fromCharCode(...b.subarray(p + 4, p + 9)) === 'Adobe') adobe = true;
    // SOF0…SOF15 but DHT (C4), JPG (C8) and DAC (CC); SOF9 and up are arithmetic-coded
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && p + 9 < b.length) {
      const n = b[p + 9],
        sampling: [number, number][] = [];
      for (let c = 0; c < n && p + 12 + 3 * c < b.length; c++) {
        const s = b[p + 11 + 3 * c];
        sampling.push([s >> 4, s & 15]);
      }
      frame = {
        height: (b[p + 5] << 8) | b[p + 6],
        width: (b[p + 7] << 8) | b[p + 8],
        sampling,
        huffman: m < 0xc9,
      };
    }
    if (m === 0xda) return frame && { ...frame, adobe, scanStart: p };
    if (m === 0xd9) return null;
    p += 2 + len;
  }
  return null;
}

/** The fewest bits a Huffman-coded frame's scans can take: one per 8×8 block per component (its DC). */
function leastScanBits(f: Frame): number {
  const hmax = Math.max(1, ...f.sampling.map(([h]) => h)),
    vmax = Math.max(1, ...f.sampling.map(([, v]) => v));
  let blocks = 0;
  for (const [h, v] of f.sampling)
    blocks += Math.ceil(Math.ceil((f.width * h) / hmax) / 8) * Math.ceil(Math.ceil((f.height * v) / vmax) / 8);
  return blocks;
}

/** Pillow's CMYK → RGB (Convert.c cmyk2rgb): each channel (255 − k) − c·(255 − k)/255, rounded as MULDIV255. */
function cmykToRgb(cmyk: Uint8Array, n: number, inverted: boolean): Uint8Array {
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const at = i * 4,
      px = (j: number) => (inverted ? 255 - cmyk[at + j] : cmyk[at + j]),
      nk = 255 - px(3);
    for (let c = 0; c < 3; c++) {
      const t = px(c) * nk + 128;
      out[i * 3 + c] = Math.max(0, Math.min(255, nk - (((t >> 8) + t) >> 8)));
    }
  }
  return out;
}

/**
 * Decodes JPEG `bytes` (called after decode.ts found the magic). `fail` throws the caller's Error
 * naming the file; `checkSize` refuses frames over the pixel limit.
 */
export function decodeJpeg(
  bytes: Uint8Array,
  fail: (why: string) => never,
  checkSize: (w: number, h: number) => void,
): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  const f = jpegFrame(bytes);
  if (!f) return fail('corrupt JPEG (no frame header before its scan data)');
  checkSize(f.width, f.height);
  const least = f.huffman ? leastScanBits(f) : 0,
    held = (bytes.length - f.scanStart) * 8;
  if (held < least)
    fail(
      `truncated or corrupt JPEG: its ${f.width}x${f.height} frame needs at least ${Math.ceil(least / 8).toLocaleString('en-US')} bytes of scan data (a bit per 8×8 block), it holds ${Math.max(0, held / 8).toLocaleString('en-US')}`,
    );
  const t = turbo();
  let src = 0,
    meta = 0,
    dst = 0,
    handle = 0,
    ok = false;
  try {
    src = t.malloc(bytes.length);
    meta = t.malloc(16);
    handle = t.tjInitDecompress();
    if (!src || !meta || !handle) return fail('the JPEG decoder is out of memory');
    new Uint8Array(t.memory.buffer, src, bytes.length).set(bytes);
    if (t.tjDecompressHeader3(handle, src, bytes.length, meta, meta + 4, meta + 8, meta + 12) !== 0)
      return fail('corrupt JPEG (libjpeg-turbo cannot read its header)');
    const [w, h, , space] = new Int32Array(t.memory.buffer, meta, 4);
    if (w !== f.width || h !== f.height)
      return fail(`corrupt JPEG (frame ${f.width}x${f.height}, decoded header ${w}x${h})`);
    const cmyk = space === TJCS_CMYK || space === TJCS_YCCK,
      channels = space === TJCS_GRAY ? 1 : cmyk ? 4 : 3,
      format = channels === 1 ? TJPF_GRAY : cmyk ? TJPF_CMYK : TJPF_RGB;
    dst = t.malloc(w * h * channels);
    if (!dst) return fail(`the JPEG decoder is out of memory for ${w}x${h}`);
    // flags 0: ISLOW IDCT and fancy upsampling, Pillow's; a warning (premature end of data) fails it
    const status = t.tjDecompress2(handle, src, bytes.length, dst, w, w * channels, h, format, 0);
    // libjpeg-turbo reports a warning as −1 too: a file that ends in EOI decoded whole (Pillow ignores
    // such warnings: extraneous bytes, a corrupt segment); one that ends early is truncated
    if (status !== 0 && !endsInEoi(bytes)) return fail('truncated JPEG (its data ends before the image does)');
    const n = w * h * channels,
      view = n > VIEW_BYTES && !cmyk;
    const pixels = view ? new Uint8Array(t.memory.buffer, dst, n) : new Uint8Array(t.memory.buffer, dst, n).slice();
    if (view) {
      instance = null; // the memory now belongs to the image
      return { data: pixels, width: w, height: h, channels: channels as 1 | 3 };
    }
    ok = true;
    if (cmyk) return { data: cmykToRgb(pixels, w * h, f.adobe), width: w, height: h, channels: 3 };
    return { data: pixels, width: w, height: h, channels: channels as 1 | 3 };
  } catch (e) {
    if ((e as Error).message.startsWith('vit-wasm:')) throw e;
    return fail(`corrupt JPEG (${(e as Error).message})`);
  } finally {
    if (ok) {
      for (const p of [src, meta, dst]) if (p) t.free(p);
      if (handle) t.tjDestroy(handle);
    }
    // after an error (an unwound longjmp) or a large image, a fresh instance next time
    if (!ok || t.memory.buffer.byteLength > KEEP_BYTES) instance = null;
  }
}

/** Whether the bytes end in an EOI marker (trailing zero padding allowed). */
function endsInEoi(b: Uint8Array): boolean {
  let e = b.length;
  while (e > 2 && b[e - 1] === 0) e--;
  return b[e - 2] === 0xff && b[e - 1] === 0xd9;
}
