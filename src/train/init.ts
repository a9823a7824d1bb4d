/**
 * Where a training run starts: the dimensions of a checkpoint's config.json, and the initial
 * parameters, read from its model.safetensors or drawn as Hugging Face's ViT initialises them.
 */
import { interpolatePositions } from '../io/positions.js';
import { type TensorOut, TensorReader } from '../io/safetensors.js';
import { type ModelLocation, modelFiles, readJson } from '../io/source.js';
import { openTensors } from '../io/tensors.js';
import type { ViTShape } from '../nn/shape.js';
import type { Param } from './core.js';
import type { TrainDims } from './options.js';
import type { TrainSpec } from './spec.js';

/**
 * Initial weights: HF's initialisation from `seed`, then every tensor a checkpoint has under each
 * parameter's source name (Hugging Face's: a ViTForImageClassification's, or a ViTModel's without
 * the `vit.` prefix; another family's own, src/train/spec.ts), its positions resized to the
 * training grid as its library does (`positions`). With `newHead` the checkpoint's classifier is
 * left out (fine-tuning to other classes): the head keeps its fresh draw. A checkpoint without a
 * classifier (a backbone) needs `newHead`.
 */
export async function initialise(
  P: Float32Array,
  params: Param[],
  from: ModelLocation | undefined,
  seed: number,
  newHead = false,
  spec?: Pick<TrainSpec, 'positions'>,
  dims?: ViTShape,
): Promise<void> {
  // HF's ViT initialisation: weights, cls and positions N(0, 0.02); biases 0; norms γ = 1, β = 0
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  const uniform = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  for (const p of params) {
    const v = P.subarray(p.offset, p.offset + p.size);
    if (p.init === 'one') v.fill(1);
    else if (p.init === 'normal') for (let i = 0; i < v.length; i++) v[i] = 0.02 * normal();
    else v.fill(0);
  }
  if (!from) return;
  const files = await modelFiles(from);
  const { tensors, sources, file } = await openTensors(files);
  try {
    const reader = new TensorReader(tensors.values());
    for (const p of params) {
      const head = p.role.startsWith('head.');
      if (p.fixed || (head && newHead)) continue;
      const name = p.source ?? p.name;
      const t = tensors.get(name) ?? tensors.get(name.replace(/^vit\./, ''));
      if (!t)
        throw new Error(
          `vit-wasm: ${file}: missing tensor '${name}' (training starts from Hugging Face names)` +
            (head
              ? '; a backbone without a classifier is fine-tuned with a new head (newHead, or --from in the CLI)'
              : ''),
        );
      let v = await reader.read(t);
      const count = t.shape.reduce((a, b) => a * b, 1);
      if (p.role === 'pos' && count !== p.size && spec?.positions && dims) {
        // the checkpoint's grid (e.g. DINOv2's 518 px) resized to the training size, as its library does
        const { grid, prefix, mode } = spec.positions,
          q = dims.patchSize;
        v = interpolatePositions(
          v,
          prefix,
          grid,
          dims.hiddenSize,
          [dims.imageSize[0] / q, dims.imageSize[1] / q],
          mode,
        );
      } else if (count !== p.size)
        throw new Error(`vit-wasm: ${file}: tensor '${name}' has shape [${t.shape}], expected [${p.shape}]`);
      P.set(v, p.offset);
    }
  } finally {
    await Promise.all(sources.map((x) => x.close()));
  }
}

/** The tensors a fine-tune writes back as the checkpoint has them (src/train/spec.ts, carried), read once. */
export async function readCarried(from: ModelLocation | undefined, spec: TrainSpec): Promise<TensorOut[]> {
  if (!from || !spec.carried?.length) return [];
  const { tensors, sources } = await openTensors(await modelFiles(from));
  try {
    const out: TensorOut[] = [];
    for (const { name, source } of spec.carried) {
      const t = tensors.get(source);
      if (!t) throw new Error(`vit-wasm: internal: carried tensor '${source}' is gone`);
      out.push({
        name,
        shape: t.shape,
        dtype: t.dtype,
        bytes: (await t.source.read(t.begin, t.end - t.begin)).slice(),
      });
    }
    return out;
  } finally {
    await Promise.all(sources.map((x) => x.close()));
  }
}

/** Reads the dimensions of a checkpoint's config.json for training. */
export async function dimsFrom(where: ModelLocation): Promise<TrainDims> {
  const files = await modelFiles(where);
  const c = (await readJson(files, 'config.json')) as Record<string, number | number[]>;
  // training runs the plain ViT's arithmetic: a field that would change it is refused by name
  const cfg = c as unknown as Record<string, unknown>,
    where_ = `${typeof where === 'string' ? where : 'the model'}: config.json`;
  if (cfg.model_type !== undefined && cfg.model_type !== 'vit')
    throw new Error(
      `vit-wasm: ${where_} has model_type '${cfg.model_type}': training (and fine-tuning) is built for the plain ViT ('vit') only; linearProbe trains a new classifier on every family`,
    );
  if (cfg.hidden_act !== undefined && cfg.hidden_act !== 'gelu')
    throw new Error(
      `vit-wasm: ${where_} has hidden_act '${cfg.hidden_act}': training computes the exact GELU ('gelu') only`,
    );
  if (cfg.qkv_bias === false)
    throw new Error(`vit-wasm: ${where_} has qkv_bias false: training keeps the query, key and value biases`);
  const size = c.image_size;
  return {
    imageSize: Array.isArray(size) ? [size[0], size[1]] : [size as number, size as number],
    patchSize: c.patch_size as number,
    numChannels: (c.num_channels as number) ?? 3,
    hiddenSize: c.hidden_size as number,
    numLayers: c.num_hidden_layers as number,
    numHeads: c.num_attention_heads as number,
    intermediateSize: c.intermediate_size as number,
    numLabels: (c.num_labels as number) ?? Object.keys(c.id2label ?? {}).length,
    layerNormEps: (c.layer_norm_eps as number) ?? 1e-12,
  };
}

/** Refuses dimensions a ViT cannot have, by name. */
export function checkDims(d: TrainDims): void {
  if (typeof d !== 'object' || !Array.isArray(d.imageSize) || d.imageSize.length !== 2)
    throw new Error(
      'vit-wasm: createTrainer: dims.imageSize must be [height, width] (to train a loaded model pass model.config, or options.from)',
    );
  for (const [k, v] of Object.entries({
    patchSize: d.patchSize,
    numChannels: d.numChannels,
    hiddenSize: d.hiddenSize,
    numLayers: d.numLayers,
    numHeads: d.numHeads,
    intermediateSize: d.intermediateSize,
    numLabels: d.numLabels,
    height: d.imageSize[0],
    width: d.imageSize[1],
  })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`vit-wasm: ${k} must be a positive integer, got ${v}`);
  }
  if (d.hiddenSize % d.numHeads)
    throw new Error(`vit-wasm: hiddenSize ${d.hiddenSize} is not divisible by numHeads ${d.numHeads}`);
  if (d.imageSize[0] % d.patchSize || d.imageSize[1] % d.patchSize)
    throw new Error(`vit-wasm: image size ${d.imageSize} is not divisible by patchSize ${d.patchSize}`);
}
