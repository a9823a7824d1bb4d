/**
 * A CLIPModel's or SiglipModel's text tower from its checkpoint (Hugging Face names, `text_model.*`,
 * as transformers' CLIPTextTransformer / SiglipTextTransformer and their models name them; or
 * open_clip's, its TextTransformer's, with open_clip_config.json's text_cfg): config.json's
 * `text_config` read with CLIPTextConfig's or SiglipTextConfig's defaults and checked against the
 * tensors, the blocks packed into the wasm memory beside the image tower, the token and position
 * tables kept in JavaScript (a text reads a few rows of them), `logit_scale` and SigLIP's
 * `logit_bias`.
 */

import { type TextShape, type TextTower, textArch } from '../nn/text.js';
import { HIDDEN_ACT, wb } from './families/family.js';
import { intField } from './json.js';
import type { TensorInfo } from './safetensors.js';
import type { CheckpointTensors } from './tensors.js';
import type { WeightLoader } from './weight-loader.js';

const T = 'text_model.';
const HF_TOKENS = `${T}embeddings.token_embedding.weight`;

/** Where a text tower's tensors are, by naming scheme. */
interface TextNames {
  tokens: string;
  positions: string;
  /** Layer i: its norms, Q|K|V (three tensors, or open_clip's one in_proj), output projection, MLP. */
  layer(i: number): { ln1: string; ln2: string; qkv: string[]; qkvB: string[]; proj: string; fc1: string; fc2: string };
  norm: string;
  projection: string;
  /** SigLIP's head has a bias. */
  projectionBias?: string;
  /** open_clip stores its projection as a (width, embed_dim) matrix used as x · P. */
  projectionTransposed: boolean;
}

const HF_NAMES: TextNames = {
  tokens: HF_TOKENS,
  positions: `${T}embeddings.position_embedding.weight`,
  layer: (i) => {
    const l = `${T}encoder.layers.${i}.`,
      a = `${l}self_attn.`;
    return {
      ln1: `${l}layer_norm1`,
      ln2: `${l}layer_norm2`,
      qkv: ['q', 'k', 'v'].map((q) => `${a}${q}_proj.weight`),
      qkvB: ['q', 'k', 'v'].map((q) => `${a}${q}_proj.bias`),
      proj: `${a}out_proj`,
      fc1: `${l}mlp.fc1`,
      fc2: `${l}mlp.fc2`,
    };
  },
  norm: `${T}final_layer_norm`,
  projection: 'text_projection.weight',
  projectionTransposed: false,
};

/** SiglipTextTransformer's: CLIP's, but its projection is `head`, with a bias. */
const SIGLIP_NAMES: TextNames = {
  ...HF_NAMES,
  projection: `${T}head.weight`,
  projectionBias: `${T}head.bias`,
};

/** open_clip's TextTransformer names, at the top level (CLIP) or under `text.` (CustomTextCLIP). */
function openClipNames(p: string): TextNames {
  return {
    tokens: `${p}token_embedding.weight`,
    positions: `${p}positional_embedding`,
    layer: (i) => {
      const l = `${p}transformer.resblocks.${i}.`;
      return {
        ln1: `${l}ln_1`,
        ln2: `${l}ln_2`,
        qkv: [`${l}attn.in_proj_weight`],
        qkvB: [`${l}attn.in_proj_bias`],
        proj: `${l}attn.out_proj`,
        fc1: `${l}mlp.c_fc`,
        fc2: `${l}mlp.c_proj`,
      };
    },
    norm: `${p}ln_final`,
    projection: `${p}text_projection`,
    projectionTransposed: true,
  };
}

/** Layer i's linear weights, for reading them in blocks of rows. */
export function textLinearNames(c: TextConfig, i: number): string[] {
  const l = c.names.layer(i);
  return [...l.qkv, `${l.proj}.weight`, `${l.fc1}.weight`, `${l.fc2}.weight`];
}

/** What the text tower is read as: its shape, its tensors' names, and the row a text is read at. */
export interface TextConfig {
  shape: TextShape;
  names: TextNames;
  /**
   * 'argmax': the first highest id (transformers with eos_token_id 2, open_clip's 'argmax' pool);
   * 'last': the last row (SigLIP, whose texts are padded to the model's length); else the first of this id.
   */
  endRow: TextTower['endRow'];
  /** SigLIP: scores are sigmoid(exp(logit_scale) · cosine + logit_bias). */
  sigmoid: boolean;
}

/** The config defaults of each family's text tower (CLIPTextConfig's, SiglipTextConfig's). */
const DEFAULTS = {
  clip: { hidden: 512, vocab: 49408, positions: 77, heads: 8, layers: 12, mlp: 2048, act: 'quick_gelu', eps: 1e-5 },
  siglip: {
    hidden: 768,
    vocab: 32000,
    positions: 64,
    heads: 12,
    layers: 12,
    mlp: 3072,
    act: 'gelu_pytorch_tanh',
    eps: 1e-6,
  },
};

/** The text tower's config for a checkpoint of `family`, or null where the family has none (or the checkpoint lacks it). */
export function textTowerConfig(
  family: string,
  full: Record<string, unknown>,
  tensors: Map<string, TensorInfo>,
  file: string,
): TextConfig | null {
  if (family === 'clip') return clipTextConfig(full, tensors, file);
  if (family === 'siglip' && tensors.has(HF_TOKENS)) return siglipTextConfig(full, tensors, file);
  return null;
}

/**
 * `text_config` (CLIPTextConfig's defaults where a field is absent) and `projection_dim`, checked
 * against the tensors: the vocabulary and width from the token table, the length from the
 * positions; an Error names the field or tensor at fault.
 */
function clipTextConfig(
  full: Record<string, unknown>,
  tensors: Map<string, TensorInfo>,
  file: string,
): TextConfig | null {
  const prefix = ['', 'text.'].find((p) => tensors.has(`${p}token_embedding.weight`));
  const names = tensors.has(HF_TOKENS)
    ? HF_NAMES
    : prefix !== undefined && full.open_clip
      ? openClipNames(prefix)
      : null;
  if (!names) return null;
  const raw = names === HF_NAMES ? (full.text_config ?? {}) : openClipTextConfig(full.open_clip, file);
  const { shape, int } = textShape(raw, names, DEFAULTS.clip, tensors, file);
  const eos = int('eos_token_id', 49407);
  return {
    shape: { ...shape, causal: true, projectionDim: intField(full, 'projection_dim', file) ?? 512 },
    names,
    // open_clip pools at the highest id ('argmax'); transformers too where eos_token_id is 2 (the
    // original checkpoints' config), else at the first eos_token_id
    endRow: names === HF_NAMES && eos !== 2 ? eos : 'argmax',
    sigmoid: false,
  };
}

/**
 * A SiglipModel's `text_config` (SiglipTextConfig's defaults): no causal mask (every token sees
 * every other, the padding too, as SigLIP was trained: its pad token is its end token), the last
 * row read through `head` (projection_size outputs, with a bias), scored with `logit_bias`.
 */
function siglipTextConfig(full: Record<string, unknown>, tensors: Map<string, TensorInfo>, file: string): TextConfig {
  const raw = full.text_config ?? {};
  const { shape, int } = textShape(raw, SIGLIP_NAMES, DEFAULTS.siglip, tensors, file);
  const P = int('projection_size', shape.hiddenSize),
    head = tensors.get(SIGLIP_NAMES.projection);
  if (!head || head.shape[0] !== P || head.shape[1] !== shape.hiddenSize)
    throw new Error(
      `vit-wasm: ${file}: text_config.projection_size ${P} × ${shape.hiddenSize}, but ${SIGLIP_NAMES.projection} is ${head ? `[${head.shape}]` : 'missing'}`,
    );
  for (const n of ['logit_scale', 'logit_bias'])
    if (!tensors.has(n)) throw new Error(`vit-wasm: ${file}: a SiglipModel's text tower without '${n}'`);
  return { shape: { ...shape, causal: false, projectionDim: P }, names: SIGLIP_NAMES, endRow: 'last', sigmoid: true };
}

/** The fields both families read, checked against the token and position tables. */
function textShape(
  raw: unknown,
  names: TextNames,
  d: (typeof DEFAULTS)['clip'],
  tensors: Map<string, TensorInfo>,
  file: string,
): { shape: Omit<TextShape, 'causal' | 'projectionDim'>; int: (key: string, dflt: number) => number } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(`vit-wasm: ${file}: text_config must be an object`);
  const r = raw as Record<string, unknown>;
  const int = (key: string, dflt: number) => intField(r, key, `${file} text_config`) ?? dflt;
  const act = (r.hidden_act ?? d.act) as string;
  if (!(act in HIDDEN_ACT))
    throw new Error(
      `vit-wasm: ${file}: text_config.hidden_act ${JSON.stringify(act)} is not supported; vit-wasm computes ${Object.keys(HIDDEN_ACT).join(', ')}`,
    );
  const tok = tensors.get(names.tokens)!,
    pos = tensors.get(names.positions);
  const [V, D] = tok.shape,
    hidden = int('hidden_size', d.hidden),
    vocab = int('vocab_size', d.vocab),
    maxPositions = int('max_position_embeddings', d.positions);
  if (hidden !== D || vocab !== V)
    throw new Error(
      `vit-wasm: ${file}: text_config says ${vocab} tokens of width ${hidden}, but ${names.tokens} is [${tok.shape}]`,
    );
  if (!pos || pos.shape[0] !== maxPositions || pos.shape[1] !== D)
    throw new Error(
      `vit-wasm: ${file}: text_config.max_position_embeddings ${maxPositions} × ${D}, but ${names.positions} is ${pos ? `[${pos.shape}]` : 'missing'}`,
    );
  const heads = int('num_attention_heads', d.heads);
  if (D % heads)
    throw new Error(
      `vit-wasm: ${file}: text_config.hidden_size ${D} is not a multiple of num_attention_heads ${heads}`,
    );
  const eps = r.layer_norm_eps ?? d.eps;
  if (typeof eps !== 'number' || !(eps > 0))
    throw new Error(`vit-wasm: ${file}: text_config.layer_norm_eps must be a positive number`);
  return {
    shape: {
      hiddenSize: D,
      numHeads: heads,
      numLayers: int('num_hidden_layers', d.layers),
      intermediateSize: int('intermediate_size', d.mlp),
      layerNormEps: eps,
      maxPositions,
      vocabSize: V,
      arch: textArch(HIDDEN_ACT[act]),
    },
    int,
  };
}

/**
 * open_clip's model_cfg.text_cfg as the text_config fields above (its TextTransformer's defaults:
 * width 512, 8 heads, 12 layers, mlp_ratio 4, context 77, 49,408 tokens; QuickGELU where
 * model_cfg.quick_gelu), pooled at the highest id ('argmax'). What changes the
 * arithmetic and is not computed is refused by name.
 */
function openClipTextConfig(openClip: unknown, file: string): Record<string, unknown> {
  const m = ((openClip as { model_cfg?: unknown })?.model_cfg ?? {}) as Record<string, unknown>,
    t = (m.text_cfg ?? {}) as Record<string, unknown>;
  const refuse = (field: string, feature: string) => {
    throw new Error(
      `vit-wasm: ${file}: text_cfg.${field} ${JSON.stringify(t[field])} asks for ${feature}, which vit-wasm does not compute yet`,
    );
  };
  if (t.hf_model_name) refuse('hf_model_name', 'a Hugging Face text model inside open_clip');
  if (t.ls_init_value !== undefined && t.ls_init_value !== null)
    refuse('ls_init_value', 'LayerScale in the text tower');
  if ((t.pool_type ?? 'argmax') !== 'argmax') refuse('pool_type', "pooling other than at the highest id ('argmax')");
  if (t.embed_cls) refuse('embed_cls', 'a class token in the text tower');
  if (t.no_causal_mask) refuse('no_causal_mask', 'a text tower without its causal mask');
  if (t.proj_bias) refuse('proj_bias', 'a text projection with a bias');
  if ((t.proj_type ?? 'linear') !== 'linear') refuse('proj_type', 'a text projection other than linear');
  if (t.act_kwargs || t.norm_kwargs)
    refuse(t.act_kwargs ? 'act_kwargs' : 'norm_kwargs', 'a parameterised activation or norm');
  const width = (t.width ?? 512) as number,
    ratio = (t.mlp_ratio ?? 4) as number;
  return {
    hidden_size: width,
    num_attention_heads: t.heads ?? 8,
    num_hidden_layers: t.layers ?? 12,
    intermediate_size: Math.trunc(width * ratio),
    max_position_embeddings: t.context_length ?? 77,
    vocab_size: t.vocab_size ?? 49408,
    hidden_act: m.quick_gelu === true ? 'quick_gelu' : 'gelu',
  };
}

/** The text tower's tensors: blocks and final norm into the wasm memory, the tables and logit_scale here. */
export async function loadTextTower(
  t: CheckpointTensors,
  loader: WeightLoader,
  { shape: c, names: n, endRow, sigmoid }: TextConfig,
): Promise<TextTower> {
  const D = c.hiddenSize,
    M = c.intermediateSize;
  let tokens = new Float32Array(0),
    positions = new Float32Array(0),
    logitScale = Number.NaN,
    logitBias: number | undefined;
  await t.take(n.tokens, [c.vocabSize, D], (d) => (tokens = d.slice()));
  await t.take(n.positions, [c.maxPositions, D], (d) => (positions = d.slice()));
  // a scalar: shape [] (CLIPModel, open_clip) or [1] (SiglipModel)
  const scalar = (name: string) => (t.tensors.get(name)?.shape.length === 1 ? [1] : []);
  await t.take('logit_scale', scalar('logit_scale'), (d) => (logitScale = d[0]));
  if (sigmoid) await t.take('logit_bias', scalar('logit_bias'), (d) => (logitBias = d[0]));
  const layers = [];
  for (let i = 0; i < c.numLayers; i++) {
    const l = n.layer(i);
    layers.push({
      ln1: await loader.norm(wb(l.ln1), D),
      // the blocks' linear layers as the image tower's: int8 only with weights: 'int8'
      qkv: await loader.encoderLinear(l.qkv, l.qkvB, 3 * D, D),
      proj: await loader.encoderLinear([`${l.proj}.weight`], [`${l.proj}.bias`], D, D),
      ln2: await loader.norm(wb(l.ln2), D),
      fc1: await loader.encoderLinear([`${l.fc1}.weight`], [`${l.fc1}.bias`], M, D),
      fc2: await loader.encoderLinear([`${l.fc2}.weight`], [`${l.fc2}.bias`], D, M),
    });
  }
  const weights = {
    layers,
    norm: await loader.norm(wb(n.norm), D),
    // open_clip's (width, embed_dim) matrix, used as x · P: read by columns
    projection: n.projectionTransposed
      ? await loader.columns(n.projection, c.projectionDim, D)
      : await loader.linear([n.projection], n.projectionBias ? [n.projectionBias] : null, c.projectionDim, D),
  };
  return { shape: c, weights, tokens, positions, logitScale, logitBias, endRow };
}
