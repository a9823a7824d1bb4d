/**
 * The plain ViT family: the arithmetic of Dosovitskiy et al., and its three naming schemes —
 * Hugging Face ViTForImageClassification (also what vit-wasm writes), timm VisionTransformer and
 * torchvision vit_b_16 & co. The loader reads through them; the trainer, the presets and saved
 * models use the Hugging Face parameter list below.
 */
import { PLAIN_VIT } from '../../nn/arch.js';
import { tokens, type ViTShape } from '../../nn/shape.js';
import { type ConfigRule, type Family, type Names, wb } from './family.js';
import { TIMM_RESIZE, timmConfigure, timmNames } from './timm.js';

/** Hugging Face's interpolate_pos_encoding (ViT, DeiT, DINOv2): bicubic, from a square grid. */
export const HF_RESIZE = { mode: 'bicubic', squareGrid: true } as const;

/**
 * One layer's names in Hugging Face's ViT-style layout under `l` (ViT, DeiT, DINOv2, BEiT): the
 * norms and MLP layers as the family names them, Q, K and V under attention.attention, the output
 * projection under attention.output.dense.
 */
export function hfLayer(
  l: string,
  [ln1, ln2]: [string, string],
  [fc1, fc2]: [string, string],
): ReturnType<Names['layer']> {
  const a = `${l}attention.attention.`;
  return {
    ln1: wb(`${l}${ln1}`),
    ln2: wb(`${l}${ln2}`),
    qkvW: ['query', 'key', 'value'].map((q) => `${a}${q}.weight`),
    qkvB: ['query', 'key', 'value'].map((q) => `${a}${q}.bias`),
    projW: `${l}attention.output.dense.weight`,
    projB: `${l}attention.output.dense.bias`,
    fc1W: `${l}${fc1}.weight`,
    fc1B: `${l}${fc1}.bias`,
    fc2W: `${l}${fc2}.weight`,
    fc2B: `${l}${fc2}.bias`,
  };
}

export function hfNames(P: string): Names & { patchB: string; cls: string } {
  return {
    patchW: `${P}embeddings.patch_embeddings.projection.weight`,
    patchB: `${P}embeddings.patch_embeddings.projection.bias`,
    cls: `${P}embeddings.cls_token`,
    pos: `${P}embeddings.position_embeddings`,
    normG: `${P}layernorm.weight`,
    normB: `${P}layernorm.bias`,
    headW: 'classifier.weight',
    headB: 'classifier.bias',
    pooler: wb(`${P}pooler.dense`),
    layer: (i) =>
      hfLayer(
        `${P}encoder.layer.${i}.`,
        ['layernorm_before', 'layernorm_after'],
        ['intermediate.dense', 'output.dense'],
      ),
    layerIndex: new RegExp(`^${P.replace('.', '\\.')}encoder\\.layer\\.(\\d+)\\.`),
    unused: new RegExp(`^${P.replace('.', '\\.')}(pooler\\.dense\\.(weight|bias)|embeddings\\.mask_token)$`),
  };
}

function torchvisionNames(legacyMlp: boolean): Names {
  const [m1, m2] = legacyMlp ? ['linear_1', 'linear_2'] : ['0', '3'];
  return {
    patchW: 'conv_proj.weight',
    patchB: 'conv_proj.bias',
    cls: 'class_token',
    pos: 'encoder.pos_embedding',
    normG: 'encoder.ln.weight',
    normB: 'encoder.ln.bias',
    headW: 'heads.head.weight',
    headB: 'heads.head.bias',
    layer: (i) => {
      const l = `encoder.layers.encoder_layer_${i}.`;
      return {
        ln1: wb(`${l}ln_1`),
        ln2: wb(`${l}ln_2`),
        qkvW: [`${l}self_attention.in_proj_weight`],
        qkvB: [`${l}self_attention.in_proj_bias`],
        projW: `${l}self_attention.out_proj.weight`,
        projB: `${l}self_attention.out_proj.bias`,
        fc1W: `${l}mlp.${m1}.weight`,
        fc1B: `${l}mlp.${m1}.bias`,
        fc2W: `${l}mlp.${m2}.weight`,
        fc2B: `${l}mlp.${m2}.bias`,
      };
    },
    layerIndex: /^encoder\.layers\.encoder_layer_(\d+)\./,
    unused: /^$/,
  };
}

/**
 * Config fields of Hugging Face's ViTConfig and timm's VisionTransformer kwargs that change the
 * arithmetic, and the values the plain ViT computes. Sizes (hidden, depth, heads, MLP, image,
 * patch, channels, labels), `qkv_bias`, `layer_norm_eps` and `hidden_act` are read and checked
 * elsewhere; dropout rates do not change inference. A timm `dynamic_img_size` changes nothing at
 * the checkpoint's own image size.
 */
export const VIT_CONFIG_RULES: readonly ConfigRule[] = [
  {
    field: 'global_pool',
    computed: ['token'],
    alsoIn: { timm: ['avg', 'map'] },
    feature:
      "pooling other than the class token ('token') or, in timm's names, the mean of the patch tokens ('avg') or the attention pool ('map')",
  },
  {
    field: 'fc_norm',
    computed: [false],
    alsoIn: { timm: [true] },
    feature: "the final norm after pooling (fc_norm), which only timm's names express",
  },
  { field: 'class_token', computed: [true], alsoIn: { timm: [false] }, feature: 'a model without a class token' },
  {
    field: 'no_embed_class',
    computed: [false],
    alsoIn: { timm: [true] },
    feature: 'position embeddings over the patch tokens only',
  },
  { field: 'reg_tokens', computed: [0], alsoIn: { timm: 'any' }, feature: 'register tokens' },
  {
    field: 'init_values',
    computed: [],
    alsoIn: { timm: 'any' },
    feature: 'LayerScale (a learned per-channel scale on each residual branch)',
  },
  {
    field: 'pre_norm',
    computed: [false],
    alsoIn: { timm: [true] },
    feature: 'a layernorm before the first block (pre_norm, as in CLIP)',
  },
  { field: 'final_norm', computed: [true], feature: 'a model without its final layernorm' },
  { field: 'qk_norm', computed: [false], feature: 'layernorm of queries and keys (qk_norm)' },
  { field: 'scale_attn_norm', computed: [false], feature: 'a norm inside the attention (scale_attn_norm)' },
  { field: 'scale_mlp_norm', computed: [false], feature: 'a norm inside the MLP (scale_mlp_norm)' },
  { field: 'proj_bias', computed: [true], feature: 'projections without a bias' },
  { field: 'pos_embed', computed: ['learn'], feature: 'position embeddings other than learned ones' },
  { field: 'pool_include_prefix', computed: [false], feature: 'pooling over the prefix tokens too' },
  {
    field: 'act_layer',
    computed: ['gelu'],
    alsoIn: { timm: 'any' },
    feature: 'an MLP activation other than the exact GELU',
  },
  { field: 'norm_layer', computed: ['layernorm'], feature: 'a norm other than LayerNorm' },
  { field: 'embed_norm_layer', computed: [], feature: 'a norm after the patch embedding' },
  { field: 'pooler_act', computed: ['tanh'], feature: "a pooler activation other than tanh (embed's 'pooler')" },
];

/** Tensors of the ViT's relatives (DeiT, DINOv2, BEiT, CLIP, SigLIP, timm variants), by feature. */
export const VIT_FOREIGN_TENSORS: readonly [RegExp, string][] = [
  [
    /(^|\.)(dist_token|distillation_token)$|(^|\.)(head_dist|distillation_classifier)\./,
    'a distillation token and head (DeiT distilled)',
  ],
  [/(^|\.)(reg_token|register_tokens)$/, 'register tokens'],
  [
    /\.(ls1|ls2|layer_scale1|layer_scale2)\.(gamma|lambda1)$|\.(gamma_1|gamma_2|lambda_1|lambda_2)$/,
    'LayerScale (a learned per-channel scale on each residual branch)',
  ],
  [/(^|\.)fc_norm\./, 'the final norm after pooling (fc_norm)'],
  [/relative_position_(bias_table|index)$/, 'relative position bias (BEiT)'],
  [/(^|\.)(attn_pool|head\.attention|probe)(\.|$)/, 'an attention-pool head (MAP, SigLIP)'],
  [/(^|\.)(norm_pre|pre_layrnorm)\./, 'a layernorm before the first block (pre-norm, as in CLIP)'],
  [/(^|\.)(visual_projection|proj)$/, 'a projection of the pooled embedding (CLIP)'],
  [/\.(q_norm|k_norm)\./, 'layernorm of queries and keys (qk_norm)'],
  [/\.mlp\.(w12|w3|weights_in|weights_out|fc1_g|fc1_x)\./, 'a SwiGLU MLP'],
];

/** The plain ViT: one description, three naming schemes. */
export const VIT: Family = {
  name: 'vit',
  arch: PLAIN_VIT,
  defaultHiddenAct: 'gelu',
  configRules: VIT_CONFIG_RULES,
  foreignTensors: VIT_FOREIGN_TENSORS,
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face 'vit.embeddings.cls_token'",
      detect: (t) =>
        t.has('vit.embeddings.cls_token') ? hfNames('vit.') : t.has('embeddings.cls_token') ? hfNames('') : null,
      layerNormEps: 1e-12,
      resize: HF_RESIZE,
    },
    {
      scheme: 'timm',
      marker: "timm 'pos_embed'/'cls_token'",
      // with class_token=False (timm's SigLIP towers) there is no cls_token: the patch embedding and blocks say timm
      detect: (t) =>
        t.has('pos_embed') &&
        (t.has('cls_token') || (t.has('patch_embed.proj.weight') && t.has('blocks.0.norm1.weight')))
          ? timmNames
          : null,
      layerNormEps: 1e-6,
      resize: TIMM_RESIZE,
      configure: timmConfigure,
    },
    {
      scheme: 'torchvision',
      marker: "torchvision 'class_token'/'conv_proj.weight'",
      detect: (t) =>
        t.has('class_token') && t.has('conv_proj.weight')
          ? torchvisionNames(t.has('encoder.layers.encoder_layer_0.mlp.linear_1.weight'))
          : null,
      layerNormEps: 1e-6,
      // torchvision's interpolate_embeddings: bicubic with aligned corners, from and to square grids
      resize: { mode: 'bicubicAligned', squareGrid: true, squareImages: true },
    },
  ],
};

/**
 * One parameter of a Hugging Face ViT: its name, its shape, whether AdamW decays it (the matrices),
 * and how HF initialises it: `normal` N(0, 0.02) (matrices, cls token, position embeddings), `one`
 * (layernorm γ) or `zero` (biases, layernorm β).
 */
export interface HfParameter {
  name: string;
  shape: number[];
  decay: boolean;
  init: 'normal' | 'one' | 'zero';
}

/**
 * A parameter of a model in a family's Hugging Face names: also its place in the network (`role`:
 * 'patch.w', 'cls', '3.qkv.w.0' the query of block 3, '3.ls1', 'head.b', …) and its depth (0 the
 * embeddings, i + 1 block i, L + 1 the final norm and the head).
 */
export interface FamilyParameter extends HfParameter {
  role: string;
  depth: number;
  /** A part the arithmetic needs that the checkpoint has not (CLIP's patch bias): zero, never trained or written. */
  fixed?: boolean;
}

/**
 * Every parameter of a model of shape `c` (its arch) in names `n`, in the order vit-wasm lays them
 * out and writes them: the embeddings, each block (query, key and value back to back, so they form
 * one (3D, D) matrix; LayerScale's γ after its branch), the final norm, the classifier on what the
 * pooling gives. `style` 'clip': CLIP's and SigLIP's token tensors, the class embedding (D) and
 * the positions (T, D), instead of (1, 1, D) and (1, T, D).
 */
export function familyParameters(c: ViTShape, n: Names, style: 'hf' | 'clip' = 'hf'): FamilyParameter[] {
  const D = c.hiddenSize,
    C = c.numChannels,
    p = c.patchSize,
    L = c.numLabels,
    arch = c.arch ?? PLAIN_VIT,
    { T } = tokens(c),
    top = c.numLayers + 1;
  const list: FamilyParameter[] = [],
    add = adder(list);
  add(n.patchW, [D, C, p, p], 'patch.w', 0, 'normal', true);
  if (n.patchB) add(n.patchB, [D], 'patch.b', 0);
  else
    list.push({
      name: '(no patch bias)',
      shape: [D],
      decay: false,
      init: 'zero',
      role: 'patch.b',
      depth: 0,
      fixed: true,
    });
  const R = arch.prefix.filter((t) => t === 'reg').length;
  for (const t of arch.prefix) {
    // the register tokens are one (1, R, D) tensor, after the cls token
    if (t === 'reg' && !list.some((p) => p.role === 'registers'))
      add(need(n.registers), [1, R, D], 'registers', 0, 'normal');
    if (t === 'reg') continue;
    const name = t === 'cls' ? n.cls : n.dist;
    if (!name) throw new Error(`vit-wasm: internal: no name for the '${t}' token`);
    add(name, style === 'clip' ? [D] : [1, 1, D], t, 0, 'normal');
  }
  // positions on every token but the registers (DINOv2 with registers): T − R rows
  const rows = arch.positions === 'notRegisters' ? T - R : T;
  if (arch.positions === 'none')
    // BEiT without absolute positions: the forward adds a zero table
    list.push({
      name: '(no position embeddings)',
      shape: [T, D],
      decay: false,
      init: 'zero',
      role: 'pos',
      depth: 0,
      fixed: true,
    });
  else add(n.pos, style === 'clip' ? [rows, D] : [1, rows, D], 'pos', 0, 'normal');
  if (arch.embedNorm) {
    if (!n.embedNorm) throw new Error('vit-wasm: internal: a pre-norm arch without its names');
    add(n.embedNorm[0], [D], 'embedNorm.g', 0, 'one');
    add(n.embedNorm[1], [D], 'embedNorm.b', 0);
  }
  for (let i = 0; i < c.numLayers; i++) blockParameters(c, n, i, list, add);
  add(n.normG, [D], 'norm.g', top, 'one');
  add(n.normB, [D], 'norm.b', top);
  add(n.headW, [L, arch.pooling === 'clsMean' ? 2 * D : D], 'head.w', top, 'normal', true);
  add(n.headB, [L], 'head.b', top);
  return list;
}

/** Appends a parameter to `list`: name, shape, role, depth, HF's init (zero by default), whether AdamW decays it. */
function adder(list: FamilyParameter[]) {
  return (
    name: string,
    shape: number[],
    role: string,
    depth: number,
    init: HfParameter['init'] = 'zero',
    decay = false,
  ) => list.push({ name, shape, decay, init, role, depth });
}

/** Block i's parameters (familyParameters), appended to `list`. */
function blockParameters(
  c: ViTShape,
  n: Names,
  i: number,
  list: FamilyParameter[],
  add: ReturnType<typeof adder>,
): void {
  const D = c.hiddenSize,
    M = c.intermediateSize,
    arch = c.arch ?? PLAIN_VIT,
    top = c.numLayers + 1;
  const l = n.layer(i),
    d = i + 1;
  add(l.ln1[0], [D], `${i}.ln1.g`, d, 'one');
  add(l.ln1[1], [D], `${i}.ln1.b`, d);
  const per = l.qkvW.length === 3 ? D : 3 * D;
  l.qkvW.forEach((w, j) => add(w, [per, D], `${i}.qkv.w.${j}`, d, 'normal', true));
  l.qkvB.forEach((b, j) => {
    if (b === null)
      // BEiT's key has no bias: a zero one between the query's and the value's, never trained
      list.push({
        name: `(no bias ${i}.${j})`,
        shape: [per],
        decay: false,
        init: 'zero',
        role: `${i}.qkv.b.${j}`,
        depth: d,
        fixed: true,
      });
    else add(b, [per], `${i}.qkv.b.${j}`, d);
  });
  add(l.projW, [D, D], `${i}.proj.w`, d, 'normal', true);
  add(l.projB, [D], `${i}.proj.b`, d);
  if (arch.layerScale) add(need(l.ls1), [D], `${i}.ls1`, d, 'one');
  add(l.ln2[0], [D], `${i}.ln2.g`, d, 'one');
  add(l.ln2[1], [D], `${i}.ln2.b`, d);
  add(l.fc1W, [M, D], `${i}.fc1.w`, d, 'normal', true);
  add(l.fc1B, [M], `${i}.fc1.b`, d);
  add(l.fc2W, [D, M], `${i}.fc2.w`, d, 'normal', true);
  add(l.fc2B, [D], `${i}.fc2.b`, d);
  if (arch.layerScale) add(need(l.ls2), [D], `${i}.ls2`, d, 'one');
  // BEiT's relative position bias: the layer's table, or the encoder's shared one once (at the top depth, as BEiT's layer decay puts it)
  if (arch.attentionBias === 'relative') {
    const table = l.relBias ?? '',
      shared = table === n.layer((i + 1) % c.numLayers).relBias && c.numLayers > 1;
    if (!shared) add(table, [relativeRows(c), c.numHeads], `${i}.relTable`, d);
    else if (i === 0) add(table, [relativeRows(c), c.numHeads], 'relTable', top);
  }
}

/** Rows of BEiT's relative position bias table at `c`'s window: (2Wh − 1)(2Ww − 1) offsets and the cls token's 3. */
export function relativeRows(c: ViTShape): number {
  const wh = c.imageSize[0] / c.patchSize,
    ww = c.imageSize[1] / c.patchSize;
  return (2 * wh - 1) * (2 * ww - 1) + 3;
}

/** A LayerScale name the arch needs, or an internal error. */
function need(name: string | undefined): string {
  if (name === undefined) throw new Error('vit-wasm: internal: an arch part (LayerScale, registers) without its names');
  return name;
}

/**
 * Every parameter of a Hugging Face ViTForImageClassification of this shape, in the order vit-wasm
 * lays them out and writes them (query, key and value back to back, so they form one (3D, D) matrix).
 */
export function hfParameters(c: ViTShape): HfParameter[] {
  return familyParameters({ ...c, arch: PLAIN_VIT }, hfNames('vit.')).map(({ name, shape, decay, init }) => ({
    name,
    shape,
    decay,
    init,
  }));
}
