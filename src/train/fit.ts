/**
 * `trainer.fit(data, options)`: epochs over labelled images — any image vit-wasm reads, or inputs
 * already preprocessed — decoded per batch, augmented (src/train/augment.ts) and normalized, each
 * step reported, validation per epoch, stopped cleanly by an AbortSignal. And the datasets people
 * have: an ImageFolder directory (Node) or the files of a dropped folder / `<input webkitdirectory>`.
 */
import { type PreprocessConfig, parsePreprocess } from '../io/config.js';
import type { RawImage } from '../io/image/decode.js';
import { type ImageInput, readImage } from '../io/image/read.js';
import { byCodePoint } from '../platform/api.js';
import { listImageFolder } from '../platform/platform.js';
import { AUGMENT_MODES, type AugmentMode, augment, permutation, streamRandom } from './augment.js';
import { argmax } from './core.js';
import { MAX_MICRO_BATCHES, type TrainDims } from './options.js';

/** One labelled example: an image (anything `readImage` takes) or a model input (C, H, W) already normalized. */
export interface Example {
  image: ImageInput | Float32Array;
  label: number;
}
/** Examples: an array (shuffled every epoch) or any (async) iterable, read in its order every epoch. */
export type Dataset = Iterable<Example> | AsyncIterable<Example>;

/** Images with labels and their class names (label i is `classes[i]`): pass `classes` as createTrainer's `labels`. */
export interface LabelledImages {
  classes: string[];
  examples: Example[];
}

export interface FitStep {
  epoch: number;
  /** Steps of this epoch done. */
  step: number;
  loss: number;
  /** Running accuracy of this epoch's training batches (from each step's forward). */
  accuracy: number;
  /** Images seen this epoch. */
  images: number;
}
export interface FitEpoch {
  epoch: number;
  loss: number;
  accuracy: number;
  /** Accuracy on `validation`, or null without one. */
  validationAccuracy: number | null;
  seconds: number;
}

/** Options of {@link fit}. */
export interface FitOptions {
  /** Default 1. */
  epochs?: number;
  /**
   * Images per step: the trainer's maxBatch (the default), or more, up to 1024 times it: gradients
   * accumulated over micro-batches of maxBatch.
   */
  batchSize?: number;
  /** Examples scored after every epoch (never augmented). */
  validation?: Dataset;
  /** How images become inputs (Hugging Face's processor fields, as `model.preprocessing`). Default: resize to the model's size, mean and std 0.5. */
  preprocessing?: PreprocessConfig;
  /** Train-time augmentation (src/train/augment.ts). Default `'light'`. */
  augment?: AugmentMode;
  /** Seed of the order of an array and of augmentation. Default the trainer's seed. */
  seed?: number;
  onStep?: (s: FitStep) => void;
  onEpoch?: (e: FitEpoch) => void;
  /** Stops after the step in progress (the trainer keeps what it learned). */
  signal?: AbortSignal;
}

export interface FitResult {
  epochs: FitEpoch[];
  /** Whether `signal` stopped it. */
  stopped: boolean;
}

/** What fit needs of a Trainer. */
export interface Fittable {
  readonly dims: TrainDims;
  readonly options: { maxBatch: number; seed: number };
  step(images: Float32Array, labels: ArrayLike<number>): Promise<number>;
  lastPredictions(): Int32Array;
  logits(images: Float32Array, B: number): Promise<Float32Array>;
}

/** ViTImageProcessor's defaults (src/io/config.ts, parsePreprocess): resize to the model's size, rescale by 1/255, mean and std 0.5 — what a model trained from scratch is given. */
export function defaultPreprocessing(d: TrainDims): PreprocessConfig {
  return parsePreprocess(null, d);
}

/** The examples of one epoch, in order: an array shuffled by (seed, epoch), anything else as it comes. */
async function* epochOrder(data: Dataset, seed: number, epoch: number): AsyncGenerator<Example> {
  if (Array.isArray(data)) {
    for (const i of permutation(data.length, streamRandom(seed, 1, epoch))) yield data[i];
    return;
  }
  yield* data as AsyncIterable<Example>;
}

/** A dataset's examples in its own order, each label checked against L classes (a linear probe's input). */
export async function* fitExamples(data: Dataset, L: number): AsyncGenerator<Example> {
  if (data === null || typeof data !== 'object' || !(Symbol.iterator in data || Symbol.asyncIterator in data))
    throw new Error('vit-wasm: the dataset must be an array or an (async) iterable of { image, label }');
  let n = 0;
  for await (const ex of data as AsyncIterable<Example>) {
    if (!Number.isInteger(ex?.label) || ex.label < 0 || ex.label >= L)
      throw new Error(`vit-wasm: example ${n} has label ${ex?.label}, not a class 0…${L - 1}`);
    n++;
    yield ex;
  }
}

/** Writes one example's input into `out`; `where` names it in errors. */
async function input(
  ex: Example,
  where: string,
  d: TrainDims,
  pre: PreprocessConfig,
  mode: AugmentMode,
  rand: () => number,
  out: Float32Array,
): Promise<void> {
  if (!Number.isInteger(ex?.label) || ex.label < 0 || ex.label >= d.numLabels)
    throw new Error(`vit-wasm: fit: ${where} has label ${ex?.label}, not a class 0…${d.numLabels - 1}`);
  if (ex.image instanceof Float32Array) {
    if (ex.image.length !== out.length)
      throw new Error(
        `vit-wasm: fit: ${where} is a Float32Array of ${ex.image.length} values, the model takes ${out.length} (C×H×W)`,
      );
    out.set(ex.image);
    return;
  }
  const img: RawImage = await readImage(ex.image);
  augment(img, pre, d.numChannels as 1 | 3, mode, rand, out);
}

/** Batches of an epoch: x filled with B inputs, their labels. */
async function* batches(
  data: Dataset,
  o: { seed: number; epoch: number; B: number; mode: AugmentMode; pre: PreprocessConfig; d: TrainDims },
  x: Float32Array,
): AsyncGenerator<number[]> {
  const per = x.length / o.B;
  let labels: number[] = [],
    n = 0,
    st = 0;
  for await (const ex of epochOrder(data, o.seed, o.epoch)) {
    const b = labels.length;
    await input(
      ex,
      `example ${n++} of epoch ${o.epoch}`,
      o.d,
      o.pre,
      o.mode,
      streamRandom(o.seed, 2, o.epoch, st, b),
      x.subarray(b * per, (b + 1) * per),
    );
    labels.push(ex.label);
    if (labels.length === o.B) {
      yield labels;
      labels = [];
      st++;
    }
  }
  if (labels.length) yield labels;
  if (n === 0)
    throw new Error(
      `vit-wasm: fit: the dataset gave no examples in epoch ${o.epoch}${o.epoch > 1 ? ' (a generator runs once: pass an array or an object that iterates again)' : ''}`,
    );
}

/** Accuracy over a dataset with the model's preprocessing. */
async function accuracyOn(t: Fittable, data: Dataset, o: { B: number; pre: PreprocessConfig }, x: Float32Array) {
  let right = 0,
    seen = 0;
  const L = t.dims.numLabels;
  for await (const labels of batches(data, { ...o, seed: 0, epoch: 0, mode: 'none', d: t.dims }, x)) {
    const z = await t.logits(x.subarray(0, (labels.length * x.length) / o.B), labels.length);
    labels.forEach((y, b) => {
      right += +(argmax(z.subarray(b * L, (b + 1) * L)) === y);
    });
    seen += labels.length;
  }
  return right / seen;
}

/** The epochs of {@link FitOptions} over `data`. */
export async function fitTrainer(t: Fittable, data: Dataset, options: FitOptions = {}): Promise<FitResult> {
  const d = t.dims,
    B = options.batchSize ?? t.options.maxBatch,
    epochs = options.epochs ?? 1,
    mode = options.augment ?? 'light';
  const most = t.options.maxBatch * MAX_MICRO_BATCHES;
  if (!Number.isInteger(B) || B < 1 || B > most)
    throw new Error(
      `vit-wasm: fit: batchSize ${B} is outside 1…${most} (${MAX_MICRO_BATCHES} micro-batches of the trainer's maxBatch)`,
    );
  if (!Number.isInteger(epochs) || epochs < 1)
    throw new Error(`vit-wasm: fit: epochs must be a positive integer, got ${epochs}`);
  if (!AUGMENT_MODES.includes(mode))
    throw new Error(`vit-wasm: fit: augment must be ${AUGMENT_MODES.join(', ')}, got ${mode}`);
  if (data === null || typeof data !== 'object' || !(Symbol.iterator in data || Symbol.asyncIterator in data))
    throw new Error('vit-wasm: fit: the dataset must be an array or an (async) iterable of { image, label }');
  const pre = options.preprocessing ?? defaultPreprocessing(d),
    seed = options.seed ?? t.options.seed,
    x = new Float32Array(B * d.numChannels * d.imageSize[0] * d.imageSize[1]),
    out: FitEpoch[] = [];
  for (let epoch = 1; epoch <= epochs; epoch++) {
    const t0 = performance.now();
    let lossSum = 0,
      right = 0,
      seen = 0,
      step = 0;
    for await (const labels of batches(data, { seed, epoch, B, mode, pre, d }, x)) {
      if (options.signal?.aborted) return { epochs: out, stopped: true };
      const loss = await t.step(x.subarray(0, (labels.length * x.length) / B), labels),
        pred = t.lastPredictions();
      lossSum += loss * labels.length;
      labels.forEach((y, b) => (right += +(pred[b] === y)));
      seen += labels.length;
      options.onStep?.({ epoch, step: ++step, loss, accuracy: right / seen, images: seen });
    }
    const e: FitEpoch = {
      epoch,
      loss: lossSum / seen,
      accuracy: right / seen,
      validationAccuracy: options.validation ? await accuracyOn(t, options.validation, { B, pre }, x) : null,
      seconds: (performance.now() - t0) / 1000,
    };
    out.push(e);
    options.onEpoch?.(e);
    if (options.signal?.aborted) return { epochs: out, stopped: true };
  }
  return { epochs: out, stopped: false };
}

/** An ImageFolder directory (Node): one subfolder per class, sorted names → labels, PNG/JPEG found recursively. */
export function imageFolder(dir: string): LabelledImages {
  const f = listImageFolder(dir);
  return { classes: f.classes, examples: f.files.map((s) => ({ image: s.file, label: s.cls })) };
}

/**
 * The images of a dropped folder or an `<input type="file" webkitdirectory>` (browsers): each File's
 * class is the folder it is in (`webkitRelativePath` `root/<class>/…/x.jpg`: the first folder under
 * the root). Files that are not images (by type or name) are left out.
 */
export function filesDataset(files: Iterable<File> | ArrayLike<File>): LabelledImages {
  const list = Array.from(files as ArrayLike<File>).filter(
    (f) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif|bmp|avif)$/i.test(f.name),
  );
  const classOf = (f: File) => {
    const parts = ((f as File & { webkitRelativePath?: string }).webkitRelativePath || f.name).split('/');
    if (parts.length < 3)
      throw new Error(
        `vit-wasm: ${parts.join('/')}: not in a class folder (choose the folder that holds one folder per class)`,
      );
    return parts[1];
  };
  const classes = [...new Set(list.map(classOf))].sort(byCodePoint);
  if (classes.length < 2)
    throw new Error(`vit-wasm: the files are in ${classes.length} class folder(s): a classifier needs two or more`);
  return { classes, examples: list.map((f) => ({ image: f, label: classes.indexOf(classOf(f)) })) };
}

/** {@link Trainer.evaluate}: accuracy, mean cross-entropy and predicted classes over a set, in batches of maxBatch. */
export async function evaluateTrainer(
  t: Fittable,
  images: Float32Array,
  labels: ArrayLike<number>,
): Promise<{ accuracy: number; loss: number; predictions: Int32Array }> {
  const per = images.length / labels.length,
    L = t.dims.numLabels,
    n = labels.length,
    pred = new Int32Array(n);
  let correct = 0,
    loss = 0;
  for (let s = 0; s < n; s += t.options.maxBatch) {
    const B = Math.min(t.options.maxBatch, n - s);
    const z = await t.logits(images.subarray(s * per, (s + B) * per), B);
    for (let b = 0; b < B; b++) {
      const row = z.subarray(b * L, (b + 1) * L),
        best = argmax(row),
        m = row[best];
      let se = 0;
      for (let j = 0; j < L; j++) se += Math.exp(row[j] - m);
      loss += Math.log(se) - (row[labels[s + b]] - m);
      pred[s + b] = best;
      correct += +(best === labels[s + b]);
    }
  }
  return { accuracy: correct / n, loss: loss / n, predictions: pred };
}
