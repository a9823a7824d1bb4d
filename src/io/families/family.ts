/**
 * What a ViT family is, to the loader: a small declarative description. Its arithmetic (tokens,
 * norms, activation, pooling, head) is an {@link Arch}, which the one forward and backward read;
 * the rest is how its checkpoints are written: the naming schemes of the libraries that publish
 * it and what their config.json fields mean. ARCHITECTURE.md ("Adding a family") says how to add one.
 */
import type { Arch } from '../../nn/arch.js';
import type { PositionResize } from '../positions.js';

/** A module's weight and bias names under prefix `p`. */
export const wb = (p: string): [string, string] => [`${p}.weight`, `${p}.bias`];

/** The library whose tensor names a checkpoint uses. */
export type Scheme = 'hf' | 'timm' | 'torchvision' | 'open_clip';

/** Checkpoint key names of the model's parameters under one scheme (layer i's from `layer(i)`). */
export interface Names {
  patchW: string;
  /** The patch embedding's bias; absent where it has none (CLIP). */
  patchB?: string;
  /** The layernorm before the first block (Arch.embedNorm: CLIP's pre_layrnorm). */
  embedNorm?: [string, string];
  /** Hugging Face's pooler (ViTModel, DeiTModel): a dense layer and tanh on the final-normed cls token, read where present. */
  pooler?: [string, string];
  /** An image tower's projection (Arch.head 'projection': CLIP's visual_projection), (P, D) without bias. */
  projection?: string;
  /** The projection is stored (D, P) and applied as x · proj (open_clip's `visual.proj`), not as a Linear's (P, D). */
  projectionTransposed?: boolean;
  /**
   * The attention-pool head (Arch.pooling 'map'): its probe (1, 1, D); Q, K and V as one (3D, D)
   * in_proj (torch's MultiheadAttention: SigLIP) or as q (D, D) and kv (2D, D) (timm); the output
   * projection, the norm and the MLP.
   */
  mapHead?: {
    probe: string;
    qkv: { inProj: [string, string] } | { q: [string, string]; kv: [string, string] };
    proj: [string, string];
    norm: [string, string];
    fc1: [string, string];
    fc2: [string, string];
  };
  /** The class token; absent where the family has none (SigLIP). */
  cls?: string;
  pos: string;
  normG: string;
  normB: string;
  headW: string;
  headB: string;
  /** DeiT: the distillation token and its head, where the checkpoint has them. */
  dist?: string;
  /** The register tokens (1, n, D), where the family has them. */
  registers?: string;
  headDistW?: string;
  headDistB?: string;
  layer(i: number): {
    ln1: [string, string];
    /** Q, K and V stacked in one tensor, or one tensor each, in that order. */
    qkvW: string[];
    /** Their biases likewise; null for a part without one (BEiT's key). */
    qkvB: (string | null)[];
    projW: string;
    projB: string;
    ln2: [string, string];
    fc1W: string;
    fc1B: string;
    fc2W: string;
    fc2B: string;
    /** LayerScale's γ (D) on the attention and the MLP branch, where the family has it (Arch.layerScale). */
    ls1?: string;
    ls2?: string;
    /** The relative position bias table ((2Wh−1)(2Ww−1) + 3, H) this layer reads (Arch.attentionBias 'relative'). */
    relBias?: string;
  };
  /** Matches a tensor of layer i, with i in the first group: the layers are counted by it. */
  layerIndex: RegExp;
  /** Tensors a checkpoint may carry that this model does not use (e.g. HF's pooler). */
  unused: RegExp;
}

/** One way a family's checkpoints are written. */
export interface SchemeSpec {
  scheme: Scheme;
  /** What a checkpoint of this scheme holds, for messages ("timm 'pos_embed'/'cls_token'"). */
  marker: string;
  /** The scheme's names if these tensors are written in it, else null. */
  detect(tensors: ReadonlySet<string>): Names | null;
  /**
   * How the scheme's library resizes the position grid for another image size
   * (src/io/positions.ts), and whether it needs the checkpoint's grid square (Hugging Face reads
   * its side as √(positions)). Absent: running at another size is refused.
   */
  resize?: {
    mode: PositionResize;
    squareGrid: boolean;
    /** The library runs square images only (torchvision's VisionTransformer takes one image_size). */
    squareImages?: boolean;
    /** The library resizes them for any input without being asked (DINOv2): the model runs at its processor's size. */
    automatic?: boolean;
  };
  /** config.json's layer_norm_eps when it has none: the library's own default. */
  layerNormEps: number;
  /**
   * The arithmetic and names of one checkpoint of this scheme, where its config varies them
   * (timm's global_pool and fc_norm) or its tensors do (register tokens, LayerScale): `read(field)`
   * gives a config field (timm: also under `model_args`), `shape(name)` a tensor's shape (undefined:
   * no such tensor). It throws an Error naming the field where config and tensors disagree.
   * Absent: the family's arch and the detected names.
   */
  configure?(
    read: (field: string) => unknown,
    arch: Arch,
    names: Names,
    shape: (name: string) => readonly number[] | undefined,
  ): { arch: Arch; names: Names };
}

/**
 * A config.json field that changes the arithmetic, and the values this family computes. A field
 * the family's libraries write (Hugging Face's config, timm's model kwargs at the top level or
 * under `model_args`) with any other value is refused naming the field and `feature`.
 */
export interface ConfigRule {
  field: string;
  /** The values computed; absent (undefined or null) is always one of them. */
  computed: readonly unknown[];
  /**
   * Schemes that compute more values of this field than `computed` (timm: global_pool 'avg'), or
   * `any` value: the scheme's `configure` reads it and checks it against the tensors (timm's
   * reg_tokens, init_values).
   */
  alsoIn?: Partial<Record<Scheme, readonly unknown[] | 'any'>>;
  /** What another value would ask for, in words ("mean pooling of the patch tokens"). */
  feature: string;
}

/** A ViT family: its arithmetic and how its checkpoints are written. */
export interface Family {
  /** For messages and {@link ViTModel.family}: `vit`. */
  name: string;
  arch: Arch;
  schemes: SchemeSpec[];
  /** config.json's `hidden_act` when it has none: the family's library's default (HIDDEN_ACT names). */
  defaultHiddenAct: string;
  /**
   * Where the network's fields sit in config.json when not at its top level: a CLIPModel's are
   * under `vision_config` (its text tower's under text_config).
   */
  subConfig?: string;
  /** Fields whose other values ask for arithmetic this family does not compute. */
  configRules: readonly ConfigRule[];
  /**
   * Tensors of related families that a checkpoint of this one must not carry, each with the
   * feature it is part of, so a refusal names the feature ("LayerScale"), not just a tensor.
   */
  foreignTensors: readonly [RegExp, string][];
}

/**
 * config.json `hidden_act` names (transformers' ACT2FN) of the activations vit-wasm computes. The
 * tanh forms are one function: gelu_new, gelu_pytorch_tanh, gelu_fast and gelu_accurate all
 * compute ½x(1 + tanh(√(2/π)(x + 0.044715x³))).
 */
export const HIDDEN_ACT: Readonly<Record<string, Arch['activation']>> = {
  gelu: 'gelu',
  gelu_python: 'gelu',
  gelu_new: 'geluTanh',
  gelu_pytorch_tanh: 'geluTanh',
  gelu_fast: 'geluTanh',
  gelu_accurate: 'geluTanh',
  quick_gelu: 'quickGelu',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu',
};

/** timm's `act_layer` names of the activations vit-wasm computes. */
export const TIMM_ACT: Readonly<Record<string, Arch['activation']>> = {
  gelu: 'gelu',
  gelu_tanh: 'geluTanh',
  quick_gelu: 'quickGelu',
  silu: 'silu',
  swish: 'silu',
  relu: 'relu',
};
