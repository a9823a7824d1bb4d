/**
 * DINOv2 (Oquab et al.), as Hugging Face's Dinov2Model / Dinov2ForImageClassification and
 * Dinov2WithRegistersModel / …ForImageClassification compute it: the ViT's blocks with LayerScale
 * on both branches (`layer_scale1/2.lambda1`, folded into proj and fc2 by the loader), the final
 * layernorm on every token, and
 *   - with registers: register tokens after the cls token, added after the position embeddings
 *     (so they have none);
 *   - the classifier on the cls token and the mean of the patch tokens side by side (2D inputs);
 *     without one, the model's pooler output is the final-normed cls token;
 *   - positions at another size: Dinov2 resizes them bicubic (A = −0.75), Dinov2WithRegisters with
 *     antialiasing (src/io/positions.ts). The published checkpoints carry 518-px positions (37×37)
 *     and are run at 224: `loadModel(dir, { imageSize: 224 })`.
 */
import { type Arch, MAX_REGISTERS, PLAIN_VIT } from '../../nn/arch.js';
import type { ConfigRule, Family, Names, SchemeSpec } from './family.js';
import { hfLayer, VIT_FOREIGN_TENSORS } from './vit.js';

/** Hugging Face's DINOv2 names under prefix `P` ('' for the model alone, 'dinov2.' or 'dinov2_with_registers.' under a classifier). */
function dinov2Names(P: string): Names {
  const esc = P.replaceAll('.', '\\.');
  return {
    patchW: `${P}embeddings.patch_embeddings.projection.weight`,
    patchB: `${P}embeddings.patch_embeddings.projection.bias`,
    cls: `${P}embeddings.cls_token`,
    pos: `${P}embeddings.position_embeddings`,
    registers: `${P}embeddings.register_tokens`,
    normG: `${P}layernorm.weight`,
    normB: `${P}layernorm.bias`,
    headW: 'classifier.weight',
    headB: 'classifier.bias',
    layer: (i) => {
      const l = `${P}encoder.layer.${i}.`;
      return {
        ...hfLayer(l, ['norm1', 'norm2'], ['mlp.fc1', 'mlp.fc2']),
        ls1: `${l}layer_scale1.lambda1`,
        ls2: `${l}layer_scale2.lambda1`,
      };
    },
    layerIndex: new RegExp(`^${esc}encoder\\.layer\\.(\\d+)\\.`),
    // the mask token replaces masked patches in pre-training only
    unused: new RegExp(`^${esc}embeddings\\.mask_token$`),
  };
}

/** The prefix a checkpoint's DINOv2 names sit under, with or without registers; null when not DINOv2's. */
function detectPrefix(t: ReadonlySet<string>, registers: boolean): string | null {
  for (const P of registers ? ['', 'dinov2_with_registers.'] : ['', 'dinov2.'])
    if (
      t.has(`${P}embeddings.patch_embeddings.projection.weight`) &&
      t.has(`${P}encoder.layer.0.layer_scale1.lambda1`) &&
      t.has(`${P}embeddings.register_tokens`) === registers
    )
      return P;
  return null;
}

/**
 * The arithmetic as the tensors and config say: the registers counted off their tensor (the
 * config's num_register_tokens must agree), the head (cls ⊕ mean) where there is a classifier.
 */
function configureDinov2(
  read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  const regShape = shape(names.registers ?? '');
  let prefix = arch.prefix;
  if (regShape) {
    const n = regShape.length === 3 && regShape[0] === 1 ? regShape[1] : -1;
    if (!(n >= 1 && n <= MAX_REGISTERS))
      throw new Error(
        `vit-wasm: tensor '${names.registers}' has shape [${regShape}], expected [1, registers (1 to ${MAX_REGISTERS}), hidden]`,
      );
    const said = read('num_register_tokens');
    if (said !== undefined && said !== n)
      throw new Error(
        `vit-wasm: config.json says num_register_tokens=${JSON.stringify(said)}, but tensor '${names.registers}' has shape [${regShape}] (${n} registers)`,
      );
    prefix = ['cls', ...Array<'reg'>(n).fill('reg')];
  }
  // the MLP's size is int(hidden_size · mlp_ratio) in Dinov2MLP: the config must say the weights' size
  const ratio = read('mlp_ratio'),
    D = shape(names.patchW)?.[0],
    M = shape(names.layer(0).fc1W)?.[0];
  if (
    ratio !== undefined &&
    D !== undefined &&
    M !== undefined &&
    (typeof ratio !== 'number' || Math.trunc(D * ratio) !== M)
  )
    throw new Error(
      `vit-wasm: config.json says mlp_ratio=${JSON.stringify(ratio)}, but tensor '${names.layer(0).fc1W}' has ${M} rows for hidden size ${D}`,
    );
  // without a classifier (Dinov2Model) what it gives is its pooler output: the final-normed cls token
  const pooling = shape(names.headW) ? arch.pooling : 'cls';
  return { arch: { ...arch, prefix, positions: regShape ? 'notRegisters' : 'all', pooling }, names };
}

/**
 * Dinov2Config fields that change the arithmetic. Sizes, `qkv_bias`, `hidden_act` and
 * `layer_norm_eps` are read and checked elsewhere; `layerscale_value` only initialises γ (the
 * checkpoint's γ is read); `use_mask_token`, `drop_path_rate` and the backbone's out_features,
 * apply_layernorm and reshape_hidden_states change nothing a model's forward gives.
 */
const DINOV2_CONFIG_RULES: readonly ConfigRule[] = [
  { field: 'use_swiglu_ffn', computed: [false], feature: 'a SwiGLU MLP (DINOv2-giant)' },
];

const DINOV2_ARCH: Arch = Object.freeze({ ...PLAIN_VIT, layerScale: true, pooling: 'clsMean' as const });

/** One scheme spec per layout: without registers (bicubic positions), with them (antialiased). */
function spec(registers: boolean): SchemeSpec {
  return {
    scheme: 'hf',
    marker: registers
      ? "Hugging Face DINOv2 with registers 'embeddings.register_tokens'"
      : "Hugging Face DINOv2 'encoder.layer.0.layer_scale1.lambda1'",
    detect: (t) => {
      const P = detectPrefix(t, registers);
      return P === null ? null : dinov2Names(P);
    },
    layerNormEps: 1e-6,
    // Dinov2Embeddings resizes the positions to whatever it is given: the processor's crop (224)
    resize: { mode: registers ? 'bicubicAntialias' : 'bicubic', squareGrid: true, automatic: true },
    configure: configureDinov2,
  };
}

export const DINOV2: Family = {
  name: 'dinov2',
  arch: DINOV2_ARCH,
  defaultHiddenAct: 'gelu',
  configRules: DINOV2_CONFIG_RULES,
  // its own LayerScale and registers are read; the rest of the ViT's relatives are still foreign
  foreignTensors: VIT_FOREIGN_TENSORS.filter(
    ([, feature]) => !feature.startsWith('LayerScale') && !feature.startsWith('register'),
  ),
  schemes: [spec(true), spec(false)],
};
