/**
 * Which image processor a model directory describes, as the settings of a Hugging Face image
 * processor (src/io/config.ts parses them): preprocessor_config.json; else open_clip's
 * preprocess_cfg (src/io/open-clip.ts); else timm's pretrained_cfg in config.json, as timm's eval
 * transform computes it; else none (ViTImageProcessor's defaults); or, asked for by name, a
 * torchvision weights recipe (src/io/torchvision.ts). open_clip's, timm's and torchvision's are
 * torchvision transforms (PreprocessConfig.transforms).
 */
import { atSize, type PreprocessConfig, parsePreprocess, type ViTConfig } from './config.js';
import { OPEN_CLIP_CONFIG, openClipPreprocessor } from './open-clip.js';
import { type ModelFiles, readJson } from './source.js';
import { torchvisionPreprocessor } from './torchvision.js';

type Json = Record<string, unknown>;

/** Directories already warned about (once per process or page, not once per load). */
const warned = new Set<string>();

/**
 * An image processor's settings, the file they came from, whose transforms compute them, and why
 * images cannot be preprocessed with them, where they cannot (PreprocessConfig.refuse).
 */
export interface ProcessorSource {
  raw: Json;
  file: string;
  transforms?: 'torchvision';
  refuse?: string;
}

/** timm's interpolation names and the Pillow filter number each is (NEAREST is not resampled by vit-wasm). */
const TIMM_INTERPOLATION: Readonly<Record<string, number>> = {
  bilinear: 2,
  bicubic: 3,
  lanczos: 1,
  box: 4,
  hamming: 5,
};

/**
 * timm's transforms_imagenet_eval from pretrained_cfg as resolve_data_config reads it (absent:
 * bicubic, crop_pct 0.875, ImageNet's mean and std): scale = ⌊input_size / crop_pct⌋; crop_mode 'center' (its default) resizes the shorter side to it, 'squash'
 * both sides; then torchvision's CenterCrop to input_size, ToTensor, Normalize(mean, std). The
 * fields timm's eval transform reads are honoured or refused by name.
 */
export function timmPreprocessor(cfg: unknown, file: string): ProcessorSource {
  const where = `${file}: pretrained_cfg`;
  if (typeof cfg !== 'object' || cfg === null || Array.isArray(cfg))
    throw new Error(`vit-wasm: ${where} must be an object`);
  const p = cfg as Json;
  const size = p.input_size ?? [3, 224, 224];
  if (!Array.isArray(size) || size.length !== 3 || !size.every((v) => Number.isSafeInteger(v) && v >= 1 && v <= 16384))
    throw new Error(`vit-wasm: ${where}.input_size must be [channels, height, width], got ${JSON.stringify(size)}`);
  const [, h, w] = size as number[];
  // as timm's resolve_data_config: a field left out (or falsy) takes timm's default
  const pct = p.crop_pct || 0.875;
  if (typeof pct !== 'number' || !(pct > 0 && pct <= 4))
    throw new Error(`vit-wasm: ${where}.crop_pct must be a number in (0, 4], got ${JSON.stringify(pct)}`);
  const interp = p.interpolation || 'bicubic',
    mode = p.crop_mode || 'center';
  if (typeof interp !== 'string' || !Object.hasOwn(TIMM_INTERPOLATION, interp))
    throw new Error(
      `vit-wasm: ${where}.interpolation ${JSON.stringify(interp)} is not supported (vit-wasm resamples with ${Object.keys(TIMM_INTERPOLATION).join(', ')})`,
    );
  if (mode !== 'center' && mode !== 'squash')
    throw new Error(
      `vit-wasm: ${where}.crop_mode ${JSON.stringify(mode)} is not supported yet (vit-wasm computes 'center' and 'squash')`,
    );
  if (p.crop_border_pixels) throw new Error(`vit-wasm: ${where}.crop_border_pixels is not supported yet`);
  for (const k of ['mean', 'std'] as const) {
    const v = p[k];
    if (v && !(Array.isArray(v) && v.length === size[0] && v.every((x) => typeof x === 'number' && Number.isFinite(x))))
      throw new Error(
        `vit-wasm: ${where}.${k} must be ${size[0]} finite numbers (one per channel of input_size), got ${JSON.stringify(v)}`,
      );
  }
  const [sh, sw] = [Math.floor(h / pct), Math.floor(w / pct)];
  // timm's ResizeKeepRatio (a 'center' crop to a size that is not square): the model loads and runs
  // on pixels; preprocessing an image is refused (PreprocessConfig.refuse)
  const refuse =
    mode === 'center' && h !== w
      ? `vit-wasm: ${where}.input_size ${h}x${w}: crop_mode 'center' to a size that is not square (timm's ResizeKeepRatio) is not supported yet: preprocess the images yourself and pass pixels`
      : undefined;
  const raw = {
    image_processor_type: 'timm',
    do_resize: true,
    size: mode === 'center' && !refuse ? { shortest_edge: sh } : { height: sh, width: sw },
    do_center_crop: true,
    crop_size: { height: h, width: w },
    resample: TIMM_INTERPOLATION[interp],
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: p.mean || [0.485, 0.456, 0.406],
    image_std: p.std || [0.229, 0.224, 0.225],
  };
  return { raw, file, transforms: 'torchvision', ...(refuse ? { refuse } : {}) };
}

/**
 * The processor of the model in `files`, whose config.json (or what stands for it) is `config`:
 * a torchvision weights recipe by name (loadModel's `transforms`), else preprocessor_config.json,
 * open_clip's preprocess_cfg, timm's pretrained_cfg, or null. A timm config without
 * pretrained_cfg says nothing of its pixels: a warning says which defaults are used.
 */
export async function readProcessor(
  files: ModelFiles,
  config: Json,
  transforms?: string,
): Promise<ProcessorSource | null> {
  if (transforms !== undefined)
    return { raw: torchvisionPreprocessor(transforms), file: `transforms ${transforms}`, transforms: 'torchvision' };
  if (await files.exists('preprocessor_config.json'))
    return {
      raw: await readJson(files, 'preprocessor_config.json'),
      file: `${files.where}/preprocessor_config.json`,
    };
  if (config.open_clip !== undefined && (await files.exists(OPEN_CLIP_CONFIG))) {
    const file = `${files.where}/${OPEN_CLIP_CONFIG}`;
    return {
      raw: openClipPreprocessor(await readJson(files, OPEN_CLIP_CONFIG), file),
      file,
      transforms: 'torchvision',
    };
  }
  const file = `${files.where}/config.json`;
  if (config.pretrained_cfg !== undefined && config.pretrained_cfg !== null)
    return timmPreprocessor(config.pretrained_cfg, file);
  if (typeof config.architecture === 'string' && !warned.has(file)) {
    warned.add(file);
    console.warn(
      `vit-wasm: ${file} is timm's and has no pretrained_cfg: images are preprocessed with ViTImageProcessor's defaults (resize to the model's size, mean 0.5, std 0.5); give the model's preprocessor_config.json if it was trained otherwise`,
    );
  }
  return null;
}

/**
 * The preprocessing of a model whose processor is `src` (null: ViTImageProcessor's defaults), at
 * `imageSize` where the caller chose one (the crop moved to it and the resize before it scaled:
 * atSize), with its transforms and refusal carried over. `file` names the defaults in messages.
 */
export function processorConfig(
  src: ProcessorSource | null,
  cfg: ViTConfig,
  imageSize?: [number, number],
  file = 'preprocessor_config.json',
): PreprocessConfig {
  const at = src?.file ?? file;
  const p = parsePreprocess(src && imageSize ? atSize(src.raw, imageSize, at) : (src?.raw ?? null), cfg, at);
  return {
    ...p,
    ...(src?.transforms ? { transforms: src.transforms } : {}),
    ...(src?.refuse ? { refuse: src.refuse } : {}),
  };
}
