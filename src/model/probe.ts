/**
 * Linear probes of any family vit-wasm loads: a new classifier trained on the features a frozen
 * checkpoint computes once per image (embed's 'head': what its family's classifier reads), the
 * fast path of fine-tuning with a frozen backbone. The result is the checkpoint in its family's
 * own image-classification form — its tensors as they were, under their names, with the classifier
 * that form reads (ViTForImageClassification, DeiTForImageClassification,
 * Dinov2ForImageClassification on the cls token and mean side by side, BeitForImageClassification,
 * CLIPForImageClassification, SiglipForImageClassification, timm's `head`), so that vit-wasm and
 * the family's library load it as any other checkpoint.
 */

import { classificationForm } from '../io/classification-form.js';
import { detectFamily } from '../io/families/index.js';
import { encodeSafetensors, type TensorOut } from '../io/safetensors.js';
import { type ModelLocation, modelFiles, readJson } from '../io/source.js';
import { openTensors } from '../io/tensors.js';
import { writeLocalFiles } from '../platform/platform.js';
import { type Dataset, type Example, type FitEpoch, fitExamples } from '../train/fit.js';
import { type HeadOptions, HeadTrainer } from '../train/head.js';
import { loadModel } from './load.js';
import type { ViTModel } from './model.js';
import type { LoadOptions } from './options.js';

/** A checkpoint made ready for a probe: the model with a zero classifier, and how to write it with a trained one. */
export interface ProbeTarget {
  /** The checkpoint in its classification form (classifier all zero): its embed 'head' gives the features. */
  model: ViTModel;
  /** Floats per image the classifier reads. */
  features: number;
  /** The model directory's files with classifier W (L, F) and b (L). */
  files(W: Float32Array, b: Float32Array): Record<string, Uint8Array | string>;
}

/**
 * Opens `from` for a linear probe to `labels`: its tensors kept (a classifier it had is replaced),
 * its config told the classes and the classification form, loaded with `load`'s options.
 */
export async function openProbe(from: ModelLocation, labels: string[], load: LoadOptions = {}): Promise<ProbeTarget> {
  if (!Array.isArray(labels) || labels.length < 2 || labels.some((l) => typeof l !== 'string'))
    throw new Error('vit-wasm: a linear probe needs the names of 2 or more classes (labels)');
  const files = await modelFiles(from);
  const config = (await files.exists('config.json')) ? await readJson(files, 'config.json') : {};
  const { tensors, sources, file } = await openTensors(files);
  const kept: TensorOut[] = [];
  let out: ReturnType<typeof classificationForm>;
  try {
    const { family, spec, names } = detectFamily(new Set(tensors.keys()), file, config);
    out = classificationForm(family.name, spec.scheme, names, new Set(tensors.keys()), config, labels, file);
    for (const t of tensors.values()) {
      if (out.drop(t.name)) continue;
      const bytes = (await t.source.read(t.begin, t.end - t.begin)).slice();
      kept.push({ name: out.rename(t.name), shape: t.shape, dtype: t.dtype, bytes });
    }
  } finally {
    await Promise.all(sources.map((s) => s.close()));
  }
  const pre = (await files.exists('preprocessor_config.json')) ? await files.text('preprocessor_config.json') : null;
  // D: the patch embedding's output channels (D, C, p, p)
  const D = kept.find((t) => t.name === out.rename(out.hidden))?.shape[0] ?? 0;
  if (!D) throw new Error(`vit-wasm: ${file}: internal: no patch embedding '${out.hidden}' to size the classifier by`);
  const F = out.bothTokens ? 2 * D : D,
    L = labels.length;
  const write = (W: Float32Array, b: Float32Array): Record<string, Uint8Array | string> => {
    if (W.length !== L * F || b.length !== L)
      throw new Error(
        `vit-wasm: a probe's classifier is (${L}, ${F}) and (${L}), got ${W.length} and ${b.length} values`,
      );
    const head = out.head(W, b, L, F);
    return {
      'config.json': `${JSON.stringify(out.config, null, 2)}\n`,
      'model.safetensors': encodeSafetensors([...kept, ...head], { format: 'pt', trainer: 'vit-wasm linear probe' }),
      ...(pre === null ? {} : { 'preprocessor_config.json': pre }),
    };
  };
  const model = await loadModel(write(new Float32Array(L * F), new Float32Array(L)), load);
  return { model, features: F, files: write };
}

/** Options of {@link linearProbe}. */
export interface ProbeOptions extends HeadOptions {
  /** The class names, index by index. */
  labels: string[];
  /** Default 10. */
  epochs?: number;
  /** Examples per step. Default 64. */
  batchSize?: number;
  /** Examples scored after every epoch. */
  validation?: Dataset;
  /** Warmup as a fraction of the steps. Default 0.05. */
  warmup?: number;
  /** How the model is loaded (threads, simd). */
  load?: LoadOptions;
  /** After each batch of features: how many images are done. */
  onEmbed?: (done: number) => void;
  onEpoch?: (e: FitEpoch) => void;
  /** Stops after the epoch in progress. */
  signal?: AbortSignal;
}

/** What {@link linearProbe} gives. */
export interface ProbeResult {
  epochs: FitEpoch[];
  /** The model directory with the last epoch's classifier. */
  files(): Record<string, Uint8Array | string>;
  /** Writes {@link files} into a directory (Node). */
  save(dir: string): Promise<void>;
  stopped: boolean;
}

/**
 * A linear probe of `from` (any checkpoint vit-wasm loads, Hugging Face or timm names): the
 * features of every example computed once, with the model's own preprocessing, then a new
 * classifier trained on them (AdamW, warmup + cosine, clipping, label smoothing).
 * @example
 * const { classes, examples } = imageFolder('photos');
 * const probe = await linearProbe('dinov2-small', examples, { labels: classes, epochs: 20 });
 * await probe.save('photos-probe');
 */
export async function linearProbe(from: ModelLocation, data: Dataset, options: ProbeOptions): Promise<ProbeResult> {
  const target = await openProbe(from, options.labels, options.load);
  try {
    const B = options.batchSize ?? 64,
      epochs = options.epochs ?? 10;
    if (!Number.isInteger(B) || B < 1)
      throw new Error(`vit-wasm: linearProbe: batchSize must be a positive integer, got ${B}`);
    if (!Number.isInteger(epochs) || epochs < 1)
      throw new Error(`vit-wasm: linearProbe: epochs must be a positive integer, got ${epochs}`);
    const train = await featuresOf(target, data, options.labels.length, options.onEmbed);
    const val = options.validation ? await featuresOf(target, options.validation, options.labels.length) : null;
    const steps = epochs * Math.ceil(train.y.length / B);
    const head = new HeadTrainer(target.features, options.labels.length, {
      ...options,
      totalSteps: steps,
      warmupSteps: Math.round(steps * (options.warmup ?? 0.05)),
    });
    const history: FitEpoch[] = [];
    let stopped = false;
    for (let e = 1; e <= epochs; e++) {
      const t0 = performance.now(),
        r = head.epoch(train.x, train.y, e, B);
      const acc = val ? accuracy(head.predict(val.x, val.y.length), val.y) : null;
      const rec: FitEpoch = {
        epoch: e,
        loss: r.loss,
        accuracy: r.accuracy,
        validationAccuracy: acc,
        seconds: (performance.now() - t0) / 1000,
      };
      history.push(rec);
      options.onEpoch?.(rec);
      if (options.signal?.aborted) {
        stopped = e < epochs;
        break;
      }
    }
    const { W, b } = head.weights();
    return {
      epochs: history,
      files: () => target.files(W, b),
      save: (dir) => writeLocalFiles(dir, target.files(W, b)),
      stopped,
    };
  } finally {
    await target.model.dispose();
  }
}

/** The share of predictions equal to the labels. */
export function accuracy(pred: Int32Array, y: Int32Array): number {
  let right = 0;
  for (let i = 0; i < y.length; i++) right += +(pred[i] === y[i]);
  return y.length ? right / y.length : 0;
}

/** The features (n, F) and labels of every example, in order, 32 images per forward. */
async function featuresOf(
  t: ProbeTarget,
  data: Dataset,
  L: number,
  onEmbed?: (done: number) => void,
): Promise<{ x: Float32Array; y: Int32Array }> {
  const parts: Float32Array[] = [],
    labels: number[] = [];
  let batch: Example[] = [];
  const flush = async () => {
    if (!batch.length) return;
    parts.push(
      await t.model.embed(
        batch.map((e) => e.image),
        { pooling: 'head' },
      ),
    );
    batch = [];
    onEmbed?.(labels.length);
  };
  for await (const ex of fitExamples(data, L)) {
    batch.push(ex);
    labels.push(ex.label);
    if (batch.length === 32) await flush();
  }
  await flush();
  if (!labels.length) throw new Error('vit-wasm: linearProbe: the dataset gave no examples');
  const x = new Float32Array(labels.length * t.features);
  let o = 0;
  for (const p of parts) {
    x.set(p, o);
    o += p.length;
  }
  return { x, y: Int32Array.from(labels) };
}
