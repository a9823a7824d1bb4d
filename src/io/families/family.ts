/**
 * What a ViT family is, to the loader: a small declarative description. Its arithmetic (tokens,
 * norms, activation, pooling, head) is an {@link Arch}, which the one forward and backward read;
 * the rest is how its checkpoints are written: the naming schemes of the libraries that publish
 * it and what their config.json fields mean. ARCHITECTURE.md ("Adding a family") says how to add one.
 */
import type { Arch } from '../../nn/arch.js';

/** The library whose tensor names a checkpoint uses. */
export type Scheme = 'hf' | 'timm' | 'torchvision';

/** Checkpoint key names of the model's parameters under one scheme (layer i's from `layer(i)`). */
export interface Names {
  patchW: string;
  patchB: string;
  cls: string;
  pos: string;
  normG: string;
  normB: string;
  headW: string;
  headB: string;
  /** DeiT: the distillation token and its head, where the checkpoint has them. */
  dist?: string;
  headDistW?: string;
  headDistB?: string;
  layer(i: number): {
    ln1: [string, string];
    /** Q, K and V stacked in one tensor, or one tensor each, in that order. */
    qkvW: string[];
    qkvB: string[];
    projW: string;
    projB: string;
    ln2: [string, string];
    fc1W: string;
    fc1B: string;
    fc2W: string;
    fc2B: string;
  };
  /** Matches a tensor of layer i, with i in the first group: the layers are counted by it. */
  layerIndex: RegExp;
  /** Tensors a checkpoint may carry that this model does not use (e.g. HF's pooler). */
  unused: RegExp;
}

/** One way a family's checkpoints are written. */
export interface SchemeSpec {
  scheme: Scheme;
  /** What a checkpoint of this scheme holds, for messages ("timm 'cls_token'/'pos_embed'"). */
  marker: string;
  /** The scheme's names if these tensors are written in it, else null. */
  detect(tensors: ReadonlySet<string>): Names | null;
  /** config.json's layer_norm_eps when it has none: the library's own default. */
  layerNormEps: number;
  /**
   * The arithmetic and names of one checkpoint of this scheme, where its config varies them
   * (timm's global_pool and fc_norm): `read(field)` gives a config field (timm: also under
   * `model_args`). Absent: the family's arch and the detected names.
   */
  configure?(read: (field: string) => unknown, arch: Arch, names: Names): { arch: Arch; names: Names };
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
  /** Schemes that compute more values of this field than `computed` (timm: global_pool 'avg'). */
  alsoIn?: Partial<Record<Scheme, readonly unknown[]>>;
  /** What another value would ask for, in words ("mean pooling of the patch tokens"). */
  feature: string;
}

/** A ViT family: its arithmetic and how its checkpoints are written. */
export interface Family {
  /** For messages and {@link ViTModel.family}: `vit`. */
  name: string;
  arch: Arch;
  schemes: SchemeSpec[];
  /** config.json `hidden_act` values that name the arch's activation. */
  activationNames: string[];
  /** Fields whose other values ask for arithmetic this family does not compute. */
  configRules: readonly ConfigRule[];
  /**
   * Tensors of related families that a checkpoint of this one must not carry, each with the
   * feature it is part of, so a refusal names the feature ("LayerScale"), not just a tensor.
   */
  foreignTensors: readonly [RegExp, string][];
}
