/**
 * CLIP's vision tower (Radford et al.), as Hugging Face's CLIPVisionModel,
 * CLIPVisionModelWithProjection and CLIPModel's vision side compute it: the ViT's blocks with
 * quick GELU (hidden_act's default), a class embedding, a patch embedding without bias, a
 * layernorm on the tokens before the first block (`pre_layrnorm`), the post layernorm on the cls
 * token (the pooler output), and where the checkpoint has one, `visual_projection` (no bias) to
 * the embedding space it shares with its text tower: an image tower (Arch.head 'projection').
 * A CLIPModel's text tower, text projection and logit scale are left as they are (the zero-shot
 * issue reads them); its network fields are under `vision_config`.
 */
import { type Arch, PLAIN_VIT } from '../../nn/arch.js';
import { type ConfigRule, type Family, type Names, wb } from './family.js';
import { HF_RESIZE, VIT_FOREIGN_TENSORS } from './vit.js';

const P = 'vision_model.';

/** Layer i of a CLIP-style vision tower (CLIP's, SigLIP's): layer_norm1/2, self_attn's q/k/v/out_proj, mlp.fc1/fc2. */
export function clipLayer(i: number): ReturnType<Names['layer']> {
  const l = `${P}encoder.layers.${i}.`,
    a = `${l}self_attn.`;
  return {
    ln1: wb(`${l}layer_norm1`),
    ln2: wb(`${l}layer_norm2`),
    qkvW: ['q', 'k', 'v'].map((q) => `${a}${q}_proj.weight`),
    qkvB: ['q', 'k', 'v'].map((q) => `${a}${q}_proj.bias`),
    projW: `${a}out_proj.weight`,
    projB: `${a}out_proj.bias`,
    fc1W: `${l}mlp.fc1.weight`,
    fc1B: `${l}mlp.fc1.bias`,
    fc2W: `${l}mlp.fc2.weight`,
    fc2B: `${l}mlp.fc2.bias`,
  };
}

const CLIP_NAMES: Names = {
  patchW: `${P}embeddings.patch_embedding.weight`,
  cls: `${P}embeddings.class_embedding`,
  pos: `${P}embeddings.position_embedding.weight`,
  embedNorm: wb(`${P}pre_layrnorm`),
  normG: `${P}post_layernorm.weight`,
  normB: `${P}post_layernorm.bias`,
  headW: 'classifier.weight',
  headB: 'classifier.bias',
  projection: 'visual_projection.weight',
  layer: clipLayer,
  layerIndex: /^vision_model\.encoder\.layers\.(\d+)\./,
  // a CLIPModel's text side (read by the zero-shot issue), and older checkpoints' position_ids buffer
  unused: /^(text_model\.|text_projection\.weight$|logit_scale$)|^vision_model\.embeddings\.position_ids$/,
};

/** With visual_projection an image tower; without (CLIPVisionModel) its pooler output is the embedding. */
function configureClip(
  _read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  return { arch: { ...arch, head: shape(names.projection ?? '') ? 'projection' : 'none' }, names };
}

/**
 * CLIPVisionConfig fields that change the arithmetic beyond the sizes, hidden_act and
 * layer_norm_eps read elsewhere: none (dropout and initialisation change nothing a forward gives).
 */
const CLIP_CONFIG_RULES: readonly ConfigRule[] = [];

export const CLIP: Family = {
  name: 'clip',
  arch: Object.freeze({ ...PLAIN_VIT, embedNorm: true, head: 'projection' as const }),
  defaultHiddenAct: 'quick_gelu',
  subConfig: 'vision_config',
  configRules: CLIP_CONFIG_RULES,
  foreignTensors: [
    ...VIT_FOREIGN_TENSORS.filter(([, feature]) => !feature.startsWith('a layernorm before the first block')),
    [/^classifier\./, "CLIPForImageClassification's head (the mean of the patch tokens before post_layernorm)"],
  ],
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face CLIP 'vision_model.pre_layrnorm.weight'",
      detect: (t) => (t.has(`${P}embeddings.class_embedding`) && t.has(`${P}pre_layrnorm.weight`) ? CLIP_NAMES : null),
      layerNormEps: 1e-5,
      resize: HF_RESIZE,
      configure: configureClip,
    },
  ],
};
