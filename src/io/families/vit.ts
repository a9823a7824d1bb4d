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
 * Every parameter of a Hugging Face ViTForImageClassification of this shape, in the order vit-wasm
 * lays them out and writes them (query, key and value back to back, so they form one (3D, D) matrix).
 */
export function hfParameters(c: ViTShape): HfParameter[] {
  const D = c.hiddenSize,
    M = c.intermediateSize,
    C = c.numChannels,
    p = c.patchSize,
    L = c.numLabels;
  const { T } = tokens(c),
    n = hfNames('vit.');
  const list: HfParameter[] = [];
  const add = (name: string, shape: number[], decay = false, init: HfParameter['init'] = decay ? 'normal' : 'zero') =>
    list.push({ name, shape, decay, init });
  add(n.patchW, [D, C, p, p], true);
  add(n.patchB, [D]);
  add(n.cls, [1, 1, D], false, 'normal');
  add(n.pos, [1, T, D], false, 'normal');
  for (let i = 0; i < c.numLayers; i++) {
    const l = n.layer(i);
    add(l.ln1[0], [D], false, 'one');
    add(l.ln1[1], [D]);
    for (const w of l.qkvW) add(w, [D, D], true);
    for (const b of l.qkvB) if (b) add(b, [D]);
    add(l.projW, [D, D], true);
    add(l.projB, [D]);
    add(l.ln2[0], [D], false, 'one');
    add(l.ln2[1], [D]);
    add(l.fc1W, [M, D], true);
    add(l.fc1B, [M]);
    add(l.fc2W, [D, M], true);
    add(l.fc2B, [D]);
  }
  add(n.normG, [D], false, 'one');
  add(n.normB, [D]);
  add(n.headW, [L, D], true);
  add(n.headB, [L]);
  return list;
}
