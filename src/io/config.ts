/**
 * Model and preprocessing configuration, from HF's config.json / preprocessor_config.json, checked
 * against what the weights say. Field names in messages are the JSON names, so users can find them.
 */

import type { ViTShape } from '../nn/shape.js';
import { type ResampleFilter, resampleFilter } from './image/pillow.js';
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

/** HF ViTImageProcessor settings. */
export interface PreprocessConfig {
  doResize: boolean;
  /** Target [height, width]. */
  size: [number, number];
  /** Pillow's filter, by name (preprocessor_config.json gives Pillow's number: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming). */
  resample: ResampleFilter;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: number[];
  imageStd: number[];
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

/** Preprocessing for a model: preprocessor_config.json when present, else ViTImageProcessor defaults. */
export function parsePreprocess(
  raw: Record<string, unknown> | null,
  cfg: ViTConfig,
  file = 'preprocessor_config.json',
): PreprocessConfig {
  const r = raw ?? {};
  const C = cfg.numChannels;
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
  const size = sizeField(r.size, 'size', file) ?? cfg.imageSize;
  const doResize = bool('do_resize', true);
  if (doResize && (size[0] !== cfg.imageSize[0] || size[1] !== cfg.imageSize[1])) {
    throw new Error(
      `vit-wasm: ${file}: size ${size[0]}x${size[1]} differs from the model's image_size ${cfg.imageSize[0]}x${cfg.imageSize[1]}`,
    );
  }
  return {
    doResize,
    size,
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
