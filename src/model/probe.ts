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

/** Hugging Face's classification class of each family, and the prefix its backbone's names take there. */
const HF_FORMS: Record<string, { arch: string; prefix?: string; drop?: RegExp; wrap?: string }> = {
  vit: { arch: 'ViTForImageClassification', prefix: 'vit.' },
  deit: { arch: 'DeiTForImageClassification', drop: /^(cls_classifier|distillation_classifier)\./ },
  dinov2: { arch: 'Dinov2ForImageClassification', prefix: 'dinov2.' },
  beit: { arch: 'BeitForImageClassification' },
  // the text tower and both projections are not part of the classifier's model
  clip: {
    arch: 'CLIPForImageClassification',
    drop: /^(text_model\.|text_projection\.|visual_projection\.|logit_scale$)/,
    wrap: 'clip',
  },
  siglip: { arch: 'SiglipForImageClassification', drop: /^(text_model\.|logit_scale$|logit_bias$)/, wrap: 'siglip' },
};

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

/**
 * How a checkpoint of `family` in `scheme` becomes its classification form: tensors left out,
 * names changed, the classifier's names, the config, and whether the classifier reads 2D floats.
 */
function classificationForm(
  family: string,
  scheme: string,
  names: { patchW: string; registers?: string },
  tensors: ReadonlySet<string>,
  config: Record<string, unknown>,
  labels: string[],
  file: string,
) {
  const L = labels.length,
    id2label = Object.fromEntries(labels.map((l, i) => [String(i), l])),
    label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
  const linear =
    (w: string, bias: string) =>
    (W: Float32Array, b: Float32Array, L: number, F: number): TensorOut[] => [
      { name: w, shape: [L, F], data: W },
      { name: bias, shape: [L], data: b },
    ];
  if (scheme === 'timm') {
    // timm's classifier is `head`; a DeiT (VisionTransformerDistilled) always averages it with
    // `head_dist` on its distillation token: head 2W, 2b and head_dist zero average to exactly W, b
    // (scaling by 2 is exact in floats)
    const distilled = tensors.has('head_dist.weight');
    const pcfg = config.pretrained_cfg;
    return {
      drop: (n: string) => /^head(_dist)?\./.test(n),
      rename: (n: string) => n,
      head: distilled
        ? (W: Float32Array, b: Float32Array, L: number, F: number): TensorOut[] => [
            ...linear('head.weight', 'head.bias')(
              W.map((v) => 2 * v),
              b.map((v) => 2 * v),
              L,
              F,
            ),
            ...linear('head_dist.weight', 'head_dist.bias')(new Float32Array(L * F), new Float32Array(L), L, F),
          ]
        : linear('head.weight', 'head.bias'),
      hidden: names.patchW,
      bothTokens: false,
      config: {
        ...config,
        num_classes: L,
        label_names: labels,
        id2label,
        ...(pcfg && typeof pcfg === 'object'
          ? { pretrained_cfg: { ...pcfg, num_classes: L, label_names: labels } }
          : {}),
      },
    };
  }
  const form = HF_FORMS[family];
  if (scheme !== 'hf' || !form)
    throw new Error(
      `vit-wasm: ${file}: a linear probe writes its model in the checkpoint's own names with a classifier; ${scheme} checkpoints have no classifier form vit-wasm writes (Hugging Face and timm checkpoints do)`,
    );
  // a backbone saved alone (ViTModel, Dinov2Model) has no prefix; under a classifier it has one
  const prefix = form.prefix && names.patchW.startsWith('embeddings.') ? form.prefix : '';
  const registers = family === 'dinov2' && names.registers !== undefined && tensors.has(names.registers);
  const at = prefix && registers ? 'dinov2_with_registers.' : prefix;
  const arch = registers ? 'Dinov2WithRegistersForImageClassification' : form.arch;
  const top: Record<string, unknown> = { ...config, architectures: [arch], id2label, label2id };
  delete top.num_labels; // (id2label says it)
  // a CLIPVisionModel's flat config becomes a CLIPConfig's vision_config, where the classifier's model reads it
  const flat = form.wrap && config.vision_config === undefined;
  return {
    drop: (n: string) => /^classifier\./.test(n) || (form.drop?.test(n) ?? false),
    rename: (n: string) => at + n,
    head: linear('classifier.weight', 'classifier.bias'),
    hidden: names.patchW,
    bothTokens: family === 'dinov2',
    config: flat
      ? {
          model_type: form.wrap,
          architectures: [arch],
          id2label,
          label2id,
          vision_config: { ...config, architectures: undefined },
        }
      : top,
  };
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
