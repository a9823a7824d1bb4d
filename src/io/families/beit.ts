/**
 * BEiT (Bao et al.), as Hugging Face's BeitForImageClassification and BeitModel compute it: the
 * ViT's blocks with a relative position bias added to every head's attention scores (one table per
 * layer, or the encoder's shared one: `relative_position_bias_table`, indexed as
 * BeitRelativePositionBias.generate_relative_position_index does), a key projection without bias,
 * LayerScale (`lambda_1`, `lambda_2`, folded into proj and fc2 at load), absolute position
 * embeddings only where the config asks for them, and the head on the mean of the patch tokens
 * through the pooler's layernorm (use_mean_pooling) or on the final-normed cls token.
 * At another image size (`loadModel(dir, { imageSize })`) the bias tables are resized bilinearly
 * as BeitRelativePositionBias.forward does (src/io/weight-loader.ts), and absolute positions
 * bicubic as its interpolate_pos_encoding does (the ViT's).
 */
import { type Arch, PLAIN_VIT } from '../../nn/arch.js';
import type { ConfigRule, Family, Names } from './family.js';
import { HF_RESIZE, hfLayer, hfNames, VIT_FOREIGN_TENSORS } from './vit.js';

const SHARED_TABLE = 'beit.encoder.relative_position_bias.relative_position_bias_table';

/** Hugging Face's BEiT names: the table per layer, or the encoder's shared one (configure). */
function beitNames(shared: boolean): Names {
  const P = 'beit.';
  return {
    ...hfNames(P), // the embeddings, the final layernorm and the classifier are named as the ViT's
    pooler: undefined, // BEiT's pooler is a layernorm (use_mean_pooling: configure), not a dense layer
    layer: (i) => {
      const l = `${P}encoder.layer.${i}.`,
        a = `${l}attention.attention.`;
      return {
        ...hfLayer(l, ['layernorm_before', 'layernorm_after'], ['intermediate.dense', 'output.dense']),
        qkvB: [`${a}query.bias`, null, `${a}value.bias`], // BEiT's key projection has no bias
        ls1: `${l}lambda_1`,
        ls2: `${l}lambda_2`,
        relBias: shared ? SHARED_TABLE : `${a}relative_position_bias.relative_position_bias_table`,
      };
    },
    layerIndex: /^beit\.encoder\.layer\.(\d+)\./,
    // the index buffers older checkpoints save (HF ignores them too: they follow from the window)
    unused: /(^beit\.embeddings\.mask_token$|relative_position_index$)/,
  };
}

/**
 * The arithmetic as the tensors and config say: the shared or per-layer table, LayerScale where
 * lambda_1 is, absolute positions where position_embeddings is, the pooler's layernorm on the mean
 * (use_mean_pooling, transformers' default) or the final layernorm on the cls token.
 */
function configureBeit(
  read: (field: string) => unknown,
  arch: Arch,
  _names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  const shared = shape(SHARED_TABLE) !== undefined,
    names = beitNames(shared);
  const perLayer = shape(beitNames(false).layer(0).relBias ?? '') !== undefined;
  if (read('use_shared_relative_position_bias') === true && !shared)
    throw new Error(
      `vit-wasm: config.json says use_shared_relative_position_bias=true, but there is no tensor '${SHARED_TABLE}'`,
    );
  if (shared && perLayer)
    throw new Error(
      'vit-wasm: the checkpoint has a shared relative position bias table and per-layer ones: BEiT uses one or the other',
    );
  if (!shared && !perLayer)
    throw new Error(
      `vit-wasm: missing tensor '${beitNames(false).layer(0).relBias}' (BEiT without a relative position bias is not supported yet)`,
    );
  const mean = read('use_mean_pooling') ?? true;
  return {
    arch: {
      ...arch,
      positions: shape(names.pos) ? 'all' : 'none',
      layerScale: shape(names.layer(0).ls1 ?? '') !== undefined,
      pooling: mean ? 'mean' : 'cls',
      finalNorm: mean ? 'pooled' : 'tokens',
    },
    names: mean ? { ...names, normG: 'beit.pooler.layernorm.weight', normB: 'beit.pooler.layernorm.bias' } : names,
  };
}

/** BeitConfig fields that change the arithmetic beyond the sizes, hidden_act and layer_norm_eps read elsewhere. */
const BEIT_CONFIG_RULES: readonly ConfigRule[] = [
  { field: 'use_relative_position_bias', computed: [true, false], feature: 'relative position bias' },
  { field: 'use_mean_pooling', computed: [true, false], feature: 'mean pooling' },
];

export const BEIT: Family = {
  name: 'beit',
  arch: Object.freeze({ ...PLAIN_VIT, attentionBias: 'relative' as const }),
  defaultHiddenAct: 'gelu',
  configRules: BEIT_CONFIG_RULES,
  foreignTensors: VIT_FOREIGN_TENSORS.filter(
    ([, feature]) => !feature.startsWith('relative position bias') && !feature.startsWith('LayerScale'),
  ),
  schemes: [
    {
      scheme: 'hf',
      marker: "Hugging Face BEiT 'beit.embeddings.cls_token'",
      detect: (t) => (t.has('beit.embeddings.cls_token') ? beitNames(t.has(SHARED_TABLE)) : null),
      layerNormEps: 1e-12,
      resize: HF_RESIZE,
      configure: configureBeit,
    },
  ],
};
