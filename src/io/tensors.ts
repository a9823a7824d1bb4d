/**
 * A checkpoint's tensors as the loader reads them: model.safetensors or its shards opened, each
 * tensor read once (weight matrices in blocks of rows, so no tensor-sized buffer is held in JS),
 * checked for its shape and for finite values, and every tensor accounted for at the end.
 */
import { dequantizeRows } from '../runtime/pack.js';
import { OPEN_CLIP_PYTORCH_WEIGHTS, OPEN_CLIP_WEIGHTS } from './open-clip.js';
import { readPytorchTensors } from './pytorch.js';
import { readSafetensorsHeader, type TensorInfo, TensorReader } from './safetensors.js';
import { type ByteSource, type ModelFiles, readJson } from './source.js';

/** Bytes of a weight matrix read at a time (at least one row): no tensor-sized buffers while loading. */
const ROW_BLOCK_BYTES = 1 << 20;
const rowBytes = (t: TensorInfo) => (t.end - t.begin) / Math.max(1, t.shape[0] ?? 1);
/** Rows of `t` (of `rows`) read at a time; 1 for a tensor that is missing (its read fails, naming it). */
const rowBlock = (t: TensorInfo | undefined, rows: number) =>
  t ? Math.max(1, Math.min(rows, Math.floor(ROW_BLOCK_BYTES / Math.max(1, rowBytes(t))))) : 1;

/** Weights beyond this leave a 4 GiB wasm32 memory too little room for activations. */
const MAX_WEIGHT_BYTES = 3.75 * 2 ** 30;

type Tensors = Map<string, TensorInfo>;
type HeaderReader = (src: ByteSource) => Promise<Tensors>;

/**
 * The weights files a model directory may hold, in the order they are looked for: Hugging Face's
 * safetensors (one file, or shards named by an index), open_clip's, then PyTorch's (torch.save's
 * zip: src/io/pytorch.ts) under the same names.
 */
const WEIGHTS_FILES: readonly [string, 'file' | 'index', 'safetensors' | 'pytorch'][] = [
  ['model.safetensors', 'file', 'safetensors'],
  ['model.safetensors.index.json', 'index', 'safetensors'],
  [OPEN_CLIP_WEIGHTS, 'file', 'safetensors'],
  ['pytorch_model.bin', 'file', 'pytorch'],
  ['pytorch_model.bin.index.json', 'index', 'pytorch'],
  [OPEN_CLIP_PYTORCH_WEIGHTS, 'file', 'pytorch'],
];

/** Opens the model's weights: the first of WEIGHTS_FILES the directory holds. */
export async function openTensors(
  files: ModelFiles,
): Promise<{ tensors: Tensors; sources: ByteSource[]; file: string }> {
  const { maxHeaderBytes, maxJsonDepth } = files.limits;
  const readers: Record<'safetensors' | 'pytorch', HeaderReader> = {
    safetensors: (src) => readSafetensorsHeader(src, maxHeaderBytes, maxJsonDepth),
    pytorch: (src) => readPytorchTensors(src, maxHeaderBytes),
  };
  for (const [name, kind, format] of WEIGHTS_FILES) {
    if (!(await files.exists(name))) continue;
    if (kind === 'index') return sharded(files, name, readers[format]);
    const src = await files.open(name);
    try {
      return { tensors: await readers[format](src), sources: [src], file: src.name };
    } catch (e) {
      await src.close();
      throw e;
    }
  }
  throw new Error(
    `vit-wasm: ${files.where}: no weights file (looked for ${WEIGHTS_FILES.map(([f]) => f).join(', ')}; name a .pth or .pt file pytorch_model.bin)`,
  );
}

/** The tensors of the shards an index file (weight_map: tensor → shard file) names. */
async function sharded(
  files: ModelFiles,
  indexFile: string,
  read: HeaderReader,
): Promise<{ tensors: Tensors; sources: ByteSource[]; file: string }> {
  const index = await readJson(files, indexFile);
  const map = index.weight_map as Record<string, unknown> | undefined;
  if (!map || typeof map !== 'object') throw new Error(`vit-wasm: ${files.where}/${indexFile}: missing weight_map`);
  const sources: ByteSource[] = [];
  const tensors: Tensors = new Map();
  try {
    const shards = new Map<string, Tensors>();
    for (const shard of new Set(Object.values(map))) {
      if (
        typeof shard !== 'string' ||
        !shard ||
        shard === '.' ||
        shard === '..' ||
        shard.includes('/') ||
        shard.includes('\\')
      )
        throw new Error(`vit-wasm: ${indexFile}: bad shard name ${JSON.stringify(shard)}`);
      const src = await files.open(shard);
      sources.push(src);
      shards.set(shard, await read(src));
    }
    for (const [name, shard] of Object.entries(map)) {
      const t = shards.get(shard as string)!.get(name);
      if (!t) throw new Error(`vit-wasm: ${indexFile} puts tensor '${name}' in ${shard}, which does not contain it`);
      tensors.set(name, t);
    }
  } catch (e) {
    await Promise.all(sources.map((s) => s.close()));
    throw e;
  }
  return { tensors, sources, file: indexFile };
}

/** The tensors of one checkpoint, read through one reader; remembers which were read. */
export class CheckpointTensors {
  private readonly used = new Set<string>();
  private readonly reader: TensorReader;

  /** `blockRead`: the weight matrices, read in blocks of rows by {@link weightRows}; the rest are read whole. */
  constructor(
    readonly tensors: Map<string, TensorInfo>,
    readonly file: string,
    blockRead: Set<string>,
  ) {
    // f32 in wasm memory, checked before the first allocation rather than by failing to grow midway
    let floats = 0;
    for (const x of tensors.values()) floats += x.shape.reduce((a, d) => a * d, 1);
    if (floats * 4 > MAX_WEIGHT_BYTES)
      throw new Error(
        `vit-wasm: ${file}: the weights take ${((floats * 4) / 2 ** 30).toFixed(2)} GiB as f32, more than fits in a wasm32 memory (4 GiB, with room for activations)`,
      );
    const all = [...tensors.values()];
    this.reader = new TensorReader(
      all.filter((t) => !blockRead.has(t.name)),
      Math.max(0, ...all.filter((t) => blockRead.has(t.name)).map((t) => rowBlock(t, t.shape[0] ?? 1) * rowBytes(t))),
    );
  }

  // Reads tensor `name` (rows r0 … r0+n−1 of it, by default all) and checks its element shape: its
  // f32 data, or for an I8 tensor its integers (as floats; with `raw`, as they are) and its scales
  // (one per row), valid until the next read.
  async read(
    name: string,
    shape: number[],
    r0?: number,
    n?: number,
  ): Promise<{ data: Float32Array; scale: Float32Array | null }>;
  async read(
    name: string,
    shape: number[],
    r0: number,
    n: number,
    raw: true,
  ): Promise<{ data: Float32Array | Int8Array; scale: Float32Array | null }>;
  async read(
    name: string,
    shape: number[],
    r0 = 0,
    n = shape[0] ?? 1,
    raw = false,
  ): Promise<{ data: Float32Array | Int8Array; scale: Float32Array | null }> {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`vit-wasm: ${this.file}: missing tensor '${name}' (expected shape [${shape}])`);
    const squeeze = (s: number[]) => s.filter((d, i) => !(d === 1 && i < s.length - shape.length));
    if (squeeze(info.shape).join() !== shape.join()) {
      throw new Error(
        `vit-wasm: ${this.file}: tensor '${name}' has shape [${info.shape}], expected [${shape}] from config.json`,
      );
    }
    this.used.add(name);
    const perRow = shape.slice(1).reduce((a, d) => a * d, 1);
    // int8 weights (src/export/quantize.ts): one f32 scale per row, read first (the reader reuses its buffers)
    let scale: Float32Array | null = null;
    if (info.dtype === 'I8') {
      const sName = `${name}_scale`,
        rows = info.shape[0] ?? 1,
        s = this.tensors.get(sName);
      if (!s)
        throw new Error(
          `vit-wasm: ${this.file}: tensor '${name}' is I8 but has no '${sName}' tensor of ${rows} scales`,
        );
      if (s.dtype === 'I8' || s.shape.length !== 1 || s.shape[0] !== rows)
        throw new Error(
          `vit-wasm: ${this.file}: tensor '${sName}' must hold ${rows} float scales (one per row of '${name}'), has ${s.dtype} [${s.shape}]`,
        );
      this.used.add(sName);
      // one scale per row of the I8 tensor as stored: [1, …] (a leading 1 the shape check
      // squeezes) has one for all of its rows
      scale =
        rows === (shape[0] ?? 1)
          ? (await this.reader.read(s, r0, n)).slice()
          : new Float32Array(n).fill((await this.reader.read(s, 0, 1))[0]);
    }
    const data =
      raw && info.dtype === 'I8'
        ? await this.reader.readI8(info, r0 * perRow, n * perRow)
        : await this.reader.read(info, r0 * perRow, n * perRow);
    // refused here, by name: one NaN weight makes every logit NaN
    const finite = (what: string, x: Float32Array, first: number) => {
      for (let i = 0; i < x.length; i++)
        if (!Number.isFinite(x[i]))
          throw new Error(
            `vit-wasm: ${this.file}: tensor '${what}' holds ${x[i]} at element ${first + i}: weights must be finite (a corrupt or diverged checkpoint)`,
          );
    };
    if (scale) finite(`${name}_scale`, scale, r0);
    else finite(name, data as Float32Array, r0 * perRow);
    return { data, scale };
  }

  /** Reads tensor `name` as f32 (I8 dequantized) and hands it to `put`. */
  async take(name: string, shape: number[], put: (data: Float32Array) => void): Promise<void> {
    const { data, scale } = await this.read(name, shape);
    put(scale ? dequantizeRows(data, scale, data.length / scale.length, data) : data);
  }

  // Calls `each` on successive blocks of rows of weight `name` (about ROW_BLOCK_BYTES each), so a
  // load holds no tensor-sized buffer on the JS side: f32 rows, or an I8 tensor's integer rows as
  // they are (Int8Array) with their scales.
  async weightRows(
    name: string,
    shape: number[],
    each: (data: Float32Array | Int8Array, scale: Float32Array | null, r0: number, n: number) => void,
  ): Promise<void> {
    const rows = shape[0],
      block = rowBlock(this.tensors.get(name), rows);
    for (let r0 = 0; r0 < rows; r0 += block) {
      const n = Math.min(block, rows - r0),
        { data, scale } = await this.read(name, shape, r0, n, true);
      each(data, scale, r0, n);
    }
  }

  /**
   * Refuses a checkpoint with tensors nothing read (and `unused` does not allow): parts this model
   * does not have. Tensors `foreign` knows are named with the feature they belong to.
   */
  checkAllUsed(unused: RegExp, foreign: readonly [RegExp, string][] = []): void {
    const extra = [...this.tensors.keys()].filter((k) => !this.used.has(k) && !unused.test(k));
    if (!extra.length) return;
    const list = `${extra
      .slice(0, 5)
      .map((k) => `'${k}'`)
      .join(', ')}${extra.length > 5 ? ', …' : ''}`;
    const features = [...new Set(extra.flatMap((k) => foreign.filter(([re]) => re.test(k)).map(([, f]) => f)))];
    throw new Error(
      features.length
        ? `vit-wasm: ${this.file}: unexpected tensor(s) ${list}: ${features.join('; ')}: not supported yet`
        : `vit-wasm: ${this.file}: unexpected tensor(s) ${list}: this checkpoint has parts a plain ViT does not (or config.json disagrees with it, e.g. qkv_bias)`,
    );
  }
}
