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
 *     and are run at 224: `loadModel(dir, { imageSize: 224 })`;
 *   - `use_swiglu_ffn` (giant): Dinov2SwiGLUFFN's `mlp.weights_in` (2M rows) and `weights_out`,
 *     silu(first half) ⊙ second half whatever hidden_act says (Arch.mlp 'gated').
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
  // use_swiglu_ffn says which MLP the layers have; its tensors must be that MLP's
  const swiglu = read('use_swiglu_ffn');
  if (swiglu !== undefined && typeof swiglu !== 'boolean')
    throw new Error(`vit-wasm: config.json: use_swiglu_ffn must be true or false, got ${JSON.stringify(swiglu)}`);
  const gated = swiglu === true,
    fc1 = (gated ? swigluNames(names) : names).layer(0).fc1W,
    other = (gated ? names : swigluNames(names)).layer(0).fc1W;
  if (!shape(fc1) && shape(other))
    throw new Error(
      `vit-wasm: config.json says use_swiglu_ffn=${swiglu ?? false}, but the checkpoint has tensor '${other}' (${gated ? 'the plain MLP' : 'a SwiGLU MLP'}), not '${fc1}'`,
    );
  const mlp = gated ? { mlp: 'gated' as const, activation: 'silu' as const } : {};
  // the MLP's size is int(hidden_size · mlp_ratio) in Dinov2MLP; Dinov2SwiGLUFFN takes ⅔ of it,
  // rounded up to a multiple of 8, twice over in weights_in: the config must say the weights' size
  const ratio = read('mlp_ratio'),
    D = shape(names.patchW)?.[0],
    rows = shape(fc1)?.[0];
  const want = (r: number, d: number) => {
    const m = Math.trunc(d * r);
    return gated ? 2 * Math.trunc((Math.trunc((m * 2) / 3) + 7) / 8) * 8 : m;
  };
  if (
    ratio !== undefined &&
    D !== undefined &&
    rows !== undefined &&
    (typeof ratio !== 'number' || want(ratio, D) !== rows)
  )
    throw new Error(
      `vit-wasm: config.json says mlp_ratio=${JSON.stringify(ratio)}, but tensor '${fc1}' has ${rows} rows for hidden size ${D}`,
    );
  // without a classifier (Dinov2Model) what it gives is its pooler output: the final-normed cls token
  const pooling = shape(names.headW) ? arch.pooling : 'cls';
  return {
    arch: { ...arch, prefix, positions: regShape ? 'notRegisters' : 'all', pooling, ...mlp },
    names: gated ? swigluNames(names) : names,
  };
}

/** The names with Dinov2SwiGLUFFN's in place of Dinov2MLP's fc1 and fc2. */
function swigluNames(names: Names): Names {
  return {
    ...names,
    layer: (i) => {
      const l = names.layer(i);
      const swap = (s: string) =>
        s.replace(/\.mlp\.fc1\./, '.mlp.weights_in.').replace(/\.mlp\.fc2\./, '.mlp.weights_out.');
      return { ...l, fc1W: swap(l.fc1W), fc1B: swap(l.fc1B), fc2W: swap(l.fc2W), fc2B: swap(l.fc2B) };
    },
  };
}

/**
 * Dinov2Config fields that change the arithmetic. Sizes, `qkv_bias`, `hidden_act` and
 * `layer_norm_eps` are read and checked elsewhere; `layerscale_value` only initialises γ (the
 * checkpoint's γ is read); `use_mask_token`, `drop_path_rate` and the backbone's out_features,
 * apply_layernorm and reshape_hidden_states change nothing a model's forward gives.
 */
const DINOV2_CONFIG_RULES: readonly ConfigRule[] = [];

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
  // its own LayerScale, registers and SwiGLU are read; the rest of the ViT's relatives are still foreign
  foreignTensors: VIT_FOREIGN_TENSORS.filter(
    ([, feature]) =>
      !feature.startsWith('LayerScale') && !feature.startsWith('register') && !feature.includes('SwiGLU'),
  ),
  schemes: [spec(true), spec(false)],
};
