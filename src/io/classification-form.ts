/**
 * A checkpoint's image-classification form, in its own family's names: which of its tensors the
 * classifier's model leaves out (a DeiT's teacher heads, CLIP's text tower and projections), the
 * prefix its backbone takes under a classifier (a ViTModel's or Dinov2Model's names have none),
 * the classifier's tensors, and its config.json (architectures, id2label; a CLIPVisionModel's flat
 * config becomes a CLIPConfig's vision_config). The linear probe (src/model/probe.ts) and
 * fine-tuning (src/train/spec.ts) write their models so.
 */
import type { Arch } from '../nn/arch.js';
import type { TensorOut } from './safetensors.js';

/**
 * Hugging Face's classification class of each family, the prefix its backbone's names take there,
 * the tensors it leaves out, the config it nests under (CLIPConfig, SiglipConfig), and what its
 * classifier reads (`arch`: the arithmetic of the family's ForImageClassification model).
 */
export const HF_FORMS: Record<
  string,
  { arch: string; prefix?: string; drop?: RegExp; wrap?: string; reads: (a: Arch) => Arch }
> = {
  vit: { arch: 'ViTForImageClassification', prefix: 'vit.', reads: (a) => ({ ...a, head: 'linear' }) },
  // DeiTForImageClassification: the cls token alone, the teacher's heads left out
  deit: {
    arch: 'DeiTForImageClassification',
    drop: /^(cls_classifier|distillation_classifier)\./,
    reads: (a) => ({ ...a, head: 'linear' }),
  },
  // the final-normed cls token and the mean of the patch tokens side by side
  dinov2: {
    arch: 'Dinov2ForImageClassification',
    prefix: 'dinov2.',
    reads: (a) => ({ ...a, pooling: 'clsMean', head: 'linear' }),
  },
  beit: { arch: 'BeitForImageClassification', reads: (a) => ({ ...a, head: 'linear' }) },
  // the text tower and both projections are not part of the classifier's model; it reads the
  // mean of the patch tokens before post_layernorm
  clip: {
    arch: 'CLIPForImageClassification',
    drop: /^(text_model\.|text_projection\.|visual_projection\.|logit_scale$)/,
    wrap: 'clip',
    reads: (a) => ({ ...a, pooling: 'mean', finalNorm: 'none', head: 'linear' }),
  },
  // the mean of every post_layernormed token (the attention-pool head kept, not read)
  siglip: {
    arch: 'SiglipForImageClassification',
    drop: /^(text_model\.|logit_scale$|logit_bias$)/,
    wrap: 'siglip',
    reads: (a) => ({ ...a, pooling: 'mean', finalNorm: 'tokens', head: 'linear' }),
  },
};

/**
 * How a checkpoint of `family` in `scheme` becomes its classification form: tensors left out,
 * names changed, the classifier's names, the config, and whether the classifier reads 2D floats.
 */
export function classificationForm(
  family: string,
  scheme: string,
  names: { patchW: string; registers?: string },
  tensors: ReadonlySet<string>,
  config: Record<string, unknown>,
  labels: string[],
  file: string,
) {
  const L = labels.length,
    id2label = Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  const linear =
    (w: string, bias: string) =>
    (W: Float32Array, b: Float32Array, L: number, F: number): TensorOut[] => [
      { name: w, shape: [L, F], data: W },
      { name: bias, shape: [L], data: b },
    ];
  if (scheme === 'timm') {
    // timm's classifier is `head`; a DeiT (VisionTransformerDistilled) always averages it with
    // `head_dist` on its distillation token: head 2W, 2b and head_dist zero average to exactly W, b
    // (scaling by 2 is exact in floats)
    const distilled = tensors.has('head_dist.weight');
    const pcfg = config.pretrained_cfg;
    return {
      drop: (n: string) => /^head(_dist)?\./.test(n),
      rename: (n: string) => n,
      head: distilled
        ? (W: Float32Array, b: Float32Array, L: number, F: number): TensorOut[] => [
            ...linear('head.weight', 'head.bias')(
              W.map((v) => 2 * v),
              b.map((v) => 2 * v),
              L,
              F,
            ),
            ...linear('head_dist.weight', 'head_dist.bias')(new Float32Array(L * F), new Float32Array(L), L, F),
          ]
        : linear('head.weight', 'head.bias'),
      hidden: names.patchW,
      bothTokens: false,
      config: {
        ...config,
        num_classes: L,
        label_names: labels,
        id2label,
        ...(pcfg && typeof pcfg === 'object'
          ? { pretrained_cfg: { ...pcfg, num_classes: L, label_names: labels } }
          : {}),
      },
    };
  }
  const form = HF_FORMS[family];
  if (scheme !== 'hf' || !form)
    throw new Error(
      `vit-wasm: ${file}: a linear probe writes its model in the checkpoint's own names with a classifier; ${scheme} checkpoints have no classifier form vit-wasm writes (Hugging Face and timm checkpoints do)`,
    );
  // a backbone saved alone (ViTModel, Dinov2Model) has no prefix; under a classifier it has one
  const prefix = form.prefix && names.patchW.startsWith('embeddings.') ? form.prefix : '';
  const registers = family === 'dinov2' && names.registers !== undefined && tensors.has(names.registers);
  const at = prefix && registers ? 'dinov2_with_registers.' : prefix;
  const arch = registers ? 'Dinov2WithRegistersForImageClassification' : form.arch;
  const top: Record<string, unknown> = { ...config, architectures: [arch], id2label, label2id };
  delete top.num_labels; // (id2label says it)
  // a CLIPVisionModel's flat config becomes a CLIPConfig's vision_config, where the classifier's model reads it
  const flat = form.wrap && config.vision_config === undefined;
  return {
    drop: (n: string) => /^classifier\./.test(n) || (form.drop?.test(n) ?? false),
    rename: (n: string) => at + n,
    head: linear('classifier.weight', 'classifier.bias'),
    hidden: names.patchW,
    bothTokens: family === 'dinov2',
    config: flat
      ? {
          model_type: form.wrap,
          architectures: [arch],
          id2label,
          label2id,
          vision_config: { ...config, architectures: undefined },
        }
      : top,
  };
}

/** What {@link classificationForm} gives. */
export type ClassificationForm = ReturnType<typeof classificationForm>;
