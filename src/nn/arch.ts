/**
 * A ViT family's arithmetic, declared: which tokens come before the patches, where the layernorms
 * sit, the MLP's activation, what the head reads and what it is. The forward and the backward
 * (src/nn/vit.ts) and the token counts (src/nn/shape.ts) read it; a checkpoint's family
 * (src/io/families/) says which it is. Each field's type lists exactly the values vit-wasm
 * computes today: a family that needs another value widens that union and teaches the op in
 * src/nn/ops.ts, forward beside backward, so no family is ever a copy of the network.
 */
export interface Arch {
  /**
   * Tokens before the patch tokens, in order: the class token, then the distillation token (DeiT)
   * or register tokens (DINOv2 with registers, timm's reg_tokens: learned vectors the head never
   * reads). Each is a learned vector. None at all (SigLIP, timm's class_token=False): the patch
   * tokens alone, pooled by their mean or an attention pool; registers alone (timm's reg_tokens with
   * class_token=False) likewise.
   */
  prefix: readonly PrefixToken[];
  /**
   * Which tokens get a position embedding: `all` (the prefix tokens too); `notRegisters` (every
   * token but the registers: DINOv2 with registers adds them after the positions); `patches` (the
   * patch tokens only: timm's no_embed_class); `none` (BEiT without absolute positions: its
   * attention's relative bias places the tokens). The loader lays the positions out as (T, D) with
   * zero rows for tokens without one, so the forward adds one table to every token.
   */
  positions: 'all' | 'notRegisters' | 'patches' | 'none';
  /**
   * LayerScale (CaiT, DeiT-III, DINOv2, BEiT): each residual branch times a learned per-channel γ.
   * The loader folds γ into the branch's last linear layer (γ⊙(Wx + b) = (γ⊙W)x + γ⊙b: proj and
   * fc2 rows scaled), so the forward is the plain one; training keeps γ and W apart (its
   * parameters), the branch's output kept for dγ.
   */
  layerScale: boolean;
  /**
   * What is added to each head's scaled attention scores before the softmax: `none`, or `relative`,
   * BEiT's relative position bias, a (T, T) matrix per head the loader builds from the layer's
   * (or the shared) table and BEiT's index.
   */
  attentionBias: 'none' | 'relative';
  /** Layernorm before attention and before the MLP, inside the residual branches (pre-norm), and once after the last block. */
  norms: 'pre';
  /**
   * A layernorm on the tokens before the first block (CLIP's pre_layrnorm, timm's norm_pre with
   * pre_norm=True), after the position embeddings.
   */
  embedNorm: boolean;
  /**
   * The MLP's activation: `gelu`, the exact erf GELU; `geluTanh`, its tanh approximation
   * (gelu_new, gelu_pytorch_tanh: SigLIP); `quickGelu`, x·σ(1.702x) (CLIP); `silu`; `relu`.
   */
  activation: 'gelu' | 'geluTanh' | 'quickGelu' | 'silu' | 'relu';
  /**
   * The MLP: `plain`, fc2(act(fc1(x))); or `gated`, a gated linear unit (SwiGLU: DINOv2-giant,
   * timm's SwiGLUPacked): fc1 gives 2M features, the activation of the first M times the other M,
   * and fc2 reads those M. Its activation is one of the sigmoid gates (silu, quickGelu, geluTanh).
   */
  mlp: 'plain' | 'gated';
  /**
   * What the head reads: `cls`, the class token; or `mean`, the mean of the patch tokens (the
   * prefix tokens left out, as timm's global_pool='avg'); or `clsMean`, the two side by side
   * (2D: Dinov2ForImageClassification's head input), both from the final-normed tokens; or `map`,
   * multihead attention pooling (SigLIP's head, timm's global_pool='map'): one learned query
   * attends over the final-normed tokens, then a projection and a pre-norm MLP with its residual.
   */
  pooling: 'cls' | 'mean' | 'clsMean' | 'map';
  /**
   * Where the final layernorm sits: on the `tokens` after the last block, before pooling (ViT,
   * timm's default), or on the `pooled` vector (timm's fc_norm). With cls pooling both are one
   * arithmetic: the layernorm of the class token. `none`: the head reads the mean of the patch
   * tokens as the last block leaves them (CLIPForImageClassification: its post_layernorm makes
   * only the pooler output, which its classifier does not read).
   */
  finalNorm: 'tokens' | 'pooled' | 'none';
  /**
   * The head: `linear`, one linear layer to the labels on what pooling gives; or `distilled`
   * (DeiT with its teacher's head), the mean of that and a second linear layer on the final-normed
   * distillation token; or `none`: no classifier (Hugging Face's ViTModel, timm's num_classes=0),
   * a model for embeddings; or `projection`, a linear map without bias of what pooling gives to
   * an embedding space shared with a text tower (CLIP's visual_projection): an image tower.
   */
  head: 'linear' | 'distilled' | 'none' | 'projection';
}

/** A token before the patches: the class token, DeiT's distillation token, or a register token. */
export type PrefixToken = 'cls' | 'dist' | 'reg';

/** The most register tokens a model may have (published models have 4; timm allows any). */
export const MAX_REGISTERS = 64;

/** The ViT of Dosovitskiy et al. as Hugging Face's ViTForImageClassification, timm and torchvision compute it. */
export const PLAIN_VIT: Readonly<Arch> = Object.freeze({
  prefix: Object.freeze(['cls'] as const),
  positions: 'all',
  layerScale: false,
  attentionBias: 'none',
  norms: 'pre',
  embedNorm: false,
  activation: 'gelu',
  mlp: 'plain',
  pooling: 'cls',
  finalNorm: 'tokens',
  head: 'linear',
});

/**
 * `arch` checked field by field against what the network computes, so an object built by hand (or
 * posted from another version) is refused by name rather than run as something it is not.
 */
export function checkArch(arch: Arch): Arch {
  const known: { [K in keyof Arch]: readonly unknown[] } = {
    prefix: [prefixLayout(arch.prefix)],
    positions: ['all', 'notRegisters', 'patches', 'none'],
    layerScale: [true, false],
    attentionBias: ['none', 'relative'],
    norms: ['pre'],
    embedNorm: [true, false],
    activation: ['gelu', 'geluTanh', 'quickGelu', 'silu', 'relu'],
    mlp: ['plain', 'gated'],
    pooling: ['cls', 'mean', 'clsMean', 'map'],
    finalNorm: ['tokens', 'pooled', 'none'],
    head: ['linear', 'distilled', 'none', 'projection'],
  };
  for (const key of Object.keys(known) as (keyof Arch)[]) {
    const v = key === 'prefix' ? JSON.stringify(arch[key]) : arch[key];
    if (key === 'prefix' && known.prefix[0] === null)
      throw new Error(
        `vit-wasm: arch.prefix ${v} is not computed by vit-wasm (it computes [], ['cls'], ['cls', 'dist'], or 1 to ${MAX_REGISTERS} 'reg' after ['cls'] or alone)`,
      );
    if (key === 'prefix') continue;
    if (!known[key].includes(v))
      throw new Error(
        `vit-wasm: arch.${key} ${v} is not computed by vit-wasm (it computes ${known[key].join(' or ')})`,
      );
  }
  if (arch.head === 'distilled' && (arch.prefix[1] !== 'dist' || arch.pooling !== 'cls'))
    throw new Error(
      "vit-wasm: arch.head 'distilled' reads the cls and distillation tokens: it needs prefix ['cls', 'dist'] and cls pooling",
    );
  if (arch.prefix[0] !== 'cls' && (arch.pooling === 'cls' || arch.pooling === 'clsMean'))
    throw new Error(`vit-wasm: arch.pooling '${arch.pooling}' reads the cls token: arch.prefix has none`);
  if ((arch.pooling === 'clsMean' || arch.pooling === 'map') && arch.finalNorm !== 'tokens')
    throw new Error(
      `vit-wasm: arch.pooling '${arch.pooling}' reads the final-normed tokens: it needs finalNorm 'tokens'`,
    );
  if (arch.finalNorm === 'none' && (arch.pooling !== 'mean' || arch.head !== 'linear'))
    throw new Error(
      "vit-wasm: arch.finalNorm 'none' is CLIPForImageClassification's: it needs mean pooling and a linear head",
    );
  if (arch.attentionBias === 'relative' && JSON.stringify(arch.prefix) !== '["cls"]')
    throw new Error(
      "vit-wasm: arch.attentionBias 'relative' is BEiT's: it needs prefix ['cls'] (its index places one cls token)",
    );
  if (arch.mlp === 'gated' && (arch.activation === 'gelu' || arch.activation === 'relu'))
    throw new Error(
      `vit-wasm: arch.mlp 'gated' is computed with a sigmoid gate (silu, quickGelu or geluTanh), not ${arch.activation}`,
    );
  if (arch.positions === 'notRegisters' && !arch.prefix.includes('reg'))
    throw new Error("vit-wasm: arch.positions 'notRegisters' needs register tokens in arch.prefix");
  return arch;
}

/** `prefix` as JSON when it is a layout the forward computes: none; cls; cls, dist; 1 … MAX_REGISTERS registers after cls or alone. Else null. */
function prefixLayout(prefix: readonly PrefixToken[]): string | null {
  if (Array.isArray(prefix) && prefix.length === 0) return '[]';
  if (!Array.isArray(prefix)) return null;
  const rest = prefix[0] === 'cls' ? prefix.slice(1) : prefix;
  const ok =
    rest.length === 0 ||
    (prefix[0] === 'cls' && rest.length === 1 && rest[0] === 'dist') ||
    (rest.length <= MAX_REGISTERS && rest.every((t) => t === 'reg'));
  return ok ? JSON.stringify(prefix) : null;
}

/** How many register tokens `arch` has. */
export const registerCount = (arch: Arch): number => arch.prefix.filter((t) => t === 'reg').length;

/** How many of the prefix tokens have a position embedding of their own (Arch.positions): they come first. */
export function positionedPrefix(arch: Arch): number {
  if (arch.positions === 'patches' || arch.positions === 'none') return 0;
  return arch.positions === 'notRegisters' ? arch.prefix.length - registerCount(arch) : arch.prefix.length;
}

/** Everything of `arch` the backward does not compute yet, in words, or null: training refuses it by name. */
export function untrainable(arch: Arch): string | null {
  const not = [
    arch.pooling === 'map' && 'an attention-pool head',
    arch.mlp !== 'plain' && 'a gated MLP (SwiGLU)',
    arch.prefix.includes('reg') && arch.prefix[0] !== 'cls' && 'register tokens without a class token',
    arch.positions === 'patches' && arch.prefix.length > 0 && 'position embeddings on the patch tokens only',
    arch.head !== 'linear' &&
      (arch.head === 'distilled' ? 'a distilled head (two classifiers averaged)' : 'no classifier'),
  ].filter((s): s is string => typeof s === 'string');
  return not.length ? not.join(', ') : null;
}
