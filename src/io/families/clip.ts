/**
 * CLIP's vision tower (Radford et al.), as Hugging Face's CLIPVisionModel,
 * CLIPVisionModelWithProjection and CLIPModel's vision side compute it: the ViT's blocks with
 * quick GELU (hidden_act's default), a class embedding, a patch embedding without bias, a
 * layernorm on the tokens before the first block (`pre_layrnorm`), the post layernorm on the cls
 * token (the pooler output), and where the checkpoint has one, `visual_projection` (no bias) to
 * the embedding space it shares with its text tower: an image tower (Arch.head 'projection'); or
 * CLIPForImageClassification's classifier on the mean of the patch tokens before post_layernorm.
 * A CLIPModel's text tower, text projection and logit scale are left as they are (the zero-shot
 * issue reads them); its network fields are under `vision_config`.
 * open_clip's VisionTransformer is the same tower under its own names (`visual.*`: one in_proj
 * for Q, K and V, `mlp.c_fc`/`c_proj`, `ls_1/ls_2.gamma` LayerScale where ls_init_value was set,
 * `visual.proj` applied as x · proj) with its pool_type ('tok', or 'avg' with the norm before or
 * after the mean: final_ln_after_pool) and no_ln_pre; its config is open_clip_config.json, read
 * as this family's by src/io/open-clip.ts.
 */
import { type Arch, PLAIN_VIT } from '../../nn/arch.js';
import { type ConfigRule, type Family, type Names, wb } from './family.js';
import { TIMM_RESIZE } from './timm.js';
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

/** open_clip's VisionTransformer names (`visual.*`); its text side is left for the zero-shot issue. */
const OPEN_CLIP_NAMES: Names = {
  patchW: 'visual.conv1.weight',
  cls: 'visual.class_embedding',
  pos: 'visual.positional_embedding',
  embedNorm: wb('visual.ln_pre'),
  normG: 'visual.ln_post.weight',
  normB: 'visual.ln_post.bias',
  headW: 'visual.head.weight',
  headB: 'visual.head.bias',
  projection: 'visual.proj',
  projectionTransposed: true,
  layer: (i) => {
    const l = `visual.transformer.resblocks.${i}.`;
    return {
      ln1: wb(`${l}ln_1`),
      ln2: wb(`${l}ln_2`),
      qkvW: [`${l}attn.in_proj_weight`],
      qkvB: [`${l}attn.in_proj_bias`],
      projW: `${l}attn.out_proj.weight`,
      projB: `${l}attn.out_proj.bias`,
      fc1W: `${l}mlp.c_fc.weight`,
      fc1B: `${l}mlp.c_fc.bias`,
      fc2W: `${l}mlp.c_proj.weight`,
      fc2B: `${l}mlp.c_proj.bias`,
      ls1: `${l}ls_1.gamma`,
      ls2: `${l}ls_2.gamma`,
    };
  },
  layerIndex: /^visual\.transformer\.resblocks\.(\d+)\./,
  // the text tower (CLIP's at the top level, CustomTextCLIP's under text.), its projection, the logit scale and bias
  unused:
    /^(token_embedding\.|positional_embedding$|transformer\.|ln_final\.|text_projection(\.weight)?$|logit_scale$|logit_bias$|attn_mask$|text\.)/,
};

/**
 * open_clip's tower as its tensors and vision_cfg say: ln_pre unless no_ln_pre, LayerScale where
 * ls_1.gamma is (ls_init_value), the projection where visual.proj is, and the pooling: 'tok' the
 * final-normed cls token; 'avg' the mean of the patch tokens, ln_post on every token before it or,
 * with final_ln_after_pool, on the mean.
 */
function configureOpenClip(
  read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  const lnPre = shape('visual.ln_pre.weight') !== undefined;
  if (read('no_ln_pre') === lnPre)
    throw new Error(
      `vit-wasm: open_clip_config.json says no_ln_pre=${lnPre}, but the checkpoint ${lnPre ? 'has' : 'has no'} tensor 'visual.ln_pre.weight'`,
    );
  const layerScale = shape(names.layer(0).ls1 ?? '') !== undefined,
    initValue = read('ls_init_value');
  if (initValue !== null && initValue !== undefined && !layerScale)
    throw new Error(
      `vit-wasm: open_clip_config.json: ls_init_value ${JSON.stringify(initValue)} asks for LayerScale, but there is no tensor '${names.layer(0).ls1}'`,
    );
  const avg = read('pool_type') === 'avg',
    after = read('final_ln_after_pool') === true;
  return {
    arch: {
      ...arch,
      embedNorm: lnPre,
      layerScale,
      pooling: avg ? 'mean' : 'cls',
      finalNorm: avg && after ? 'pooled' : 'tokens',
      head: shape('visual.proj') ? 'projection' : 'none',
    },
    names: lnPre ? names : { ...names, embedNorm: undefined },
  };
}

/**
 * With visual_projection an image tower; without (CLIPVisionModel) its pooler output is the
 * embedding; with a classifier, CLIPForImageClassification: the mean of the patch tokens as the
 * last block leaves them (post_layernorm only makes the pooler output), then the classifier.
 */
function configureClip(
  _read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  if (shape(names.headW) && shape(names.projection ?? ''))
    throw new Error(
      `vit-wasm: a CLIP checkpoint with both '${names.headW}' (CLIPForImageClassification) and '${names.projection}' (an image tower): which is it?`,
    );
  if (shape(names.headW)) return { arch: { ...arch, pooling: 'mean', finalNorm: 'none', head: 'linear' }, names };
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
  foreignTensors: VIT_FOREIGN_TENSORS.filter(
    ([, feature]) => !feature.startsWith('a layernorm before the first block'),
  ),
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face CLIP 'vision_model.pre_layrnorm.weight'",
      detect: (t) => (t.has(`${P}embeddings.class_embedding`) && t.has(`${P}pre_layrnorm.weight`) ? CLIP_NAMES : null),
      layerNormEps: 1e-5,
      resize: HF_RESIZE,
      configure: configureClip,
    },
    {
      scheme: 'open_clip',
      marker: "open_clip 'visual.class_embedding'",
      detect: (t) => (t.has('visual.class_embedding') && t.has('visual.conv1.weight') ? OPEN_CLIP_NAMES : null),
      layerNormEps: 1e-5,
      // open_clip's resize_pos_embed: bicubic with antialiasing, from the square grid the positions make
      resize: { ...TIMM_RESIZE, squareGrid: true },
      configure: configureOpenClip,
    },
  ],
};
