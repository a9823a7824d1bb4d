/**
 * What a trainer trains: its parameters, each a tensor of the model it writes under that model's
 * names with its role in the network (src/io/families/vit.ts, familyParameters). From scratch and
 * for the plain ViT: Hugging Face's ViTForImageClassification. Fine-tuning a checkpoint of another
 * family (Hugging Face names): that family's classification form (src/io/classification-form.ts)
 * — DeiTForImageClassification, Dinov2(WithRegisters)ForImageClassification,
 * BeitForImageClassification, CLIPForImageClassification, SiglipForImageClassification — read from
 * the checkpoint's own tensors, written with the config and the tensors its classifier's model
 * carries (a DINOv2's mask token, SigLIP's unused pool head, BEiT's index buffers).
 */
import { describeCheckpoint } from '../io/checkpoint.js';
import { classificationForm, HF_FORMS } from '../io/classification-form.js';
import { hfConfigFiles, type PreprocessConfig, preprocessorFields } from '../io/config.js';
import { type FamilyParameter, familyParameters, hfNames } from '../io/families/vit.js';
import type { PositionResize } from '../io/positions.js';
import { encodeSafetensors, type TensorOut } from '../io/safetensors.js';
import { type ModelLocation, modelFiles, readJson } from '../io/source.js';
import { PLAIN_VIT, positionedPrefix, untrainable } from '../nn/arch.js';
import type { ViTShape } from '../nn/shape.js';

/** A trainer's parameter: its name in the model written, and in the checkpoint read where other. */
export interface TrainParam extends FamilyParameter {
  source?: string;
}

/** How a trainer's parameters and model files are laid out (plain data: each worker gets the parameter list). */
export interface TrainSpec {
  params: TrainParam[];
  /** The family written: 'vit', or the family fine-tuned. */
  family: string;
  /** Fine-tuning another family: the config.json written; absent: the plain ViT's (src/io/config.ts, hfConfigFiles). */
  config?: Record<string, unknown>;
  /** Tensors written back as the checkpoint has them: (name written, name read). */
  carried?: { name: string; source: string }[];
  /** The checkpoint's positions are another grid than the training size's: resized as its library does. */
  positions?: { grid: [number, number]; prefix: number; mode: PositionResize };
}

/** The plain ViT in Hugging Face's names (from scratch, or a ViT checkpoint). */
export function plainSpec(c: ViTShape): TrainSpec {
  return { params: familyParameters({ ...c, arch: PLAIN_VIT }, hfNames('vit.')), family: 'vit' };
}

/**
 * The dimensions and parameters of a fine-tune of `from`: the plain ViT's when it is one in Hugging
 * Face names (null: the caller's plain path); else its family's classification form at `size`
 * (the checkpoint's own when absent), with `labels.length` classes (a new head) or the
 * checkpoint's own classifier (`newHead` false). Refuses by name what training cannot compute.
 */
export async function familySpec(
  from: ModelLocation,
  labels: string[] | undefined,
  newHead: boolean,
  size?: [number, number],
): Promise<{ dims: ViTShape; spec: TrainSpec; labels: string[] } | null> {
  const files = await modelFiles(from);
  // config.json says the plain ViT: the plain path reads it, as it always has
  const said = (await files.exists('config.json')) ? await readJson(files, 'config.json') : {};
  if (said.model_type === 'vit') return null;
  const d = await describeCheckpoint(files, size);
  if (d.family === 'vit' && d.scheme === 'hf') return null;
  const where = typeof from === 'string' ? from : 'the model';
  const form = HF_FORMS[d.family];
  if (d.scheme !== 'hf' || !form)
    throw new Error(
      `vit-wasm: ${where} is a ${d.family} checkpoint in ${d.scheme} names: fine-tuning reads Hugging Face names; a linear probe (linearProbe, or train --freeze all) works for every family`,
    );
  const own = d.config.arch ?? PLAIN_VIT,
    arch = form.reads(own);
  const why = untrainable(arch);
  if (why)
    throw new Error(
      `vit-wasm: ${where}: fine-tuning a ${d.family} model with ${why} is not supported yet (its backward is not written)`,
    );
  if (!newHead && (own.head !== 'linear' || JSON.stringify(own) !== JSON.stringify(arch)))
    throw new Error(
      `vit-wasm: ${where} has no ${form.arch} classifier to go on training: fine-tune it with a new head (newHead: true, or train --from in the CLI)`,
    );
  if (
    arch.attentionBias === 'relative' &&
    (d.own.imageSize[0] !== d.config.imageSize[0] || d.own.imageSize[1] !== d.config.imageSize[1])
  )
    throw new Error(
      `vit-wasm: ${where}: fine-tuning a BEiT at ${d.config.imageSize.join('x')} (its tables are for ${d.own.imageSize.join('x')}) is not supported yet: fine-tune it at its own size`,
    );
  const classes = newHead ? labels : d.config.labels;
  if (!classes || classes.length < 2)
    throw new Error(`vit-wasm: fine-tuning ${where} needs the labels of 2 or more classes (options.labels)`);
  const shapes = d.shapes;
  const f = classificationForm(d.family, 'hf', d.names, new Set(shapes.keys()), d.full, classes, d.file);
  // the network's shape only (the checkpoint's labels and raw config stay behind: workers get dims)
  const { labels: _labels, raw: _raw, ...shape } = d.config;
  const dims: ViTShape = { ...shape, arch, numLabels: classes.length };
  // the checkpoint's names, as the classification form writes them; the classifier its own (or new)
  const head = new Set([d.names.headW, d.names.headB]);
  const params: TrainParam[] = familyParameters(
    dims,
    d.names,
    d.family === 'clip' || d.family === 'siglip' ? 'clip' : 'hf',
  ).map((p) =>
    p.fixed
      ? p
      : /\.qkv\.b\./.test(p.role) && d.config.qkvBias === false && !shapes.has(p.name)
        ? { ...p, name: `(no bias ${p.role})`, fixed: true } // qkv_bias false: zero, as the model computes it
        : p.role.startsWith('head.')
          ? {
              ...p,
              name: p.role === 'head.w' ? 'classifier.weight' : 'classifier.bias',
              source: newHead ? undefined : p.name,
            }
          : { ...p, name: f.rename(p.name), source: p.name },
  );
  const read = new Set(params.map((p) => p.source ?? ''));
  const carried = [...shapes.keys()]
    .filter((n) => !read.has(n) && !f.drop(n) && !head.has(n))
    .map((n) => ({ name: f.rename(n), source: n }));
  return {
    dims,
    spec: { params, family: d.family, config: sized(f.config, dims), carried, positions: positionsOf(d, dims) },
    labels: classes,
  };
}

/** The classification form's config at the trained size (image_size where the network's fields are). */
function sized(config: Record<string, unknown>, c: ViTShape): Record<string, unknown> {
  const side = c.imageSize[0] === c.imageSize[1] ? c.imageSize[0] : c.imageSize;
  const vision = config.vision_config;
  if (vision && typeof vision === 'object') return { ...config, vision_config: { ...vision, image_size: side } };
  return { ...config, image_size: side };
}

/** Where the checkpoint's positions are another grid than training's: its grid, positioned prefix and resize. */
function positionsOf(d: Awaited<ReturnType<typeof describeCheckpoint>>, c: ViTShape): TrainSpec['positions'] {
  const p = c.patchSize,
    grid: [number, number] = [d.own.imageSize[0] / p, d.own.imageSize[1] / p];
  if (grid[0] === c.imageSize[0] / p && grid[1] === c.imageSize[1] / p) return undefined;
  return { grid, prefix: positionedPrefix(c.arch ?? PLAIN_VIT), mode: d.resize };
}

/**
 * The files of a trained model: config.json (the plain ViT's, or the fine-tuned family's
 * classification form with these labels), model.safetensors of `tensors`, preprocessor_config.json
 * of `preprocessing` (a model's PreprocessConfig as its processor config says it, or its fields).
 */
export function modelFilesOf(
  spec: TrainSpec,
  dims: ViTShape,
  labels: string[],
  tensors: TensorOut[],
  preprocessing: PreprocessConfig | Record<string, unknown>,
  steps: number,
): Record<string, Uint8Array | string> {
  const fields = 'imageMean' in preprocessing ? preprocessorFields(preprocessing as PreprocessConfig) : preprocessing;
  const files: Record<string, Uint8Array | string> = hfConfigFiles(dims, labels, fields);
  if (spec.config) {
    const id2label = Object.fromEntries(labels.map((l, i) => [String(i), l])),
      label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    files['config.json'] = JSON.stringify({ ...spec.config, id2label, label2id }, null, 2);
  }
  files['model.safetensors'] = encodeSafetensors(tensors, { format: 'pt', trainer: 'vit-wasm', steps: String(steps) });
  return files;
}
