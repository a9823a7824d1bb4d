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
   * Tokens before the patch tokens, in order: the class token, then (DeiT) the distillation
   * token. Each is a learned vector with its own position embedding.
   */
  prefix: readonly ['cls'] | readonly ['cls', 'dist'];
  /** Which tokens get a position embedding: `all` (the prefix tokens too). */
  positions: 'all';
  /** Layernorm before attention and before the MLP, inside the residual branches (pre-norm), and once after the last block. */
  norms: 'pre';
  /** The MLP's activation: `gelu`, the exact erf GELU. */
  activation: 'gelu';
  /**
   * What the head reads: `cls`, the class token; or `mean`, the mean of the patch tokens (the
   * prefix tokens left out, as timm's global_pool='avg').
   */
  pooling: 'cls' | 'mean';
  /**
   * Where the final layernorm sits: on the `tokens` after the last block, before pooling (ViT,
   * timm's default), or on the `pooled` vector (timm's fc_norm). With cls pooling both are one
   * arithmetic: the layernorm of the class token.
   */
  finalNorm: 'tokens' | 'pooled';
  /**
   * The head: `linear`, one linear layer to the labels on what pooling gives; or `distilled`
   * (DeiT with its teacher's head), the mean of that and a second linear layer on the final-normed
   * distillation token; or `none`: no classifier (Hugging Face's ViTModel, timm's num_classes=0),
   * a model for embeddings.
   */
  head: 'linear' | 'distilled' | 'none';
}

/** The ViT of Dosovitskiy et al. as Hugging Face's ViTForImageClassification, timm and torchvision compute it. */
export const PLAIN_VIT: Readonly<Arch> = Object.freeze({
  prefix: Object.freeze(['cls'] as const),
  positions: 'all',
  norms: 'pre',
  activation: 'gelu',
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
    prefix: [JSON.stringify(['cls']), JSON.stringify(['cls', 'dist'])],
    positions: ['all'],
    norms: ['pre'],
    activation: ['gelu'],
    pooling: ['cls', 'mean'],
    finalNorm: ['tokens', 'pooled'],
    head: ['linear', 'distilled', 'none'],
  };
  for (const key of Object.keys(known) as (keyof Arch)[]) {
    const v = key === 'prefix' ? JSON.stringify(arch[key]) : arch[key];
    if (!known[key].includes(v))
      throw new Error(
        `vit-wasm: arch.${key} ${v} is not computed by vit-wasm (it computes ${known[key].join(' or ')})`,
      );
  }
  if (arch.head === 'distilled' && (arch.prefix.length !== 2 || arch.pooling !== 'cls'))
    throw new Error(
      "vit-wasm: arch.head 'distilled' reads the cls and distillation tokens: it needs prefix ['cls', 'dist'] and cls pooling",
    );
  return arch;
}

/** What of `arch` the backward does not compute yet, or null: training refuses it by name. */
export function untrainable(arch: Arch): string | null {
  if (arch.pooling !== 'cls') return `${arch.pooling} pooling`;
  if (arch.prefix.length !== 1) return 'a distillation token';
  if (arch.head === 'none') return 'no classifier';
  return null;
}
