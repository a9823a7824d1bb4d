/**
 * config.json reconciled with a checkpoint's tensor shapes: the shape is read off the weights
 * wherever it can be, and every field config.json gives must agree with them; every disagreement
 * is an error naming both the field and the tensor.
 */
import { type Arch, checkArch, positionedPrefix } from '../nn/arch.js';
import { overLimit } from '../platform/limits.js';
import type { ViTConfig } from './config.js';
import { type Family, HIDDEN_ACT, type Names, type SchemeSpec } from './families/index.js';
import { intField, sizeField } from './json.js';
import type { TensorInfo } from './safetensors.js';

const CF = 'config.json';

/** What a checkpoint was recognised as (src/io/families/). */
export interface Found {
  family: Family;
  spec: SchemeSpec;
  names: Names;
}

/** A recognised checkpoint with its arithmetic and names as its config sets them. */
export interface Configured extends Found {
  arch: Arch;
}

/**
 * The checkpoint's config checked field by field against what its family computes, then the
 * arithmetic and names it asks for (the scheme's `configure`, e.g. timm's pooling).
 */
export function configure(
  raw: Record<string, unknown>,
  found: Found,
  tensors: ReadonlyMap<string, TensorInfo>,
): Configured {
  checkConfigRules(raw, found);
  const args = timmArgs(raw);
  const read = (field: string) => raw[field] ?? args[field] ?? undefined;
  // the activation hidden_act names; a scheme's configure may say otherwise (timm's act_layer)
  const named = { ...found.family.arch, activation: activationOf(raw, found.family) };
  const set = found.spec.configure?.(read, named, found.names, (name) => tensors.get(name)?.shape);
  let arch = set?.arch ?? named;
  // no classifier (Hugging Face's ViTModel, timm's num_classes=0): a model for embeddings
  if (!tensors.has(found.names.headW) && !tensors.has(found.names.headB) && arch.head === 'linear')
    arch = { ...arch, head: 'none' };
  // an arithmetic the ops do not compute is refused here, by its own name, before any tensor is read
  return { ...found, arch: checkArch(arch), names: set?.names ?? found.names };
}

/** The sizes the tensors give, each checked to be at least 1. */
interface WeightDims {
  D: number; // hidden size
  C: number; // channels
  p: number; // patch size
  M: number; // MLP size
  NL: number; // labels
  T: number; // tokens with a position embedding
  L: number; // layers
}

/** Reads the shape off the tensors: a missing or malformed one is named. */
function weightDims(n: Names, t: Map<string, TensorInfo>, file: string, maxLabels: number, arch: Arch): WeightDims {
  const headless = arch.head === 'none' || arch.head === 'projection';
  const need = (name: string): TensorInfo => {
    const x = t.get(name);
    if (!x) throw new Error(`vit-wasm: ${file}: missing tensor '${name}'`);
    return x;
  };
  // BEiT without absolute positions has no table: the image size then comes from config.json alone
  const patch = need(n.patchW),
    pos = arch.positions === 'none' ? { shape: [0, 0] } : need(n.pos),
    head = headless ? { shape: [0, 0] } : need(n.headW),
    fc1 = need(n.layer(0).fc1W);
  if (patch.shape.length !== 4 || patch.shape[2] !== patch.shape[3])
    throw new Error(
      `vit-wasm: ${file}: tensor '${n.patchW}' has shape [${patch.shape}], expected [hidden, channels, patch, patch]`,
    );
  const [D, C, p] = patch.shape;
  const T = pos.shape[pos.shape.length - 2];
  // Dinov2ForImageClassification's head reads the cls token and the mean of the patches side by side
  const K = arch.pooling === 'clsMean' ? 2 * D : D;
  const L = layerCount(n, t, file);
  // Every size must be ≥ 1 before anything is built from it: a 0-byte tensor of shape
  // [4294967295, 0] is valid safetensors, and 4 billion labels would exhaust the heap.
  const dims: [string, number, string][] = [
    ['hidden_size', D, n.patchW],
    ['num_channels', C, n.patchW],
    ['patch_size', p, n.patchW],
    ['intermediate_size', fc1.shape[0], n.layer(0).fc1W],
    ...(headless ? [] : ([['num_labels', head.shape[0], n.headW]] as [string, number, string][])),
    ...(arch.positions === 'none' ? [] : ([['position embeddings', T, n.pos]] as [string, number, string][])),
  ];
  for (const [what, v, tensor] of dims)
    if (!(v >= 1))
      throw new Error(`vit-wasm: ${file}: tensor '${tensor}' has shape [${t.get(tensor)!.shape}], giving ${what} ${v}`);
  if (arch.mlp === 'gated' && fc1.shape[0] % 2 !== 0)
    throw new Error(
      `vit-wasm: ${file}: tensor '${n.layer(0).fc1W}' has shape [${fc1.shape}]: a gated MLP's fc1 gives its gate and the half it multiplies, an even number of rows`,
    );
  if (!headless && (head.shape.length !== 2 || head.shape[1] !== K))
    throw new Error(
      `vit-wasm: ${file}: tensor '${n.headW}' has shape [${head.shape}], expected [num_labels, ${K === D ? D : `${K}: the cls token and the mean of the patch tokens, ${D} each`}]`,
    );
  if (head.shape[0] > maxLabels)
    throw overLimit(
      `${file}: tensor '${n.headW}' has ${head.shape[0].toLocaleString('en-US')} classes, which`,
      'maxLabels',
      maxLabels,
    );
  return { D, C, p, M: arch.mlp === 'gated' ? fc1.shape[0] / 2 : fc1.shape[0], NL: head.shape[0], T, L };
}

/** Layers, counted from the deepest layer index any tensor names; each must have its first norm. */
function layerCount(n: Names, t: Map<string, TensorInfo>, file: string): number {
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
  return L;
}

/** timm's model arguments in a hub config.json (`model_args`), or {}. */
function timmArgs(raw: Record<string, unknown>): Record<string, unknown> {
  const a = raw.model_args;
  return a && typeof a === 'object' && !Array.isArray(a) ? (a as Record<string, unknown>) : {};
}

/** Every size config.json gives must be the one the weights have. */
function checkAgreement(
  raw: Record<string, unknown>,
  w: WeightDims,
  n: Names,
  t: Map<string, TensorInfo>,
  file: string,
) {
  const fromWeights = {
    hidden_size: w.D,
    num_channels: w.C,
    patch_size: w.p,
    intermediate_size: w.M,
    num_labels: w.NL,
    num_hidden_layers: w.L,
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
  agree('num_hidden_layers', n.layer(w.L - 1).ln1[0]);
  // a model without a classifier has no labels, whatever its config's (transformers' default is 2)
  if (w.NL > 0) agree('num_labels', n.headW, 'num_classes');
}

/**
 * Every field the family's libraries write that changes the arithmetic, at the top level or (timm)
 * under `model_args`: a value the family does not compute is refused naming the field and what it asks for.
 */
function checkConfigRules(raw: Record<string, unknown>, { family, spec }: Found): void {
  const places: [Record<string, unknown>, string][] = [
    [raw, ''],
    [timmArgs(raw), 'model_args.'],
  ];
  for (const rule of family.configRules)
    for (const [obj, prefix] of places) {
      const v = obj[rule.field],
        also = rule.alsoIn?.[spec.scheme] ?? [];
      if (also === 'any') continue; // the scheme's configure reads it against the tensors
      const ok = [...rule.computed, ...also];
      if (v === undefined || v === null || ok.includes(v)) continue;
      const computed = ok.length
        ? ` (vit-wasm computes ${ok.map((c) => JSON.stringify(c)).join(' or ')}${rule.alsoIn ? ` in ${spec.scheme}'s names` : ''}, or the field left out)`
        : ' (vit-wasm computes the field left out or null)';
      throw new Error(
        `vit-wasm: ${CF}: ${prefix}${rule.field} ${JSON.stringify(v)} asks for ${rule.feature}, which vit-wasm does not support yet${computed}`,
      );
    }
}

/**
 * timm's heads per width (its vit_* and deit_* definitions), for hub configs that name the
 * architecture ("vit_small_patch16_224.augreg_in21k") instead of giving the head count.
 */
const TIMM_HEADS: Record<string, [width: number, heads: number]> = {
  tiny: [192, 3],
  small: [384, 6],
  medium: [512, 8],
  base: [768, 12],
  large: [1024, 16],
  huge: [1280, 16],
  giant: [1408, 16],
  gigantic: [1664, 16],
};

/** num_attention_heads (or timm's num_heads, or timm's architecture name): not in the weights. */
function headsOf(raw: Record<string, unknown>, D: number): number {
  let heads =
    intField(raw, 'num_attention_heads', CF) ??
    intField(raw, 'num_heads', CF) ??
    intField(timmArgs(raw), 'num_heads', CF);
  const arch = typeof raw.architecture === 'string' ? raw.architecture : '';
  const size = /^(?:vit|deit)_([a-z]+)_/.exec(arch)?.[1];
  if (heads === undefined && size && Object.hasOwn(TIMM_HEADS, size)) {
    const [width, h] = TIMM_HEADS[size];
    if (width !== D)
      throw new Error(
        `vit-wasm: ${CF}: num_attention_heads is missing, and architecture "${arch}" (${size}: width ${width}, ${h} heads) does not match the weights' hidden size ${D}`,
      );
    heads = h;
  }
  if (heads === undefined)
    throw new Error(`vit-wasm: ${CF}: num_attention_heads is missing (it cannot be read off the weights)`);
  if (D % heads !== 0)
    throw new Error(`vit-wasm: ${CF}: hidden_size ${D} is not divisible by num_attention_heads ${heads}`);
  return heads;
}

/** image_size, or a square grid read off the position embeddings; it must give their token count. */
function imageSizeOf(
  raw: Record<string, unknown>,
  w: WeightDims,
  arch: Arch,
  pos: string,
  t: Map<string, TensorInfo>,
  file: string,
): [number, number] {
  const { p, T } = w,
    prefix = positionedPrefix(arch),
    side = Math.round(Math.sqrt(T - prefix));
  if (arch.positions === 'none') {
    const size = sizeField(raw.image_size, 'image_size', CF);
    if (!size)
      throw new Error(
        `vit-wasm: ${CF}: image_size is missing (a model without position embeddings cannot say it otherwise)`,
      );
    if (size[0] % p || size[1] % p)
      throw new Error(`vit-wasm: ${CF}: image_size ${size[0]}x${size[1]} is not divisible by patch_size ${p}`);
    return size;
  }
  const imageSize =
    sizeField(raw.image_size, 'image_size', CF) ??
    sizeField(timmArgs(raw).img_size, 'model_args.img_size', CF) ??
    (side * side === T - prefix ? ([side * p, side * p] as [number, number]) : undefined);
  if (!imageSize)
    throw new Error(`vit-wasm: ${CF}: image_size is missing and ${T - prefix} patches is not a square grid`);
  if (imageSize[0] % p || imageSize[1] % p)
    throw new Error(`vit-wasm: ${CF}: image_size ${imageSize[0]}x${imageSize[1]} is not divisible by patch_size ${p}`);
  const np = (imageSize[0] / p) * (imageSize[1] / p);
  if (np + prefix !== T)
    throw new Error(
      `vit-wasm: ${CF}: image_size ${imageSize[0]}x${imageSize[1]} with patch_size ${p} gives ${np} patches + ${arch.prefix.slice(0, prefix).join(', ') || 'no prefix token'} = ${np + prefix} positions, but ${file} tensor '${pos}' has shape [${t.get(pos)!.shape}] (${T} positions)`,
    );
  return imageSize;
}

/** The activation hidden_act names (the family's default when absent), or an Error naming the field. */
function activationOf(raw: Record<string, unknown>, family: Family): Arch['activation'] {
  const act = raw.hidden_act ?? family.defaultHiddenAct;
  if (typeof act !== 'string' || !Object.hasOwn(HIDDEN_ACT, act))
    throw new Error(
      `vit-wasm: ${CF}: hidden_act ${JSON.stringify(act)} is not supported; vit-wasm computes ${Object.keys(HIDDEN_ACT).join(', ')}`,
    );
  return HIDDEN_ACT[act];
}

/** layer_norm_eps (the scheme's default when absent) must be > 0. */
function epsOf(raw: Record<string, unknown>, { spec }: Found): number {
  const eps = raw.layer_norm_eps ?? spec.layerNormEps;
  // > 0: with eps 0 a constant row (a blank image patch) divides by zero
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps))
    throw new Error(
      `vit-wasm: ${CF}: layer_norm_eps must be a finite number > 0, got ${typeof eps === 'number' ? eps : JSON.stringify(eps)}`,
    );
  return eps;
}

/** qkv_bias, or whether the tensors have one; true needs the tensors. */
function qkvBiasOf(raw: Record<string, unknown>, n: Names, t: Map<string, TensorInfo>, file: string): boolean {
  // a part without a bias (null: BEiT's key) needs none
  const hasQkvBias = n.layer(0).qkvB.every((b) => b === null || t.has(b));
  const qkvBias = raw.qkv_bias ?? hasQkvBias;
  if (typeof qkvBias !== 'boolean') throw new Error(`vit-wasm: ${CF}: qkv_bias must be true or false`);
  if (qkvBias && !hasQkvBias)
    throw new Error(
      `vit-wasm: ${CF} says qkv_bias=true, but ${file} has no tensor '${n.layer(0).qkvB.find((b) => b !== null && !t.has(b))}'`,
    );
  return qkvBias;
}

/** The label of each class: id2label's, LABEL_i where it has none. */
function labelsOf(raw: Record<string, unknown>, NL: number, headW: string, file: string): string[] {
  const labels = Array.from({ length: NL }, (_, i) => `LABEL_${i}`);
  const id2label = raw.id2label;
  if (id2label === undefined || id2label === null) return labels;
  if (typeof id2label !== 'object' || Array.isArray(id2label))
    throw new Error(`vit-wasm: ${CF}: id2label must be an object {"0": "label", …}`);
  const entries = Object.entries(id2label as Record<string, unknown>);
  if (entries.length !== NL)
    throw new Error(
      `vit-wasm: ${CF}: id2label has ${entries.length} labels, but ${file} tensor '${headW}' has ${NL} outputs`,
    );
  for (const [k, v] of entries) {
    // canonical decimal keys only: "00", " 0" or "0x0" would each land on class 0 and overwrite it
    const i = /^(0|[1-9][0-9]*)$/.test(k) ? Number(k) : Number.NaN;
    if (!Number.isInteger(i) || i < 0 || i >= NL)
      throw new Error(`vit-wasm: ${CF}: id2label key ${JSON.stringify(k)} is not a class index 0…${NL - 1}`);
    labels[i] = String(v);
  }
  return labels;
}

/** An image tower's embedding size: its projection's rows, (P, D); projection_dim must agree. */
function projectionDimOf(raw: Record<string, unknown>, n: Names, t: Map<string, TensorInfo>, file: string, D: number) {
  const name = n.projection ?? '',
    stored = t.get(name)?.shape;
  if (!stored) throw new Error(`vit-wasm: ${file}: missing tensor '${name}'`);
  // open_clip's visual.proj is (D, P), applied as x · proj
  const shape = n.projectionTransposed && stored.length === 2 ? [stored[1], stored[0]] : stored;
  if (shape.length !== 2 || shape[1] !== D || !(shape[0] >= 1) || shape[0] > 65536)
    throw new Error(
      `vit-wasm: ${file}: tensor '${name}' has shape [${stored}], expected ${n.projectionTransposed ? `[${D}, projection_dim (1 to 65536)]` : `[projection_dim (1 to 65536), ${D}]`}`,
    );
  const said = intField(raw, 'projection_dim', CF);
  if (said !== undefined && said !== shape[0])
    throw new Error(`vit-wasm: ${CF} says projection_dim=${said}, but ${file} tensor '${name}' has shape [${stored}]`);
  return shape[0];
}

/**
 * The part of config.json the network's fields are in: a CLIPModel's `vision_config` (with the
 * top level's projection_dim, and its id2label: a CLIPForImageClassification's labels are the top
 * level's, where the sub-config may carry the default LABEL_0, LABEL_1), or the whole of it.
 */
export function networkConfig(raw: Record<string, unknown>, family: Family): Record<string, unknown> {
  const sub = family.subConfig ? raw[family.subConfig] : undefined;
  if (sub === undefined || sub === null) return raw;
  if (typeof sub !== 'object' || Array.isArray(sub))
    throw new Error(`vit-wasm: ${CF}: ${family.subConfig} must be an object, got ${JSON.stringify(sub).slice(0, 80)}`);
  const own = sub as Record<string, unknown>;
  return { projection_dim: raw.projection_dim, ...own, id2label: raw.id2label ?? own.id2label };
}

/** Reconciles config.json with the tensor shapes of a checkpoint recognised as `found`. */
export function resolveConfig(
  raw: Record<string, unknown>,
  found: Configured,
  t: Map<string, TensorInfo>,
  file: string,
  maxLabels: number,
): ViTConfig {
  const n = found.names,
    headless = found.arch.head === 'none' || found.arch.head === 'projection',
    w = weightDims(n, t, file, maxLabels, found.arch);
  checkAgreement(raw, w, n, t, file);
  const numHeads = headsOf(raw, w.D);
  const imageSize = imageSizeOf(raw, w, found.arch, n.pos, t, file);
  const layerNormEps = epsOf(raw, found);
  return {
    hiddenSize: w.D,
    numLayers: w.L,
    numHeads,
    intermediateSize: w.M,
    imageSize,
    patchSize: w.p,
    numChannels: w.C,
    numLabels: w.NL,
    layerNormEps,
    arch: found.arch,
    ...(found.arch.head === 'projection' ? { projectionDim: projectionDimOf(raw, n, t, file, w.D) } : {}),
    qkvBias: qkvBiasOf(raw, n, t, file),
    labels: headless ? [] : labelsOf(raw, w.NL, n.headW, file),
    raw,
  };
}
