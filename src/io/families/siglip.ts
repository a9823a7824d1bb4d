/**
 * SigLIP's vision tower (Zhai et al.), as Hugging Face's SiglipVisionModel and SiglipModel's vision
 * side compute it: patch tokens only (no class token), position embeddings on them, the ViT's
 * blocks with the tanh GELU (gelu_pytorch_tanh, hidden_act's default), post_layernorm on every
 * token, then the attention-pool head (SiglipMultiheadAttentionPoolingHead: a learned probe
 * attends over the tokens through torch's MultiheadAttention, then layernorm and MLP with a
 * residual): its output is the image embedding (pooler_output, get_image_features). A SiglipModel's
 * text tower, logit_scale and logit_bias are left for the zero-shot issue; its network fields are
 * under `vision_config`. With a classifier, SiglipForImageClassification: the mean of every
 * post_layernormed token through it.
 */
import { type Arch, PLAIN_VIT } from '../../nn/arch.js';
import { clipLayer } from './clip.js';
import { type ConfigRule, type Family, type Names, wb } from './family.js';
import { HF_RESIZE, VIT_FOREIGN_TENSORS } from './vit.js';

const P = 'vision_model.';

const SIGLIP_NAMES: Names = {
  patchW: `${P}embeddings.patch_embedding.weight`,
  patchB: `${P}embeddings.patch_embedding.bias`,
  pos: `${P}embeddings.position_embedding.weight`,
  normG: `${P}post_layernorm.weight`,
  normB: `${P}post_layernorm.bias`,
  headW: 'classifier.weight',
  headB: 'classifier.bias',
  mapHead: {
    probe: `${P}head.probe`,
    qkv: { inProj: [`${P}head.attention.in_proj_weight`, `${P}head.attention.in_proj_bias`] },
    proj: wb(`${P}head.attention.out_proj`),
    norm: wb(`${P}head.layernorm`),
    fc1: wb(`${P}head.mlp.fc1`),
    fc2: wb(`${P}head.mlp.fc2`),
  },
  layer: clipLayer,
  layerIndex: /^vision_model\.encoder\.layers\.(\d+)\./,
  // a SiglipModel's text side (read by the zero-shot issue)
  unused: /^(text_model\.|logit_scale$|logit_bias$)/,
};

/**
 * With a classifier, SiglipForImageClassification: the mean of every (post_layernormed) token,
 * then the classifier; its attention-pool head, where the checkpoint keeps it, is not read.
 */
function configureSiglip(
  _read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  if (!shape(names.headW)) {
    if (!shape(names.mapHead?.probe ?? ''))
      throw new Error(
        `vit-wasm: a SigLIP checkpoint without '${names.mapHead?.probe}' (its attention-pool head) or a classifier`,
      );
    return { arch, names };
  }
  return {
    arch: { ...arch, pooling: 'mean', head: 'linear' },
    names: { ...names, mapHead: undefined, unused: new RegExp(`${names.unused.source}|^vision_model\\.head\\.`) },
  };
}

/** SiglipVisionConfig fields that change the arithmetic (sizes, hidden_act and layer_norm_eps are read elsewhere). */
const SIGLIP_CONFIG_RULES: readonly ConfigRule[] = [
  { field: 'vision_use_head', computed: [true], feature: 'a SigLIP tower without its attention-pool head' },
];

export const SIGLIP: Family = {
  name: 'siglip',
  arch: Object.freeze({
    ...PLAIN_VIT,
    prefix: Object.freeze([] as const),
    positions: 'patches' as const,
    pooling: 'map' as const,
    head: 'none' as const,
  }),
  defaultHiddenAct: 'gelu_pytorch_tanh',
  subConfig: 'vision_config',
  configRules: SIGLIP_CONFIG_RULES,
  foreignTensors: VIT_FOREIGN_TENSORS.filter(([, feature]) => !feature.startsWith('an attention-pool head')),
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face SigLIP 'vision_model.head.probe'",
      detect: (t) =>
        (t.has(`${P}head.probe`) || t.has(SIGLIP_NAMES.headW)) &&
        t.has(SIGLIP_NAMES.pos) &&
        !t.has(`${P}pre_layrnorm.weight`)
          ? SIGLIP_NAMES
          : null,
      layerNormEps: 1e-6,
      resize: HF_RESIZE,
      configure: configureSiglip,
    },
  ],
};
