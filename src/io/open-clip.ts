/**
 * open_clip's own files (laion/ and timm/ hub repositories carry them beside, or instead of,
 * Hugging Face's): open_clip_config.json ({ model_cfg: { embed_dim, quick_gelu, vision_cfg,
 * text_cfg }, preprocess_cfg }) and open_clip_model.safetensors. The config is read into the
 * fields a Hugging Face CLIPModel config gives (so the CLIP family reads one kind of config), every
 * vision_cfg field that changes the arithmetic honoured or refused by name, and preprocess_cfg
 * into a CLIPImageProcessor's settings as open_clip's image_transform resizes and crops (its
 * torchvision steps: PreprocessConfig.transforms 'torchvision').
 */
export const OPEN_CLIP_CONFIG = 'open_clip_config.json';
export const OPEN_CLIP_WEIGHTS = 'open_clip_model.safetensors';
export const OPEN_CLIP_PYTORCH_WEIGHTS = 'open_clip_pytorch_model.bin';

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** An image size as open_clip gives it (a side, or [h, w]), as [h, w]; an Error naming the field otherwise. */
function side(v: unknown, field: string, file: string): [number, number] {
  const ok = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 1 && (x as number) <= 16384;
  if (ok(v)) return [v, v];
  if (Array.isArray(v) && v.length === 2 && v.every(ok)) return [v[0], v[1]];
  throw new Error(
    `vit-wasm: ${file}: ${field} must be an integer from 1 to 16384 or [height, width], got ${JSON.stringify(v)}`,
  );
}

/**
 * model_cfg's vision tower as the CLIP family reads a Hugging Face CLIP config: vision_config with
 * hidden_size (width), num_hidden_layers (layers), num_attention_heads (width / head_width),
 * intermediate_size (int(width · mlp_ratio)), image_size, patch_size, hidden_act (quick_gelu, or
 * the exact GELU open_clip uses otherwise), layer_norm_eps (nn.LayerNorm's 1e-5 unless norm_kwargs
 * says), and open_clip's pool_type, final_ln_after_pool and no_ln_pre as they are; projection_dim
 * (embed_dim) at the top.
 */
export function openClipConfig(raw: Json, file: string): Json {
  const m = raw.model_cfg;
  if (!isObject(m)) throw new Error(`vit-wasm: ${file}: model_cfg must be an object`);
  const v = m.vision_cfg;
  if (!isObject(v)) throw new Error(`vit-wasm: ${file}: model_cfg.vision_cfg must be an object`);
  const refuse = (field: string, feature: string) => {
    throw new Error(
      `vit-wasm: ${file}: vision_cfg.${field} ${JSON.stringify(v[field])} asks for ${feature}, which vit-wasm does not compute yet`,
    );
  };
  if (v.timm_model_name !== undefined && v.timm_model_name !== null)
    refuse('timm_model_name', "a timm tower inside open_clip (tensors 'visual.trunk.*')");
  if (v.layers !== undefined && !Number.isSafeInteger(v.layers)) refuse('layers', 'a ResNet tower (ModifiedResNet)');
  if (v.attentional_pool === true) refuse('attentional_pool', 'an attentional pooler (CoCa)');
  // older open_clip: the mean of every token, the class token's too
  if (v.global_average_pool === true)
    refuse('global_average_pool', 'the mean of every token, the class token included');
  if (v.input_patchnorm === true) refuse('input_patchnorm', 'a layernorm on the flattened patches');
  if ((v.pos_embed_type ?? 'learnable') !== 'learnable')
    refuse('pos_embed_type', 'position embeddings other than learned');
  if (!['tok', 'avg', undefined].includes(v.pool_type as string | undefined))
    refuse('pool_type', "pooling other than the class token ('tok') or the patch mean ('avg')");
  if (isObject(v.act_kwargs) && Object.keys(v.act_kwargs).length) refuse('act_kwargs', 'a parameterised activation');
  if (v.act_kwargs !== undefined && v.act_kwargs !== null && !isObject(v.act_kwargs))
    refuse('act_kwargs', 'a parameterised activation');
  const norm = (v.norm_kwargs ?? {}) as Json;
  if (!isObject(norm) || Object.keys(norm).some((k) => k !== 'eps'))
    refuse('norm_kwargs', 'a norm other than LayerNorm');
  if (m.quick_gelu !== undefined && typeof m.quick_gelu !== 'boolean')
    throw new Error(
      `vit-wasm: ${file}: model_cfg.quick_gelu must be true or false, got ${JSON.stringify(m.quick_gelu)}`,
    );
  const width = v.width ?? 768,
    headWidth = v.head_width ?? 64,
    ratio = v.mlp_ratio ?? 4;
  if (!Number.isSafeInteger(width) || !Number.isSafeInteger(headWidth) || (headWidth as number) < 1)
    throw new Error(
      `vit-wasm: ${file}: vision_cfg.width and head_width must be integers, got ${JSON.stringify([width, headWidth])}`,
    );
  if ((width as number) % (headWidth as number))
    throw new Error(`vit-wasm: ${file}: vision_cfg.width ${width} is not a multiple of head_width ${headWidth}`);
  if (typeof ratio !== 'number' || !(ratio > 0))
    throw new Error(`vit-wasm: ${file}: vision_cfg.mlp_ratio must be a number > 0, got ${JSON.stringify(ratio)}`);
  const patch = v.patch_size ?? 16;
  if (!Number.isSafeInteger(patch)) refuse('patch_size', 'patches that are not square');
  const [h, w] = side(v.image_size ?? 224, 'vision_cfg.image_size', file);
  return {
    model_type: 'clip',
    architectures: ['open_clip'],
    projection_dim: m.embed_dim,
    vision_config: {
      hidden_size: width,
      num_hidden_layers: v.layers ?? 12,
      num_attention_heads: (width as number) / (headWidth as number),
      intermediate_size: Math.trunc((width as number) * ratio),
      image_size: h === w ? h : [h, w],
      patch_size: patch,
      num_channels: 3,
      hidden_act: m.quick_gelu === true ? 'quick_gelu' : 'gelu',
      layer_norm_eps: norm.eps ?? 1e-5,
      pool_type: v.pool_type ?? 'tok',
      final_ln_after_pool: v.final_ln_after_pool ?? false,
      no_ln_pre: v.no_ln_pre ?? false,
      ls_init_value: v.ls_init_value ?? null,
    },
    open_clip: raw,
  };
}

/**
 * preprocess_cfg as a CLIPImageProcessor config: open_clip's image_transform (eval) resizes the
 * shorter side to image_size ('shortest', its default) and center-crops as torchvision does, or
 * resizes to image_size exactly ('squash'); bicubic (or bilinear) as Pillow does; then /255 and
 * mean/std (OpenAI's by default). 'longest' (a resize inside the square, padded) is refused.
 */
export function openClipPreprocessor(raw: Json, file: string): Json {
  const m = isObject(raw.model_cfg) ? raw.model_cfg : {},
    v = isObject(m.vision_cfg) ? m.vision_cfg : {},
    p = raw.preprocess_cfg ?? {};
  if (!isObject(p)) throw new Error(`vit-wasm: ${file}: preprocess_cfg must be an object`);
  const [h, w] = side(p.size ?? v.image_size ?? 224, 'preprocess_cfg.size', file);
  const mode = p.resize_mode ?? 'shortest',
    interp = p.interpolation ?? 'bicubic';
  if (mode !== 'shortest' && mode !== 'squash')
    throw new Error(
      `vit-wasm: ${file}: preprocess_cfg.resize_mode ${JSON.stringify(mode)} is not supported yet (vit-wasm computes 'shortest' and 'squash')`,
    );
  if (interp !== 'bicubic' && interp !== 'bilinear')
    throw new Error(
      `vit-wasm: ${file}: preprocess_cfg.interpolation ${JSON.stringify(interp)} is not supported (vit-wasm computes 'bicubic' and 'bilinear')`,
    );
  if (mode === 'shortest' && h !== w)
    throw new Error(
      `vit-wasm: ${file}: preprocess_cfg.size ${h}x${w}: a 'shortest' resize to a size that is not square (open_clip's ResizeKeepRatio) is not supported yet`,
    );
  return {
    image_processor_type: 'CLIPImageProcessor',
    do_resize: true,
    size: mode === 'shortest' ? { shortest_edge: h } : { height: h, width: w },
    do_center_crop: mode === 'shortest',
    crop_size: { height: h, width: w },
    resample: interp === 'bicubic' ? 3 : 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: p.mean ?? [0.48145466, 0.4578275, 0.40821073],
    image_std: p.std ?? [0.26862954, 0.26130258, 0.27577711],
  };
}
