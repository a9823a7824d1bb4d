/**
 * A CLIPModel's text tower from its checkpoint (Hugging Face names, `text_model.*`, as
 * transformers' CLIPTextTransformer and CLIPModel name them): config.json's `text_config` read with
 * CLIPTextConfig's defaults and checked against the tensors, the blocks packed into the wasm
 * memory beside the image tower, the token and position tables kept in JavaScript (a text reads a
 * few rows of them), and `logit_scale`.
 */

import { type TextShape, type TextTower, textArch } from '../nn/text.js';
import { HIDDEN_ACT } from './families/family.js';
import type { TensorInfo } from './safetensors.js';
import type { CheckpointTensors } from './tensors.js';
import type { WeightLoader } from './weight-loader.js';

const T = 'text_model.';
export const TEXT_TOKENS = `${T}embeddings.token_embedding.weight`;
const TEXT_POSITIONS = `${T}embeddings.position_embedding.weight`;

/** Layer i's linear weights, for reading them in blocks of rows. */
export function textLinearNames(i: number): string[] {
  const l = `${T}encoder.layers.${i}.`;
  return [
    ...['q', 'k', 'v', 'out'].map((q) => `${l}self_attn.${q}_proj.weight`),
    `${l}mlp.fc1.weight`,
    `${l}mlp.fc2.weight`,
  ];
}

/** What the text tower is read as: its shape, and how a text's end-of-text row is found. */
export interface TextConfig {
  shape: TextShape;
  /** text_config.eos_token_id; 2 (the original checkpoints' config) means the highest id's row, as transformers reads it. */
  eosTokenId: number;
}

/**
 * `text_config` (CLIPTextConfig's defaults where a field is absent) and `projection_dim`, checked
 * against the tensors: the vocabulary and width from the token table, the length from the
 * positions; an Error names the field or tensor at fault.
 */
export function clipTextConfig(
  full: Record<string, unknown>,
  tensors: Map<string, TensorInfo>,
  file: string,
): TextConfig | null {
  const tok = tensors.get(TEXT_TOKENS),
    pos = tensors.get(TEXT_POSITIONS);
  if (!tok) return null;
  const raw = (full.text_config ?? {}) as Record<string, unknown>;
  if (typeof raw !== 'object' || Array.isArray(raw))
    throw new Error(`vit-wasm: ${file}: text_config must be an object`);
  const int = (o: Record<string, unknown>, key: string, dflt: number, where = 'text_config.') => {
    const v = o[key] ?? dflt;
    if (!Number.isSafeInteger(v) || (v as number) <= 0)
      throw new Error(`vit-wasm: ${file}: ${where}${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const act = (raw.hidden_act ?? 'quick_gelu') as string;
  if (!(act in HIDDEN_ACT))
    throw new Error(
      `vit-wasm: ${file}: text_config.hidden_act ${JSON.stringify(act)} is not supported; vit-wasm computes ${Object.keys(HIDDEN_ACT).join(', ')}`,
    );
  const [V, D] = tok.shape,
    hidden = int(raw, 'hidden_size', 512),
    vocab = int(raw, 'vocab_size', 49408),
    maxPositions = int(raw, 'max_position_embeddings', 77);
  if (hidden !== D || vocab !== V)
    throw new Error(
      `vit-wasm: ${file}: text_config says ${vocab} tokens of width ${hidden}, but ${TEXT_TOKENS} is [${tok.shape}]`,
    );
  if (!pos || pos.shape[0] !== maxPositions || pos.shape[1] !== D)
    throw new Error(
      `vit-wasm: ${file}: text_config.max_position_embeddings ${maxPositions} × ${D}, but ${TEXT_POSITIONS} is ${pos ? `[${pos.shape}]` : 'missing'}`,
    );
  const heads = int(raw, 'num_attention_heads', 8);
  if (D % heads)
    throw new Error(
      `vit-wasm: ${file}: text_config.hidden_size ${D} is not a multiple of num_attention_heads ${heads}`,
    );
  const eps = raw.layer_norm_eps ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0))
    throw new Error(`vit-wasm: ${file}: text_config.layer_norm_eps must be a positive number`);
  return {
    shape: {
      hiddenSize: D,
      numHeads: heads,
      numLayers: int(raw, 'num_hidden_layers', 12),
      intermediateSize: int(raw, 'intermediate_size', 2048),
      layerNormEps: eps,
      maxPositions,
      vocabSize: V,
      projectionDim: int(full, 'projection_dim', 512, ''),
      arch: textArch(HIDDEN_ACT[act]),
    },
    eosTokenId: raw.eos_token_id === undefined ? 49407 : int(raw, 'eos_token_id', 49407),
  };
}

/** The text tower's tensors: blocks and final norm into the wasm memory, the tables and logit_scale here. */
export async function loadTextTower(
  t: CheckpointTensors,
  loader: WeightLoader,
  { shape: c, eosTokenId }: TextConfig,
): Promise<TextTower> {
  const D = c.hiddenSize,
    M = c.intermediateSize;
  let tokens = new Float32Array(0),
    positions = new Float32Array(0),
    logitScale = Number.NaN;
  await t.take(TEXT_TOKENS, [c.vocabSize, D], (d) => (tokens = d.slice()));
  await t.take(TEXT_POSITIONS, [c.maxPositions, D], (d) => (positions = d.slice()));
  await t.take('logit_scale', [], (d) => (logitScale = d[0]));
  const layers = [];
  for (let i = 0; i < c.numLayers; i++) {
    const l = `${T}encoder.layers.${i}.`,
      a = `${l}self_attn.`,
      wb = (n: string): [string, string] => [`${n}.weight`, `${n}.bias`];
    layers.push({
      ln1: await loader.norm(wb(`${l}layer_norm1`), D),
      // the blocks' linear layers as the image tower's: int8 only with weights: 'int8'
      qkv: await loader.encoderLinear(
        ['q', 'k', 'v'].map((q) => `${a}${q}_proj.weight`),
        ['q', 'k', 'v'].map((q) => `${a}${q}_proj.bias`),
        3 * D,
        D,
      ),
      proj: await loader.encoderLinear([`${a}out_proj.weight`], [`${a}out_proj.bias`], D, D),
      ln2: await loader.norm(wb(`${l}layer_norm2`), D),
      fc1: await loader.encoderLinear([`${l}mlp.fc1.weight`], [`${l}mlp.fc1.bias`], M, D),
      fc2: await loader.encoderLinear([`${l}mlp.fc2.weight`], [`${l}mlp.fc2.bias`], D, M),
    });
  }
  const weights = {
    layers,
    norm: await loader.norm([`${T}final_layer_norm.weight`, `${T}final_layer_norm.bias`], D),
    projection: await loader.linear(['text_projection.weight'], null, c.projectionDim, D),
  };
  return { shape: c, weights, tokens, positions, logitScale, eosTokenId };
}
