/**
 * Checkpoints: recognise the naming scheme (Hugging Face ViTForImageClassification, timm
 * VisionTransformer, torchvision vit_b_16), reconcile config.json with the tensor shapes, and copy
 * every tensor once, converted to f32, into its place in wasm memory (linear weights packed).
 */

import type { Int8Linear, Layer, Norm, PackedLinear, Weights } from '../nn/weights.js';
import { overLimit } from '../platform/limits.js';
import type { KernelExports } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import {
  dequantizeRows,
  packedSize,
  packedSizeI8,
  packRows,
  packRowsI8,
  packRowsScaled,
  paddedSize,
} from '../runtime/pack.js';
import type { ViTConfig } from './config.js';
import { intField, sizeField } from './json.js';
import { detectScheme, type Names, type Scheme } from './names.js';
import { readSafetensorsHeader, type TensorInfo, TensorReader } from './safetensors.js';
import { type ByteSource, type ModelFiles, readJson } from './source.js';

export type { Scheme };

/** Bytes of a weight matrix read at a time (at least one row): no tensor-sized buffers while loading. */
const ROW_BLOCK_BYTES = 1 << 20;
const rowBytes = (t: TensorInfo) => (t.end - t.begin) / Math.max(1, t.shape[0] ?? 1);
/** Rows of `t` (of `rows`) read at a time; 1 for a tensor that is missing (its read fails, naming it). */
const rowBlock = (t: TensorInfo | undefined, rows: number) =>
  t ? Math.max(1, Math.min(rows, Math.floor(ROW_BLOCK_BYTES / Math.max(1, rowBytes(t))))) : 1;

/** Weights beyond this leave a 4 GiB wasm32 memory too little room for activations. */
const MAX_WEIGHT_BYTES = 3.75 * 2 ** 30;

/** Opens model.safetensors or the shards named by model.safetensors.index.json. */
async function openTensors(
  files: ModelFiles,
): Promise<{ tensors: Map<string, TensorInfo>; sources: ByteSource[]; file: string }> {
  if (await files.exists('model.safetensors')) {
    const src = await files.open('model.safetensors');
    try {
      return { tensors: await readSafetensorsHeader(src, files.limits.maxHeaderBytes), sources: [src], file: src.name };
    } catch (e) {
      await src.close();
      throw e;
    }
  }
  if (await files.exists('model.safetensors.index.json')) {
    const indexFile = 'model.safetensors.index.json';
    const index = await readJson(files, indexFile);
    const map = index.weight_map as Record<string, unknown> | undefined;
    if (!map || typeof map !== 'object') throw new Error(`vit-wasm: ${files.where}/${indexFile}: missing weight_map`);
    const sources: ByteSource[] = [];
    const tensors = new Map<string, TensorInfo>();
    try {
      const shards = new Map<string, Map<string, TensorInfo>>();
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
        shards.set(shard, await readSafetensorsHeader(src, files.limits.maxHeaderBytes));
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
  throw new Error(
    `vit-wasm: ${files.where}: no model.safetensors or model.safetensors.index.json (PyTorch .bin/.pth files are not read: convert them to safetensors)`,
  );
}

/** Reconciles config.json with the tensor shapes; every disagreement is an error naming both. */
function resolveConfig(
  raw: Record<string, unknown>,
  scheme: Scheme,
  n: Names,
  t: Map<string, TensorInfo>,
  file: string,
  maxLabels: number,
): ViTConfig {
  const CF = 'config.json';
  const need = (name: string): TensorInfo => {
    const x = t.get(name);
    if (!x) throw new Error(`vit-wasm: ${file}: missing tensor '${name}'`);
    return x;
  };
  const patch = need(n.patchW),
    pos = need(n.pos),
    head = need(n.headW),
    fc1 = need(n.layer(0).fc1W);
  if (patch.shape.length !== 4 || patch.shape[2] !== patch.shape[3])
    throw new Error(
      `vit-wasm: ${file}: tensor '${n.patchW}' has shape [${patch.shape}], expected [hidden, channels, patch, patch]`,
    );
  const [D, C, p] = patch.shape;
  const T = pos.shape[pos.shape.length - 2];
  let L = 0,
    deepest = '';
  for (const name of t.keys()) {
    const m = n.layerIndex.exec(name);
    if (m && Number(m[1]) + 1 > L) {
      L = Number(m[1]) + 1;
      deepest = name;
    }
  }
  if (L > 100_000) throw new Error(`vit-wasm: ${file}: tensor '${deepest}' names layer ${L - 1}: too many layers`);
  for (let i = 0; i < L; i++) {
    const ln = n.layer(i).ln1[0];
    if (!t.has(ln))
      throw new Error(
        `vit-wasm: ${file}: missing tensor '${ln}' of layer ${i}: the layers are counted up to ${L - 1} from tensor '${deepest}'`,
      );
  }
  // Every size must be ≥ 1 before anything is built from it: a 0-byte tensor of shape
  // [4294967295, 0] is valid safetensors, and 4 billion labels would exhaust the heap.
  const dims: [string, number, string][] = [
    ['hidden_size', D, n.patchW],
    ['num_channels', C, n.patchW],
    ['patch_size', p, n.patchW],
    ['intermediate_size', fc1.shape[0], n.layer(0).fc1W],
    ['num_labels', head.shape[0], n.headW],
    ['position embeddings', T, n.pos],
  ];
  for (const [what, v, tensor] of dims)
    if (!(v >= 1))
      throw new Error(`vit-wasm: ${file}: tensor '${tensor}' has shape [${t.get(tensor)!.shape}], giving ${what} ${v}`);
  if (head.shape.length !== 2 || head.shape[1] !== D)
    throw new Error(`vit-wasm: ${file}: tensor '${n.headW}' has shape [${head.shape}], expected [num_labels, ${D}]`);
  if (head.shape[0] > maxLabels)
    throw overLimit(
      `${file}: tensor '${n.headW}' has ${head.shape[0].toLocaleString('en-US')} classes, which`,
      'maxLabels',
      maxLabels,
    );
  const fromWeights = {
    hidden_size: D,
    num_channels: C,
    patch_size: p,
    intermediate_size: fc1.shape[0],
    num_labels: head.shape[0],
    num_hidden_layers: L,
  };
  const agree = (key: keyof typeof fromWeights, tensor: string, alias?: string) => {
    const v = intField(raw, key, CF) ?? (alias ? intField(raw, alias, CF) : undefined);
    if (v !== undefined && v !== fromWeights[key]) {
      throw new Error(
        `vit-wasm: ${CF} says ${key}=${v}, but ${file} tensor '${tensor}' has shape [${t.get(tensor)!.shape}] (${key}=${fromWeights[key]})`,
      );
    }
  };
  agree('hidden_size', n.patchW);
  agree('num_channels', n.patchW);
  agree('patch_size', n.patchW);
  agree('intermediate_size', n.layer(0).fc1W);
  agree('num_hidden_layers', n.layer(L - 1).ln1[0]);
  agree('num_labels', n.headW, 'num_classes');

  const heads = intField(raw, 'num_attention_heads', CF) ?? intField(raw, 'num_heads', CF);
  if (heads === undefined)
    throw new Error(`vit-wasm: ${CF}: num_attention_heads is missing (it cannot be read off the weights)`);
  if (D % heads !== 0)
    throw new Error(`vit-wasm: ${CF}: hidden_size ${D} is not divisible by num_attention_heads ${heads}`);

  const side = Math.round(Math.sqrt(T - 1));
  const imageSize =
    sizeField(raw.image_size, 'image_size', CF) ??
    (side * side === T - 1 ? ([side * p, side * p] as [number, number]) : undefined);
  if (!imageSize) throw new Error(`vit-wasm: ${CF}: image_size is missing and ${T - 1} patches is not a square grid`);
  if (imageSize[0] % p || imageSize[1] % p)
    throw new Error(`vit-wasm: ${CF}: image_size ${imageSize[0]}x${imageSize[1]} is not divisible by patch_size ${p}`);
  const np = (imageSize[0] / p) * (imageSize[1] / p);
  if (np + 1 !== T)
    throw new Error(
      `vit-wasm: ${CF}: image_size ${imageSize[0]}x${imageSize[1]} with patch_size ${p} gives ${np} patches + cls = ${np + 1} tokens, but ${file} tensor '${n.pos}' has shape [${pos.shape}] (${T} tokens)`,
    );

  const act = raw.hidden_act ?? 'gelu';
  if (act !== 'gelu' && act !== 'gelu_python')
    throw new Error(
      `vit-wasm: ${CF}: hidden_act ${JSON.stringify(act)} is not supported; vit-wasm implements the exact erf GELU ('gelu')`,
    );
  const eps = raw.layer_norm_eps ?? (scheme === 'hf' ? 1e-12 : 1e-6);
  // > 0: with eps 0 a constant row (a blank image patch) divides by zero
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps))
    throw new Error(
      `vit-wasm: ${CF}: layer_norm_eps must be a finite number > 0, got ${typeof eps === 'number' ? eps : JSON.stringify(eps)}`,
    );
  const hasQkvBias = n.layer(0).qkvB.every((b) => t.has(b));
  const qkvBias = raw.qkv_bias ?? hasQkvBias;
  if (typeof qkvBias !== 'boolean') throw new Error(`vit-wasm: ${CF}: qkv_bias must be true or false`);
  if (qkvBias && !hasQkvBias)
    throw new Error(
      `vit-wasm: ${CF} says qkv_bias=true, but ${file} has no tensor '${n.layer(0).qkvB.find((b) => !t.has(b))}'`,
    );

  const labels = Array.from({ length: head.shape[0] }, (_, i) => `LABEL_${i}`);
  const id2label = raw.id2label;
  if (id2label !== undefined && id2label !== null) {
    if (typeof id2label !== 'object' || Array.isArray(id2label))
      throw new Error(`vit-wasm: ${CF}: id2label must be an object {"0": "label", …}`);
    const entries = Object.entries(id2label as Record<string, unknown>);
    if (entries.length !== head.shape[0])
      throw new Error(
        `vit-wasm: ${CF}: id2label has ${entries.length} labels, but ${file} tensor '${n.headW}' has ${head.shape[0]} outputs`,
      );
    for (const [k, v] of entries) {
      // canonical decimal keys only: "00", " 0" or "0x0" would each land on class 0 and overwrite it
      const i = /^(0|[1-9][0-9]*)$/.test(k) ? Number(k) : Number.NaN;
      if (!Number.isInteger(i) || i < 0 || i >= head.shape[0])
        throw new Error(
          `vit-wasm: ${CF}: id2label key ${JSON.stringify(k)} is not a class index 0…${head.shape[0] - 1}`,
        );
      labels[i] = String(v);
    }
  }
  return {
    hiddenSize: D,
    numLayers: L,
    numHeads: heads,
    intermediateSize: fc1.shape[0],
    imageSize,
    patchSize: p,
    numChannels: C,
    numLabels: head.shape[0],
    layerNormEps: eps,
    qkvBias,
    labels,
    raw,
  };
}

/**
 * Reads config.json and the weights, and copies every tensor once into `mem`.
 * Throws an Error naming the file and the tensor or field on any inconsistency.
 */
export async function loadCheckpoint(
  files: ModelFiles,
  mem: WasmMemory,
  /** `int8`: the encoder's linear layers in int8 only, quantized (when not int8 already) by these kernels. */
  opts: { int8?: KernelExports } = {},
): Promise<{ config: ViTConfig; weights: Weights; scheme: Scheme }> {
  const raw = await readJson(files, 'config.json');
  const { tensors, sources, file } = await openTensors(files);
  try {
    const { scheme, names: n } = detectScheme(new Set(tensors.keys()), file);
    const cfg = resolveConfig(raw, scheme, n, tensors, file, files.limits.maxLabels);
    const { hiddenSize: D, intermediateSize: M, numLabels: NL, numChannels: C, patchSize: p } = cfg;
    const T = (cfg.imageSize[0] / p) * (cfg.imageSize[1] / p) + 1;
    // f32 in wasm memory, checked before the first allocation rather than by failing to grow midway
    let floats = 0;
    for (const x of tensors.values()) floats += x.shape.reduce((a, d) => a * d, 1);
    if (floats * 4 > MAX_WEIGHT_BYTES)
      throw new Error(
        `vit-wasm: ${file}: the weights take ${((floats * 4) / 2 ** 30).toFixed(2)} GiB as f32, more than fits in a wasm32 memory (4 GiB, with room for activations)`,
      );
    const used = new Set<string>();
    // every linear weight is read in blocks of rows (weightRows); the rest whole
    const blockRead = new Set<string>([n.patchW, n.headW]);
    for (let i = 0; i < cfg.numLayers; i++) {
      const l = n.layer(i);
      for (const w of [...l.qkvW, l.projW, l.fc1W, l.fc2W]) blockRead.add(w);
    }
    const all = [...tensors.values()];
    const reader = new TensorReader(
      all.filter((t) => !blockRead.has(t.name)),
      Math.max(0, ...all.filter((t) => blockRead.has(t.name)).map((t) => rowBlock(t, t.shape[0] ?? 1) * rowBytes(t))),
    );
    // Reads tensor `name` (rows r0 … r0+n−1 of it, by default all) and checks its element shape: its
    // f32 data, or for an I8 tensor its integers (as floats; with `raw`, as they are) and its scales
    // (one per row), valid until the next read.
    async function read(
      name: string,
      shape: number[],
      r0?: number,
      n?: number,
    ): Promise<{ data: Float32Array; scale: Float32Array | null }>;
    async function read(
      name: string,
      shape: number[],
      r0: number,
      n: number,
      raw: true,
    ): Promise<{ data: Float32Array | Int8Array; scale: Float32Array | null }>;
    async function read(
      name: string,
      shape: number[],
      r0 = 0,
      n = shape[0] ?? 1,
      raw = false,
    ): Promise<{ data: Float32Array | Int8Array; scale: Float32Array | null }> {
      const info = tensors.get(name);
      if (!info) throw new Error(`vit-wasm: ${file}: missing tensor '${name}' (expected shape [${shape}])`);
      const squeeze = (s: number[]) => s.filter((d, i) => !(d === 1 && i < s.length - shape.length));
      if (squeeze(info.shape).join() !== shape.join()) {
        throw new Error(
          `vit-wasm: ${file}: tensor '${name}' has shape [${info.shape}], expected [${shape}] from config.json`,
        );
      }
      used.add(name);
      const perRow = shape.slice(1).reduce((a, d) => a * d, 1);
      // int8 weights (src/export/quantize.ts): one f32 scale per row, read first (the reader reuses its buffers)
      let scale: Float32Array | null = null;
      if (info.dtype === 'I8') {
        const sName = `${name}_scale`,
          rows = info.shape[0] ?? 1,
          s = tensors.get(sName);
        if (!s)
          throw new Error(`vit-wasm: ${file}: tensor '${name}' is I8 but has no '${sName}' tensor of ${rows} scales`);
        if (s.dtype === 'I8' || s.shape.length !== 1 || s.shape[0] !== rows)
          throw new Error(
            `vit-wasm: ${file}: tensor '${sName}' must hold ${rows} float scales (one per row of '${name}'), has ${s.dtype} [${s.shape}]`,
          );
        used.add(sName);
        // one scale per row of the I8 tensor as stored: [1, …] (a leading 1 the shape check
        // squeezes) has one for all of its rows
        scale =
          rows === (shape[0] ?? 1)
            ? (await reader.read(s, r0, n)).slice()
            : new Float32Array(n).fill((await reader.read(s, 0, 1))[0]);
      }
      const data =
        raw && info.dtype === 'I8'
          ? await reader.readI8(info, r0 * perRow, n * perRow)
          : await reader.read(info, r0 * perRow, n * perRow);
      // refused here, by name: one NaN weight makes every logit NaN
      const finite = (what: string, x: Float32Array, first: number) => {
        for (let i = 0; i < x.length; i++)
          if (!Number.isFinite(x[i]))
            throw new Error(
              `vit-wasm: ${file}: tensor '${what}' holds ${x[i]} at element ${first + i}: weights must be finite (a corrupt or diverged checkpoint)`,
            );
      };
      if (scale) finite(`${name}_scale`, scale, r0);
      else finite(name, data as Float32Array, r0 * perRow);
      return { data, scale };
    }
    // Reads tensor `name` as f32 (I8 dequantized) and hands it to `put`.
    const take = async (name: string, shape: number[], put: (data: Float32Array) => void) => {
      const { data, scale } = await read(name, shape);
      put(scale ? dequantizeRows(data, scale, data.length / scale.length, data) : data);
    };
    const vector = async (name: string, len: number) => {
      const ptr = mem.alloc(len);
      await take(name, [len], (d) => mem.f32(ptr, len).set(d));
      return ptr;
    };
    // Calls `each` on successive blocks of rows of weight `name` (about ROW_BLOCK_BYTES each), so a
    // load holds no tensor-sized buffer on the JS side: f32 rows, or an I8 tensor's integer rows as
    // they are (Int8Array) with their scales.
    const weightRows = async (
      name: string,
      shape: number[],
      each: (data: Float32Array | Int8Array, scale: Float32Array | null, r0: number, n: number) => void,
    ) => {
      const rows = shape[0],
        block = rowBlock(tensors.get(name), rows);
      for (let r0 = 0; r0 < rows; r0 += block) {
        const n = Math.min(block, rows - r0),
          { data, scale } = await read(name, shape, r0, n, true);
        each(data, scale, r0, n);
      }
    };
    // A linear layer whose W is stacked from `ws` (each [N/ws.length, K]), e.g. HF's query|key|value.
    const linear = async (
      ws: string[],
      bs: string[] | null,
      N: number,
      K: number,
      wShape?: number[],
    ): Promise<PackedLinear> => {
      const w = mem.alloc(packedSize(N, K)),
        b = mem.alloc(paddedSize(N));
      const part = N / ws.length;
      for (let i = 0; i < ws.length; i++)
        await weightRows(ws[i], wShape ?? [part, K], (d, scale, r0, n) => {
          const dst = mem.f32(w, packedSize(N, K));
          if (scale) packRowsScaled(dst, d, scale, i * part + r0, n, K);
          else packRows(dst, d as Float32Array, i * part + r0, n, K);
        });
      if (bs)
        for (let i = 0; i < bs.length; i++) await take(bs[i], [part], (d) => mem.f32(b + i * part * 4, part).set(d));
      return { kind: 'packed', w, b, N, K };
    };
    // With `int8`, the encoder's linear layers hold int8 weights only (no f32 copy: a quarter of the
    // memory): an I8 tensor's own integers and scales, or f32/f16/bf16 quantized here per channel,
    // symmetric, as `vit-wasm quantize` writes them, so its files give back the same integers.
    const encoderLinear = async (
      ws: string[],
      bs: string[] | null,
      N: number,
      K: number,
    ): Promise<PackedLinear | Int8Linear> => {
      const k = opts.int8;
      if (!k) return linear(ws, bs, N, K);
      const part = N / ws.length,
        { bytes, Kp } = packedSizeI8(N, K),
        pad = paddedSize(N),
        wq = mem.alloc(bytes / 4),
        wsum = mem.alloc(pad),
        sw = mem.alloc(pad),
        b = mem.alloc(pad);
      for (let i = 0; i < ws.length; i++)
        await weightRows(ws[i], [part, K], (d, scale, r0, n) => {
          const row0 = i * part + r0;
          if (scale) {
            // an I8 tensor (rows as they are): its own integers and scales, packed
            packRowsI8(
              new Int8Array(mem.memory.buffer, wq, bytes),
              new Int32Array(mem.memory.buffer, wsum, pad),
              d,
              row0,
              n,
              K,
            );
            mem.f32(sw + row0 * 4, n).set(scale);
            return;
          }
          // f32 rows: quantized and packed in wasm (quantizeRows' rule) from a scratch block above
          // the weights
          mem.scratch(n * K, (tmp) => {
            mem.f32(tmp, n * K).set(d as Float32Array);
            k.quantize_pack_weights_i8(tmp, n, K, wq, Kp, wsum, sw, row0);
          });
        });
      if (bs)
        for (let i = 0; i < bs.length; i++) await take(bs[i], [part], (d) => mem.f32(b + i * part * 4, part).set(d));
      return { kind: 'int8', wq, wsum, sw, Kp, b, N, K };
    };
    const norm = async ([g, b]: [string, string]): Promise<Norm> => ({ g: await vector(g, D), b: await vector(b, D) });

    const patch = await linear([n.patchW], [n.patchB], D, C * p * p, [D, C, p, p]);
    const cls = await vector(n.cls, D);
    const pos = mem.alloc(T * D);
    await take(n.pos, [T, D], (d) => mem.f32(pos, T * D).set(d));
    const layers: Layer[] = [];
    for (let i = 0; i < cfg.numLayers; i++) {
      const l = n.layer(i);
      layers.push({
        ln1: await norm(l.ln1),
        qkv: await encoderLinear(l.qkvW, cfg.qkvBias ? l.qkvB : null, 3 * D, D),
        proj: await encoderLinear([l.projW], [l.projB], D, D),
        ln2: await norm(l.ln2),
        fc1: await encoderLinear([l.fc1W], [l.fc1B], M, D),
        fc2: await encoderLinear([l.fc2W], [l.fc2B], D, M),
      });
    }
    const weights: Weights = {
      patch,
      cls,
      pos,
      layers,
      norm: await norm([n.normG, n.normB]),
      head: await linear([n.headW], [n.headB], NL, D),
    };
    const extra = [...tensors.keys()].filter((k) => !used.has(k) && !n.unused.test(k));
    if (extra.length) {
      throw new Error(
        `vit-wasm: ${file}: unexpected tensor(s) ${extra
          .slice(0, 5)
          .map((k) => `'${k}'`)
          .join(
            ', ',
          )}${extra.length > 5 ? ', …' : ''}: this checkpoint has parts a plain ViT does not (or config.json disagrees with it, e.g. qkv_bias)`,
      );
    }
    return { config: cfg, weights, scheme };
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
}
