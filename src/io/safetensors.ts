/**
 * safetensors reader: an 8-byte little-endian header length, a JSON header
 * { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__? }, then the data. Everything
 * is validated before a byte of data is read, so a bad file fails with its name and the tensor at
 * fault instead of a wasm trap or silent garbage.
 */
import { checkJsonDepth, DEFAULT_LIMITS, overLimit } from '../platform/limits.js';
import type { ByteSource } from './source.js';

/** The dtypes vit-wasm reads: floats, and I8 for int8-quantized weights (with a `_scale` tensor: src/export/quantize.ts). */
export type DType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I8';
/** Bytes per element of each dtype. */
export const ITEM: Readonly<Record<DType, number>> = { F32: 4, F16: 2, BF16: 2, F64: 8, I8: 1 };
const KNOWN_OTHER = new Set(['BOOL', 'U8', 'I16', 'U16', 'I32', 'U32', 'I64', 'U64', 'F8_E4M3', 'F8_E5M2']);
/** Dims past this cannot index a wasm32 memory; the format allows them, a ViT never has them. */
const MAX_DIM = 2 ** 31 - 1;
const MAX_RANK = 8;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
  source: ByteSource;
}

/** The header's JSON object, within `maxDepth`; an Error naming `file` otherwise. */
function parseHeader(text: string, file: string, maxDepth: number): Record<string, unknown> {
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`vit-wasm: ${file}: the header is not valid JSON (${(e as Error).message})`);
  }
  // a shape nested 100,000 deep parses, but would overflow the stack wherever it is printed
  checkJsonDepth(header, `${file}: the safetensors header`, maxDepth);
  if (!header || typeof header !== 'object' || Array.isArray(header))
    throw new Error(`vit-wasm: ${file}: the header is not a JSON object`);
  return header as Record<string, unknown>;
}

/**
 * Parses and validates the header of one safetensors file as strictly as the format's own reader:
 * the tensors' byte ranges must tile the data exactly (from 0, no holes, no overlaps, no trailing
 * bytes), each range must hold dtype size × shape product bytes, and __metadata__ must map strings
 * to strings.
 */
export async function readSafetensorsHeader(
  src: ByteSource,
  maxHeader = DEFAULT_LIMITS.maxHeaderBytes,
  maxDepth = DEFAULT_LIMITS.maxJsonDepth,
): Promise<Map<string, TensorInfo>> {
  const fail = (msg: string): never => {
    throw new Error(`vit-wasm: ${src.name}: ${msg}`);
  };
  if (src.size < 8) fail(`truncated: ${src.size} bytes, too short for the 8-byte header length`);
  const lenBytes = await src.read(0, 8);
  const n = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (n > maxHeader) throw overLimit(`${src.name}: a safetensors header of ${n} bytes`, 'maxHeaderBytes', maxHeader);
  if (n < 2) fail(`bad header length ${n} (the JSON header needs at least 2 bytes)`);
  if (8 + n > src.size)
    fail(`bad header length ${n}: the file has only ${src.size - 8} bytes after the length (truncated?)`);
  const header = parseHeader(new TextDecoder().decode(await src.read(8, n)), src.name, maxDepth);
  const dataStart = 8 + n,
    dataSize = src.size - dataStart;
  const out = new Map<string, TensorInfo>();
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (!v || typeof v !== 'object' || Array.isArray(v) || !Object.values(v).every((x) => typeof x === 'string'))
        fail('__metadata__ must be an object of strings');
      continue;
    }
    const bad = (msg: string) => fail(`tensor '${name}': ${msg}`);
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!info || typeof info !== 'object') bad('header entry is not an object');
    const dtype = info.dtype;
    if (typeof dtype !== 'string') bad('missing dtype');
    if (!((dtype as string) in ITEM)) {
      bad(
        KNOWN_OTHER.has(dtype as string)
          ? `dtype ${dtype} is not a type vit-wasm can load (F32, F16, BF16, F64; I8 with a _scale tensor)`
          : `unknown dtype '${dtype}'`,
      );
    }
    const shape = info.shape;
    if (shape === undefined) bad('missing shape');
    if (!Array.isArray(shape) || shape.length > MAX_RANK || !shape.every((d) => Number.isInteger(d) && d >= 0))
      bad(`bad shape ${JSON.stringify(shape)} (dims must be integers ≥ 0, at most ${MAX_RANK} of them)`);
    if ((shape as number[]).some((d) => d > MAX_DIM))
      bad(`shape ${JSON.stringify(shape)} has a dim over ${MAX_DIM}, more than a wasm32 memory can index`);
    const off = info.data_offsets;
    if (off === undefined) bad('missing data_offsets');
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      off[0] > off[1]
    ) {
      bad(`bad data_offsets ${JSON.stringify(off)}`);
    }
    const [b, e] = off as [number, number];
    if (e > dataSize)
      bad(`data_offsets [${b}, ${e}] run past the end of the data (${dataSize} bytes; truncated file?)`);
    const count = (shape as number[]).reduce((a, d) => a * d, 1);
    const want = count * ITEM[dtype as DType];
    if (e - b !== want)
      bad(`data_offsets [${b}, ${e}] hold ${e - b} bytes, but ${dtype} ${JSON.stringify(shape)} needs ${want}`);
    out.set(name, {
      name,
      dtype: dtype as DType,
      shape: shape as number[],
      begin: dataStart + b,
      end: dataStart + e,
      source: src,
    });
  }
  // The ranges must tile the data: a header a few bytes off (a truncated or shifted file) would
  // otherwise read every tensor from the wrong place and load garbage without an error.
  const sorted = [...out.values()].sort((x, y) => x.begin - y.begin || x.end - y.end);
  let at = dataStart;
  for (const t of sorted) {
    const rel = (x: number) => x - dataStart;
    if (t.begin < at)
      fail(
        `tensor '${t.name}' (data_offsets [${rel(t.begin)}, ${rel(t.end)}]) overlaps the tensor before it, which ends at ${rel(at)}`,
      );
    if (t.begin > at)
      fail(
        `tensor '${t.name}' starts at ${rel(t.begin)}, leaving ${t.begin - at} unaccounted bytes after ${rel(at)} (data_offsets must be contiguous from 0)`,
      );
    at = t.end;
  }
  if (at !== src.size)
    fail(
      `${src.size - at} trailing bytes after the last tensor (the tensors end at ${at - dataStart} of ${dataSize} data bytes)`,
    );
  return out;
}

const f16Table = (() => {
  // f16 → f32 for all 65536 bit patterns (subnormals, inf and NaN included): 256 KiB, built on first use.
  let t: Float32Array | null = null;
  return () => {
    if (t) return t;
    t = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) {
      const s = h & 0x8000 ? -1 : 1,
        e = (h >> 10) & 0x1f,
        m = h & 0x3ff;
      t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
    }
    return t;
  };
})();

/**
 * Reading tensors one after another without leaving each one's bytes behind as garbage (which
 * would double the peak memory of a load): one byte buffer and one f32 buffer, sized for the
 * largest read (the tensors read whole, and `partialBytes`, the most a partial read asks for),
 * reused for every read.
 */
export class TensorReader {
  private bytes: Uint8Array;
  /** For dtypes converted to f32 (an F32 tensor is a view of `bytes`): allocated on first use. */
  private floats: Float32Array | null = null;
  private readonly maxCount: number;

  constructor(tensors: Iterable<TensorInfo>, partialBytes = 0) {
    let maxBytes = partialBytes,
      maxCount = partialBytes;
    for (const t of tensors) {
      maxBytes = Math.max(maxBytes, t.end - t.begin);
      maxCount = Math.max(maxCount, (t.end - t.begin) / ITEM[t.dtype]);
    }
    this.bytes = new Uint8Array(Math.ceil(maxBytes / 8) * 8);
    this.maxCount = maxCount;
  }

  /** Elements first … first+count−1 of an I8 tensor, as they are (a view, valid until the next call). */
  async readI8(t: TensorInfo, first: number, count: number): Promise<Int8Array> {
    if (t.dtype !== 'I8' || count > this.bytes.length)
      throw new Error(`vit-wasm: internal: readI8 of a ${t.dtype} tensor or past the reader's buffer`);
    const bytes = await t.source.read(t.begin + first, count, this.bytes);
    return new Int8Array(bytes.buffer, bytes.byteOffset, count);
  }

  /**
   * Elements first … first+count−1 of the tensor (default: all) as f32 (I8 as its integer values,
   * unscaled). Valid until the next call.
   */
  async read(t: TensorInfo, first = 0, count = (t.end - t.begin) / ITEM[t.dtype]): Promise<Float32Array> {
    const item = ITEM[t.dtype];
    if (count * item > this.bytes.length || (t.dtype !== 'F32' && count > this.maxCount))
      throw new Error(`vit-wasm: internal: a read of ${count * item} bytes past the reader's buffer`);
    const bytes = await t.source.read(t.begin + first * item, count * item, this.bytes);
    const aligned = (k: number) => (bytes.byteOffset % k === 0 ? bytes : bytes.slice());
    if (t.dtype === 'F32') {
      const b = aligned(4);
      return new Float32Array(b.buffer, b.byteOffset, count);
    }
    this.floats ??= new Float32Array(this.maxCount);
    const out = this.floats.subarray(0, count);
    switch (t.dtype) {
      case 'F64': {
        const b = aligned(8);
        out.set(new Float64Array(b.buffer, b.byteOffset, count));
        return out;
      }
      case 'BF16': {
        const b = aligned(2),
          u16 = new Uint16Array(b.buffer, b.byteOffset, count),
          u32 = new Uint32Array(out.buffer, 0, count);
        for (let i = 0; i < count; i++) u32[i] = u16[i] << 16;
        return out;
      }
      case 'I8': {
        out.set(new Int8Array(bytes.buffer, bytes.byteOffset, count));
        return out;
      }
      case 'F16': {
        const b = aligned(2),
          u16 = new Uint16Array(b.buffer, b.byteOffset, count),
          tab = f16Table();
        for (let i = 0; i < count; i++) out[i] = tab[u16[i]];
        return out;
      }
    }
  }
}

/** A tensor to write: f32 `data`, or raw little-endian `bytes` of another dtype. */
export type TensorOut =
  | { name: string; shape: number[]; data: Float32Array }
  | { name: string; shape: number[]; dtype: DType; bytes: Uint8Array };

/** Serialises tensors as a safetensors file (header padded to 8 bytes, as the reference writer does). */
export function encodeSafetensors(tensors: TensorOut[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  const parts: Uint8Array[] = [];
  let off = 0;
  for (const t of tensors) {
    const dtype = 'data' in t ? 'F32' : t.dtype,
      bytes = 'data' in t ? new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.length * 4) : t.bytes;
    const count = t.shape.reduce((a, d) => a * d, 1);
    if (count * ITEM[dtype] !== bytes.length)
      throw new Error(
        `vit-wasm: tensor '${t.name}': shape [${t.shape}] does not match ${bytes.length} bytes of ${dtype}`,
      );
    header[t.name] = { dtype, shape: t.shape, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let p = 8 + h.length;
  for (const b of parts) {
    out.set(b, p);
    p += b.length;
  }
  return out;
}
