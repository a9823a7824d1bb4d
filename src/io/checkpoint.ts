/**
 * Checkpoints: recognise the family and naming scheme (src/io/families/), reconcile config.json
 * with the tensor shapes (src/io/model-config.ts), and copy every tensor once, converted to f32,
 * into its place in wasm memory (linear weights packed; with `int8`, the encoder's quantized).
 */
import { tokens } from '../nn/shape.js';
import type { TextTower } from '../nn/text.js';
import type { Weights } from '../nn/weights.js';
import { overLimit } from '../platform/limits.js';
import type { KernelExports } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import type { ViTConfig } from './config.js';
import { detectFamily, type Names, type Scheme, type SchemeSpec } from './families/index.js';
import { configure, networkConfig, resolveConfig } from './model-config.js';
import { OPEN_CLIP_CONFIG, openClipConfig } from './open-clip.js';
import type { PositionResize } from './positions.js';
import type { TensorInfo } from './safetensors.js';
import { type ModelFiles, readJson } from './source.js';
import { CheckpointTensors, openTensors } from './tensors.js';
import { loadTextTower, textLinearNames, textTowerConfig } from './text-tower.js';
import { WeightLoader } from './weight-loader.js';

export type { Scheme };

/**
 * Reads config.json and the weights, and copies every tensor once into `mem`.
 * Throws an Error naming the file and the tensor or field on any inconsistency.
 */
export async function loadCheckpoint(
  files: ModelFiles,
  mem: WasmMemory,
  /**
   * `int8`: the encoder's linear layers in int8 only, quantized (when not int8 already) by these
   * kernels. `imageSize`: run at this size, the position embeddings interpolated (src/io/positions.ts).
   * `inputSize`: the size the model's image processor gives (asked after config.json is read, so
   * that file's errors come first); a family whose library runs at its input's size (DINOv2) runs
   * at it when `imageSize` is not given.
   */
  opts: {
    int8?: KernelExports;
    imageSize?: [number, number];
    inputSize?: (config: Record<string, unknown>) => Promise<[number, number] | undefined>;
  } = {},
): Promise<{ config: ViTConfig; weights: Weights; scheme: Scheme; family: string; text?: TextTower }> {
  const full = await fullConfig(files),
    inputSize = await opts.inputSize?.(full);
  const { tensors, sources, file } = await openTensors(files);
  try {
    const { config, found, own, size } = resolveCheckpoint(
      files,
      full,
      tensors,
      file,
      opts.imageSize ?? null,
      inputSize,
    );
    const n = found.names;
    checkBiasBytes(config, n, files.limits.maxAttentionBiasBytes, size);
    // every linear weight is read in blocks of rows (weightRows); the rest whole
    const blockRead = new Set<string>([
      n.patchW,
      n.headW,
      ...(n.headDistW ? [n.headDistW] : []),
      ...(n.projection && !n.projectionTransposed ? [n.projection] : []),
    ]);
    const resize = found.spec.resize?.mode ?? 'bicubic';
    for (let i = 0; i < config.numLayers; i++) {
      const l = n.layer(i);
      for (const w of [...l.qkvW, l.projW, l.fc1W, l.fc2W]) blockRead.add(w);
    }
    // a CLIP or SigLIP text tower (Hugging Face's or open_clip's names): zero-shot classification and text embeddings
    const textConfig = textTowerConfig(found.family.name, full, tensors, `${files.where}/config.json`);
    // the two towers' embeddings must share one space: the image's (its projection, or SigLIP's pool) and the text's
    const imageDim = config.arch?.head === 'projection' ? config.projectionDim : config.hiddenSize;
    if (textConfig && textConfig.shape.projectionDim !== imageDim)
      throw new Error(
        `vit-wasm: ${files.where}/config.json: the text tower embeds into ${textConfig.shape.projectionDim} dimensions but the image tower into ${imageDim}: they must share one space`,
      );
    for (let i = 0; i < (textConfig?.shape.numLayers ?? 0); i++)
      for (const w of textLinearNames(textConfig!, i)) blockRead.add(w);
    const t = new CheckpointTensors(tensors, file, blockRead);
    const loader = new WeightLoader(t, mem, opts.int8);
    const weights = await loader.weights(config, n, own.imageSize, resize);
    const text = textConfig ? await loadTextTower(t, loader, textConfig) : undefined;
    t.checkAllUsed(n.unused, found.family.foreignTensors);
    return { config, weights, scheme: found.spec.scheme, family: found.family.name, text };
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
}

/**
 * config.json (or open_clip's) reconciled with the tensors' names and shapes: the family, its
 * names and arithmetic, the config at its own size (`own`) and at the size it runs (`config`).
 */
function resolveCheckpoint(
  files: ModelFiles,
  full: Record<string, unknown>,
  tensors: Map<string, TensorInfo>,
  file: string,
  imageSize: [number, number] | null,
  inputSize: [number, number] | undefined,
) {
  const detected = detectFamily(new Set(tensors.keys()), file, full),
    raw = networkConfig(full, detected.family);
  const found = configure(raw, detected, tensors);
  const own = {
    ...openClipNames(() => resolveConfig(raw, found, tensors, file, files.limits.maxLabels), full),
    raw: full,
  };
  const size = imageSize ?? (found.spec.resize?.automatic ? inputSize : undefined);
  const config = size ? atSize(own, size, found.spec) : own;
  return { config, found, own, size };
}

/** config.json, or where there is none open_clip's config, read as a CLIP config. */
async function fullConfig(files: ModelFiles): Promise<Record<string, unknown>> {
  return (await files.exists('config.json')) || !(await files.exists(OPEN_CLIP_CONFIG))
    ? readJson(files, 'config.json')
    : openClipConfig(await readJson(files, OPEN_CLIP_CONFIG), `${files.where}/${OPEN_CLIP_CONFIG}`);
}

/** What a checkpoint is, without reading its weights: for training (src/train/spec.ts). */
export interface CheckpointDescription {
  /** At the size asked for (else its own). */
  config: ViTConfig;
  /** At the checkpoint's own size. */
  own: ViTConfig;
  family: string;
  scheme: Scheme;
  names: Names;
  /** How its library resizes positions. */
  resize: PositionResize;
  /** Every tensor's shape. */
  shapes: Map<string, readonly number[]>;
  /** config.json as it is (a CLIPModel's whole, vision_config nested). */
  full: Record<string, unknown>;
  file: string;
}

/** Describes a checkpoint (config, family, names, shapes) at `imageSize` or its own size. */
export async function describeCheckpoint(
  files: ModelFiles,
  imageSize?: [number, number],
): Promise<CheckpointDescription> {
  const full = await fullConfig(files);
  const { tensors, sources, file } = await openTensors(files);
  try {
    const { config, found, own } = resolveCheckpoint(files, full, tensors, file, imageSize ?? null, undefined);
    return {
      config,
      own,
      family: found.family.name,
      scheme: found.spec.scheme,
      names: found.names,
      resize: found.spec.resize?.mode ?? 'bicubic',
      shapes: new Map([...tensors].map(([k, t]) => [k, t.shape])),
      full,
      file,
    };
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
}

/**
 * The config to run at `size`: refused by name where the checkpoint's library would not run it
 * (torchvision takes square images; Hugging Face resizes from a square grid) or where the size
 * does not fit the patches.
 */
function atSize(c: ViTConfig, size: [number, number], spec: SchemeSpec): ViTConfig {
  const [h, w] = size,
    p = c.patchSize;
  if (h === c.imageSize[0] && w === c.imageSize[1]) return c;
  // at most 128 patches a side: 16,384 tokens keep a forward's buffers within a wasm32 memory
  if (![h, w].every((v) => Number.isSafeInteger(v) && v >= p && v % p === 0 && v <= 128 * p))
    throw new Error(
      `vit-wasm: imageSize ${h}x${w}: each side must be a multiple of the patch size ${p}, from ${p} to ${128 * p} (128 patches)`,
    );
  if (!spec.resize)
    throw new Error(
      `vit-wasm: imageSize ${h}x${w}: running a ${spec.scheme}-named checkpoint at another size is not supported yet (its library interpolates positions its own way); it was trained at ${c.imageSize[0]}x${c.imageSize[1]}`,
    );
  if (spec.resize.squareImages && h !== w)
    throw new Error(
      `vit-wasm: imageSize ${h}x${w}: a ${spec.scheme}-named checkpoint runs square images only (its VisionTransformer takes one image_size)`,
    );
  if (spec.resize.squareGrid && c.imageSize[0] !== c.imageSize[1])
    throw new Error(
      `vit-wasm: imageSize ${h}x${w}: the checkpoint's positions are a ${c.imageSize[0] / p}x${c.imageSize[1] / p} grid; Hugging Face interpolates square grids only`,
    );
  return { ...c, imageSize: [h, w] };
}

/**
 * `resolve()`, its errors about an open_clip checkpoint's sizes saying which open_clip field a
 * Hugging Face name stands for (src/io/open-clip.ts reads open_clip_config.json into those names).
 */
function openClipNames<T>(resolve: () => T, full: Record<string, unknown>): T {
  try {
    return resolve();
  } catch (e) {
    if (!(e instanceof Error) || full.open_clip === undefined) throw e;
    e.message +=
      ' (read from open_clip_config.json: hidden_size is vision_cfg.width, num_hidden_layers its layers, num_attention_heads width / head_width, intermediate_size int(width · mlp_ratio), projection_dim model_cfg.embed_dim)';
    throw e;
  }
}

/** BEiT's relative position bias, H×T² floats per distinct table, within limits.maxAttentionBiasBytes before any is built. */
function checkBiasBytes(c: ViTConfig, n: Names, limit: number, size: [number, number] | undefined): void {
  if (c.arch?.attentionBias !== 'relative') return;
  const tables = new Set(Array.from({ length: c.numLayers }, (_, i) => n.layer(i).relBias)).size,
    { T } = tokens(c),
    bytes = tables * c.numHeads * T * T * 4;
  if (bytes > limit)
    throw overLimit(
      `the relative position bias at ${c.imageSize.join('x')}${size ? '' : " (the checkpoint's size)"} (${tables} table(s) × ${c.numHeads} heads × ${T}² tokens: ${bytes.toLocaleString('en-US')} bytes)`,
      'maxAttentionBiasBytes',
      limit,
    );
}
