/**
 * timm's VisionTransformer, as its checkpoints are written: its tensor names, and its kwargs read
 * against its tensors (the head, tokens, LayerScale, pre-norm, activation, a gated MLP) into the
 * arithmetic of one checkpoint. The ViT and DeiT families (src/io/families/vit.ts, deit.ts) use it.
 */
import { type Arch, MAX_REGISTERS } from '../../nn/arch.js';
import { type Names, TIMM_ACT, wb } from './family.js';

/** timm's resample_abs_pos_embed: antialiased bicubic, from the grid of the checkpoint's img_size. */
export const TIMM_RESIZE = { mode: 'bicubicAntialias', squareGrid: false } as const;

export const timmNames: Names = {
  patchW: 'patch_embed.proj.weight',
  patchB: 'patch_embed.proj.bias',
  cls: 'cls_token',
  pos: 'pos_embed',
  normG: 'norm.weight',
  normB: 'norm.bias',
  headW: 'head.weight',
  headB: 'head.bias',
  layer: (i) => {
    const l = `blocks.${i}.`;
    return {
      ln1: wb(`${l}norm1`),
      ln2: wb(`${l}norm2`),
      qkvW: [`${l}attn.qkv.weight`],
      qkvB: [`${l}attn.qkv.bias`],
      projW: `${l}attn.proj.weight`,
      projB: `${l}attn.proj.bias`,
      fc1W: `${l}mlp.fc1.weight`,
      fc1B: `${l}mlp.fc1.bias`,
      fc2W: `${l}mlp.fc2.weight`,
      fc2B: `${l}mlp.fc2.bias`,
    };
  },
  layerIndex: /^blocks\.(\d+)\./,
  unused: /^$/,
};

/**
 * timm's head: global_pool 'token' (the class token), 'avg' (the mean of the patch tokens) or
 * 'map' (AttentionPoolLatent, one latent: `attn_pool.*`), and the final norm on the tokens
 * (`norm`) or, with fc_norm, on the pooled vector (`fc_norm`). As timm decides it: fc_norm left
 * out (None) means true exactly for 'avg'.
 */
function timmPooling(read: (field: string) => unknown, arch: Arch, names: Names): { arch: Arch; names: Names } {
  const pool = read('global_pool') ?? 'token',
    fc = read('fc_norm') ?? pool === 'avg';
  const pooling = pool === 'avg' ? 'mean' : pool === 'map' ? 'map' : 'cls';
  const pooled: Arch = { ...arch, pooling, finalNorm: fc ? 'pooled' : 'tokens' };
  const a = 'attn_pool.';
  return {
    arch: pooled,
    names: {
      ...(fc ? { ...names, normG: 'fc_norm.weight', normB: 'fc_norm.bias' } : names),
      ...(pooling === 'map'
        ? {
            mapHead: {
              probe: `${a}latent`,
              qkv: { q: wb(`${a}q`), kv: wb(`${a}kv`) },
              proj: wb(`${a}proj`),
              norm: wb(`${a}norm`),
              fc1: wb(`${a}mlp.fc1`),
              fc2: wb(`${a}mlp.fc2`),
            },
          }
        : {}),
    },
  };
}

/**
 * timm's SwiGLUPacked MLP (vit_giant_patch14_dinov2 and its reg4): one fc1 of 2M rows, act(first
 * half) ⊙ second half, fc2 reading M, told from the shapes alone (a plain fc2 reads all fc1 gives).
 * Its activation is the model's act_layer: the registered DINOv2 giants pass nn.SiLU, which their
 * hub configs do not carry, so a 'dinov2' architecture without act_layer is SiLU; other gated
 * models would get timm's default GELU, whose gated form vit-wasm does not compute.
 */
function timmGated(
  read: (field: string) => unknown,
  shape: (name: string) => readonly number[] | undefined,
  act: Arch['activation'] | undefined,
): Partial<Arch> {
  const fc1 = shape('blocks.0.mlp.fc1.weight'),
    fc2 = shape('blocks.0.mlp.fc2.weight');
  if (!fc1 || !fc2 || fc1[0] !== 2 * fc2[1] || !(fc2[1] >= 1)) return {};
  const name = read('architecture'),
    activation = act ?? (typeof name === 'string' && name.includes('dinov2') ? 'silu' : 'gelu');
  if (activation === 'gelu' || activation === 'relu')
    throw new Error(
      `vit-wasm: a gated MLP (timm's SwiGLUPacked: 'blocks.0.mlp.fc1.weight' has twice the rows 'blocks.0.mlp.fc2.weight' reads) with act_layer ${act ?? "gelu (timm's default)"} is not computed; vit-wasm computes gated MLPs with silu, quick_gelu or gelu_tanh`,
    );
  return { mlp: 'gated', activation };
}

/**
 * timm's VisionTransformer as its tensors and kwargs say: the head (timmPooling); LayerScale where
 * blocks have `ls1.gamma` (init_values, DeiT-III, timm's DINOv2); register tokens `reg_token`
 * (1, n, D) after the cls token (reg_tokens must agree); and with no_embed_class the position
 * embeddings over the patches only (else over every token, registers too), as timm's _pos_embed.
 */
export function timmConfigure(
  read: (field: string) => unknown,
  arch: Arch,
  names: Names,
  shape: (name: string) => readonly number[] | undefined,
): { arch: Arch; names: Names } {
  const pooled = timmPooling(read, arch, names);
  const act = read('act_layer');
  if (act !== undefined && act !== null && (typeof act !== 'string' || !Object.hasOwn(TIMM_ACT, act)))
    throw new Error(
      `vit-wasm: config.json: act_layer ${JSON.stringify(act)} is not supported; vit-wasm computes ${Object.keys(TIMM_ACT).join(', ')}`,
    );
  const layerScale = shape('blocks.0.ls1.gamma') !== undefined,
    initValues = read('init_values');
  if (initValues !== undefined && initValues !== null && !layerScale)
    throw new Error(
      `vit-wasm: config.json: init_values ${JSON.stringify(initValues)} asks for LayerScale, but there is no tensor 'blocks.0.ls1.gamma'`,
    );
  const reg = shape('reg_token'),
    n = reg === undefined ? 0 : reg.length === 3 && reg[0] === 1 ? reg[1] : -1;
  if (!(n >= 0 && n <= MAX_REGISTERS))
    throw new Error(
      `vit-wasm: tensor 'reg_token' has shape [${reg}], expected [1, registers (1 to ${MAX_REGISTERS}), hidden]`,
    );
  const said = read('reg_tokens') ?? 0;
  if (said !== n)
    throw new Error(
      `vit-wasm: config.json says reg_tokens=${JSON.stringify(said)}, but the checkpoint has ${n ? `tensor 'reg_token' of shape [${reg}] (${n} registers)` : "no tensor 'reg_token'"}`,
    );
  // pre_norm (timm's CLIP towers): norm_pre on the tokens before the blocks, and a patch embedding without bias
  const preNorm = shape('norm_pre.weight') !== undefined;
  if (read('pre_norm') === true && !preNorm)
    throw new Error("vit-wasm: config.json says pre_norm=true, but there is no tensor 'norm_pre.weight'");
  const gated = timmGated(read, shape, typeof act === 'string' ? TIMM_ACT[act] : undefined);
  // class_token=False: no cls_token tensor, the patches (and any registers) alone
  const cls = shape('cls_token') !== undefined;
  if (read('class_token') === false && cls)
    throw new Error("vit-wasm: config.json says class_token=false, but the checkpoint has tensor 'cls_token'");
  return {
    arch: {
      ...pooled.arch,
      prefix: [...(cls ? ['cls' as const] : []), ...Array<'reg'>(n).fill('reg')],
      positions: read('no_embed_class') === true ? 'patches' : 'all',
      layerScale,
      embedNorm: preNorm,
      ...(typeof act === 'string' ? { activation: TIMM_ACT[act] } : {}),
      ...gated,
    },
    names: {
      ...pooled.names,
      ...(preNorm ? { embedNorm: wb('norm_pre') } : {}),
      ...(shape('patch_embed.proj.bias') === undefined ? { patchB: undefined } : {}),
      ...(n ? { registers: 'reg_token' } : {}),
      layer: layerScale
        ? (i) => ({ ...pooled.names.layer(i), ls1: `blocks.${i}.ls1.gamma`, ls2: `blocks.${i}.ls2.gamma` })
        : pooled.names.layer,
    },
  };
}
