/**
 * DeiT (Touvron et al.): the ViT with a second prefix token, the distillation token, after the
 * class token, each with its own position embedding. Hugging Face's DeiTForImageClassification
 * reads the class token only; DeiTForImageClassificationWithTeacher and timm's deit_*_distilled
 * average a head on the class token with one on the distillation token (the "distilled" head).
 * Hugging Face names (`deit.`) and timm's (`dist_token`, `head_dist`); the blocks are the ViT's.
 */
import { type Arch, PLAIN_VIT } from '../../nn/arch.js';
import type { Family, Names } from './family.js';
import { TIMM_RESIZE, timmNames } from './timm.js';
import { HF_RESIZE, hfNames, VIT_CONFIG_RULES, VIT_FOREIGN_TENSORS } from './vit.js';

/** DeiT's tokens: cls, dist, then the patches; the head as the checkpoint has it (configure). */
const DEIT_ARCH: Arch = Object.freeze({ ...PLAIN_VIT, prefix: Object.freeze(['cls', 'dist'] as const) });

/** Hugging Face's DeiT names: the ViT's under `deit.`, the distillation token, the heads it has. */
function hfDeitNames(t: ReadonlySet<string>): Names {
  const n = hfNames('deit.'),
    teacher = t.has('cls_classifier.weight');
  return {
    ...n,
    dist: 'deit.embeddings.distillation_token',
    headW: teacher ? 'cls_classifier.weight' : n.headW,
    headB: teacher ? 'cls_classifier.bias' : n.headB,
    ...(t.has('distillation_classifier.weight')
      ? { headDistW: 'distillation_classifier.weight', headDistB: 'distillation_classifier.bias' }
      : {}),
  };
}

/** A second head on the distillation token makes the head `distilled`; without one, the class token's head alone. */
const distilledWhereTheHeadIs = (_read: (f: string) => unknown, arch: Arch, names: Names) => ({
  arch: { ...arch, head: names.headDistW ? ('distilled' as const) : ('linear' as const) },
  names,
});

/** Pooling other than the class token is not a DeiT's: timm's VisionTransformerDistilled asserts 'token'. */
const DEIT_CONFIG_RULES = VIT_CONFIG_RULES.map(({ alsoIn: _, ...rule }) => rule);

export const DEIT: Family = {
  name: 'deit',
  arch: DEIT_ARCH,
  defaultHiddenAct: 'gelu',
  configRules: DEIT_CONFIG_RULES,
  // a DeiT's own tokens and heads are read; the rest of the ViT's relatives are still foreign
  foreignTensors: VIT_FOREIGN_TENSORS.filter(([, feature]) => !feature.startsWith('a distillation token')),
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face DeiT 'deit.embeddings.distillation_token'",
      detect: (t) => (t.has('deit.embeddings.distillation_token') ? hfDeitNames(t) : null),
      layerNormEps: 1e-12,
      resize: HF_RESIZE,
      configure: distilledWhereTheHeadIs,
    },
    {
      scheme: 'timm',
      marker: "timm DeiT 'dist_token'",
      detect: (t) =>
        t.has('dist_token') && t.has('pos_embed')
          ? { ...timmNames, dist: 'dist_token', headDistW: 'head_dist.weight', headDistB: 'head_dist.bias' }
          : null,
      layerNormEps: 1e-6,
      resize: TIMM_RESIZE,
      configure: distilledWhereTheHeadIs,
    },
  ],
};
