/**
 * Model and preprocessing configuration, from HF's config.json / preprocessor_config.json, checked
 * against what the weights say. Field names in messages are the JSON names, so users can find them.
 */

import type { ViTShape } from '../nn/shape.js';
import { PILLOW_FILTERS, type ResampleFilter, resampleFilter } from './image/pillow.js';
import { sizeField } from './json.js';

export type { ViTShape };

/** A loaded model's configuration: its shape, checked against the checkpoint's tensor shapes, and its labels. */
export interface ViTConfig extends ViTShape {
  qkvBias: boolean;
  /** Label of each class index, from config.json id2label (LABEL_i when absent). */
  labels: string[];
  /** The config.json object as read. */
  raw: Record<string, unknown>;
}

/** An HF image processor's settings (ViT's, DeiT's, BiT's for DINOv2, CLIP's). */
export interface PreprocessConfig {
  doResize: boolean;
  /** The [height, width] images come out at (after the resize, and the crop when there is one): the model's input. */
  size: [number, number];
  /**
   * How images are resized before any crop: to [height, width] exactly, or keeping the aspect
   * ratio with the shorter side `shortestEdge` (CLIP's and BiT's `size: {shortest_edge}`).
   * Absent: to `size`.
   */
  resizeTo?: { size: [number, number] } | { shortestEdge: number };
  /** A center crop to `size` after the resize (do_center_crop with crop_size), zero-padded where larger. */
  crop?: boolean;
  /** Pillow's filter, by name (preprocessor_config.json gives Pillow's number: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming). */
  resample: ResampleFilter;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
  /**
   * `torchvision`: the steps as torchvision's transforms compute them (open_clip): CenterCrop's
   * offsets int(round((H − h)/2)) with halves to even, ToTensor's v / 255 in f32. Absent: as
   * Hugging Face's processors do (offsets ⌊(H − h)/2⌋, v · rescale_factor in f64, then f32).
   */
  transforms?: 'torchvision';
  /** Why images cannot be preprocessed for this model (a processor vit-wasm does not compute): the model still runs on pixels. */
  refuse?: string;
}

function numberList(v: unknown, key: string, file: string, n: number): number[] | undefined {
  if (v === undefined || v === null) return undefined;
  const arr = typeof v === 'number' ? Array(n).fill(v) : v;
  if (!Array.isArray(arr) || !arr.every((x) => typeof x === 'number' && Number.isFinite(x))) {
    throw new Error(`vit-wasm: ${file}: ${key} must be a number or a list of numbers, got ${JSON.stringify(v)}`);
  }
  if (arr.length !== n)
    throw new Error(`vit-wasm: ${file}: ${key} has ${arr.length} values but the model has ${n} channel(s)`);
  return arr;
}

/**
 * Image processor fields that change the pixels and are not computed, with what they ask for: any
 * value but absent, null or false is refused by name (a silently ignored one would give other
 * pixels than the checkpoint's pipeline).
 */
const UNCOMPUTED_FIELDS: Readonly<Record<string, string>> = {
  do_pad: 'padding',
  pad_size: 'padding',
  size_divisor: 'sizes rounded to a divisor',
  size_divisibility: 'sizes rounded to a divisor',
  crop_pct: "ConvNext's resize to size / crop_pct",
  do_flip_channel_order: 'BGR channel order',
  rescale_offset: 'rescaling to [-1, 1] by an offset',
};

/** Image processors that center-crop unless do_center_crop says otherwise (transformers' defaults). */
const CROPS_BY_DEFAULT = new Set([
  'CLIPImageProcessor',
  'BitImageProcessor',
  'DeiTImageProcessor',
  'ConvNextImageProcessor',
]);

/**
 * The processor's geometry: `size` as {height, width}, a side, [h, w] or {shortest_edge}
 * (longest_edge and max_size refused by name), then `crop_size` when it center-crops
 * (do_center_crop, or its processor class's default). The output size: the crop's, or the
 * resize's; a shortest-edge resize without a crop has no fixed size and is refused.
 */
export function geometry(
  r: Record<string, unknown>,
  file: string,
  bool: (k: string, d: boolean) => boolean,
  fallback: [number, number],
): { size: [number, number]; resizeTo?: PreprocessConfig['resizeTo']; crop: boolean } {
  const sz = r.size as Record<string, unknown> | undefined;
  let resizeTo: PreprocessConfig['resizeTo'];
  if (sz && typeof sz === 'object' && !Array.isArray(sz) && ('shortest_edge' in sz || 'longest_edge' in sz)) {
    if ('longest_edge' in sz || r.max_size !== undefined)
      throw new Error(
        `vit-wasm: ${file}: size.longest_edge (and max_size) is not supported yet; give shortest_edge or {height, width}`,
      );
    const e = sz.shortest_edge;
    if (!Number.isSafeInteger(e) || (e as number) < 1 || (e as number) > 16384)
      throw new Error(
        `vit-wasm: ${file}: size.shortest_edge must be an integer from 1 to 16384, got ${JSON.stringify(e)}`,
      );
    resizeTo = { shortestEdge: e as number };
  } else {
    const exact = sizeField(r.size, 'size', file);
    if (exact) resizeTo = { size: exact };
  }
  const type = typeof r.image_processor_type === 'string' ? r.image_processor_type : '';
  const cropSize = sizeField(r.crop_size, 'crop_size', file);
  const crop = bool('do_center_crop', CROPS_BY_DEFAULT.has(type) && cropSize !== undefined);
  if (crop && !cropSize) throw new Error(`vit-wasm: ${file}: do_center_crop is true but crop_size is missing`);
  if (crop && cropSize) return { size: cropSize, resizeTo, crop };
  if (resizeTo && 'shortestEdge' in resizeTo)
    throw new Error(
      `vit-wasm: ${file}: size {shortest_edge} without a center crop gives images of any size; vit-wasm needs a fixed size (do_center_crop with crop_size)`,
    );
  return { size: resizeTo?.size ?? fallback, resizeTo, crop: false };
}

/** The [height, width] a processor's images come out at (its crop, or its resize), when it fixes one. */
export function processorSize(r: Record<string, unknown>, file: string): [number, number] | undefined {
  const bool = (k: string, d: boolean) => (typeof r[k] === 'boolean' ? (r[k] as boolean) : d);
  const g = geometry(r, file, bool, [0, 0]);
  return g.size[0] > 0 ? g.size : undefined;
}

/**
 * The processor's fields for images of [h, w] instead of its own size: the crop becomes [h, w] and
 * the resize before it is scaled by h / crop height (DeiT's 256 → 224 becomes 293 → 256 for 256);
 * without a crop the resize is to [h, w].
 */
export function atSize(r: Record<string, unknown>, [h, w]: [number, number], file: string): Record<string, unknown> {
  const bool = (k: string, d: boolean) => (typeof r[k] === 'boolean' ? (r[k] as boolean) : d);
  const g = geometry(r, file, bool, [h, w]);
  if (!g.crop) return { ...r, size: { height: h, width: w } };
  const f = h / g.size[0],
    to = g.resizeTo;
  const size =
    to && 'shortestEdge' in to
      ? { shortest_edge: Math.round(to.shortestEdge * f) }
      : to
        ? { height: Math.round(to.size[0] * f), width: Math.round(to.size[1] * f) }
        : undefined;
  return { ...r, size, crop_size: { height: h, width: w } };
}

/** Preprocessing for a model: preprocessor_config.json when present, else ViTImageProcessor defaults. */
export function parsePreprocess(
  raw: Record<string, unknown> | null,
  cfg: Pick<ViTConfig, 'numChannels' | 'imageSize'>,
  file = 'preprocessor_config.json',
): PreprocessConfig {
  const r = raw ?? {};
  const C = cfg.numChannels;
  for (const [field, feature] of Object.entries(UNCOMPUTED_FIELDS)) {
    const v = r[field];
    if (v !== undefined && v !== null && v !== false)
      throw new Error(
        `vit-wasm: ${file}: ${field} ${JSON.stringify(v).slice(0, 40)} asks for ${feature}, which vit-wasm does not compute`,
      );
  }
  const resample = resampleFilter(r.resample ?? 2);
  if (typeof r.resample === 'string' || !resample) {
    throw new Error(
      `vit-wasm: ${file}: resample ${JSON.stringify(r.resample)} is not supported (use 1 lanczos, 2 bilinear, 3 bicubic, 4 box or 5 hamming)`,
    );
  }
  const bool = (k: string, d: boolean) => {
    const v = r[k];
    if (v === undefined || v === null) return d;
    if (typeof v !== 'boolean')
      throw new Error(`vit-wasm: ${file}: ${k} must be true or false, got ${JSON.stringify(v)}`);
    return v;
  };
  const factor = r.rescale_factor ?? 1 / 255;
  if (typeof factor !== 'number' || !Number.isFinite(factor))
    throw new Error(`vit-wasm: ${file}: rescale_factor must be a number`);
  const mean = numberList(r.image_mean, 'image_mean', file, C) ?? Array(C).fill(0.5);
  const std = numberList(r.image_std, 'image_std', file, C) ?? Array(C).fill(0.5);
  if (std.some((s) => s === 0)) throw new Error(`vit-wasm: ${file}: image_std must not contain 0`);
  const doResize = bool('do_resize', true);
  const { size, resizeTo, crop } = geometry(r, file, bool, cfg.imageSize);
  if (size[0] !== cfg.imageSize[0] || size[1] !== cfg.imageSize[1]) {
    throw new Error(
      `vit-wasm: ${file}: images come out at ${size[0]}x${size[1]} (${crop ? 'crop_size' : 'size'}), but the model's image_size is ${cfg.imageSize[0]}x${cfg.imageSize[1]}; load it with { imageSize: [${size}] } to run it at that size`,
    );
  }
  return {
    doResize,
    size,
    ...(resizeTo ? { resizeTo } : {}),
    ...(crop ? { crop } : {}),
    resample,
    doRescale: bool('do_rescale', true),
    rescaleFactor: factor,
    doNormalize: bool('do_normalize', true),
    imageMean: mean,
    imageStd: std,
  };
}

/**
 * config.json and preprocessor_config.json for a model vit-wasm writes (presets, trained models),
 * as Hugging Face's ViTForImageClassification and ViTImageProcessor read them. `preprocessing`
 * overrides fields of the latter (e.g. image_mean).
 */
export function hfConfigFiles(
  c: ViTShape,
  labels: string[],
  preprocessing: Record<string, unknown> = {},
): Record<string, string> {
  const C = c.numChannels;
  const config = {
    architectures: [labels.length ? 'ViTForImageClassification' : 'ViTModel'],
    model_type: 'vit',
    hidden_size: c.hiddenSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    intermediate_size: c.intermediateSize,
    hidden_act: 'gelu',
    layer_norm_eps: c.layerNormEps,
    image_size: c.imageSize[0] === c.imageSize[1] ? c.imageSize[0] : c.imageSize,
    patch_size: c.patchSize,
    num_channels: C,
    qkv_bias: true,
    id2label: Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(labels.map((l, i) => [l, i])),
  };
  const pre = {
    do_resize: true,
    size: { height: c.imageSize[0], width: c.imageSize[1] },
    resample: 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: Array(C).fill(0.5),
    image_std: Array(C).fill(0.5),
    ...preprocessing,
  };
  return { 'config.json': JSON.stringify(config, null, 2), 'preprocessor_config.json': JSON.stringify(pre, null, 2) };
}

/** HF preprocessor_config.json fields for a PreprocessConfig (what the saved model reads back). */
export function preprocessorFields(p: PreprocessConfig): Record<string, unknown> {
  const resample = PILLOW_FILTERS.indexOf(p.resample), // Pillow's number of the filter
    to = p.resizeTo;
  return {
    do_resize: p.doResize,
    size: to && 'shortestEdge' in to ? { shortest_edge: to.shortestEdge } : { height: p.size[0], width: p.size[1] },
    ...(p.crop ? { do_center_crop: true, crop_size: { height: p.size[0], width: p.size[1] } } : {}),
    resample,
    do_rescale: p.doRescale,
    rescale_factor: p.rescaleFactor,
    do_normalize: p.doNormalize,
    image_mean: p.imageMean,
    image_std: p.imageStd,
  };
}
