/**
 * The parts of `vit-wasm train --data` (src/cli/train-run.ts): the model's shape and preprocessing
 * (from scratch, or `--from` a checkpoint with a new head), batches read and augmented from a
 * dataset, validation, and checkpoints that `--resume` continues from exactly (weights, AdamW's
 * moments, and where the run was).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { PreprocessConfig } from '../io/config.js';
import { PRESETS } from '../io/presets.js';
import { encodeSafetensors, readSafetensorsHeader, TensorReader } from '../io/safetensors.js';
import { modelFiles } from '../io/source.js';
import { loadModel } from '../model/load.js';
import { type AugmentMode, augment } from '../train/augment.js';
import { defaultPreprocessing } from '../train/fit.js';
import { argmax, type TrainDims, type Trainer } from '../train/trainer.js';
import type { ImageCache, ImageSet } from './dataset.js';
import { MNIST_DIMS } from './mnist.js';
import type { DataArgs } from './train-args.js';

/** What `last/trainer-state.json` holds besides the weights and moments: where the run stopped. */
export interface RunState {
  /** The arguments that shape the run; a resume with others is refused. */
  run: Record<string, unknown>;
  epoch: number;
  /** Steps of `epoch` done (0: the epoch has not started). */
  stepInEpoch: number;
  /** The best validation accuracy (or, without validation, the lowest training loss, negated); null before the first epoch. */
  best: number | null;
  bestEpoch: number;
  sinceBest: number;
  history: { epoch: number; loss: number; trainAcc: number; valAcc: number | null }[];
  skipped: number;
  /** The running sums of the epoch in progress. */
  partial: { lossSum: number; right: number; seen: number };
  /** Optimiser steps taken (written at save). */
  step?: number;
}

/** The shape, preprocessing and start of the run: `--from` a checkpoint (new head), or a preset / explicit dims. */
export async function modelSpec(a: DataArgs, classes: string[]) {
  if (a.from) {
    const m = await loadModel(a.from, { threads: 1 });
    try {
      const c = m.config;
      // another family is fine-tuned in its classification form, or refused by name (src/train/spec.ts)
      const dims: TrainDims = {
        arch: c.arch,
        imageSize: c.imageSize,
        patchSize: c.patchSize,
        numChannels: c.numChannels,
        hiddenSize: c.hiddenSize,
        numLayers: c.numLayers,
        numHeads: c.numHeads,
        intermediateSize: c.intermediateSize,
        numLabels: classes.length,
        layerNormEps: c.layerNormEps,
      };
      return { dims, pre: m.preprocessing };
    } finally {
      await m.dispose();
    }
  }
  // a preset, or the small ViT of the digits (in colour): each dimension flag overrides it
  const base = a.preset ? PRESETS[a.preset] : { ...MNIST_DIMS, numChannels: 3 };
  const dims: TrainDims = {
    imageSize: [a.imageSize ?? base.imageSize[0], a.imageSize ?? base.imageSize[1]],
    patchSize: a.patch ?? base.patchSize,
    numChannels: a.channels ?? base.numChannels,
    hiddenSize: a.hidden ?? base.hiddenSize,
    numLayers: a.layers ?? base.numLayers,
    numHeads: a.heads ?? base.numHeads,
    intermediateSize: a.mlp ?? base.intermediateSize,
    numLabels: classes.length,
    layerNormEps: base.layerNormEps,
  };
  return { dims, pre: defaultPreprocessing(dims) };
}

/** Reads B samples into x (augmented with `mode`), leaving out bad files when `skipBad`; the labels of what was read. */
export function loadBatch(
  set: ImageSet,
  idx: number[],
  cache: ImageCache,
  pre: PreprocessConfig,
  channels: 1 | 3,
  mode: AugmentMode,
  rand: (b: number) => () => number,
  x: Float32Array,
  skipBad: boolean,
): { labels: number[]; bad: string[] } {
  const per = channels * pre.size[0] * pre.size[1],
    labels: number[] = [],
    bad: string[] = [];
  idx.forEach((k, b) => {
    const s = set.samples[k];
    try {
      augment(
        cache.read(s.file),
        pre,
        channels,
        mode,
        rand(b),
        x.subarray(labels.length * per, (labels.length + 1) * per),
      );
      labels.push(s.label);
    } catch (e) {
      if (!skipBad) throw new Error(`${(e as Error).message} (--skip-bad leaves bad images out and counts them)`);
      bad.push(`${s.file}: ${(e as Error).message.replace(/^vit-wasm: /, '')}`);
    }
  });
  return { labels, bad };
}

/** Accuracy of the trainer on a set (eval preprocessing), and the images it could not read. */
export async function validate(trainer: Trainer, set: ImageSet, cache: ImageCache, pre: PreprocessConfig, a: DataArgs) {
  const C = trainer.dims.numChannels as 1 | 3,
    B = a.batch,
    x = new Float32Array(B * C * pre.size[0] * pre.size[1]);
  let right = 0,
    seen = 0,
    skipped = 0;
  for (let s = 0; s < set.samples.length; s += B) {
    const idx = Array.from({ length: Math.min(B, set.samples.length - s) }, (_, i) => s + i);
    const { labels, bad } = loadBatch(set, idx, cache, pre, C, 'none', () => Math.random, x, a.skipBad);
    skipped += bad.length;
    if (!labels.length) continue;
    const z = await trainer.logits(x.subarray(0, (labels.length * x.length) / B), labels.length),
      L = trainer.dims.numLabels;
    labels.forEach((y, b) => {
      right += +(argmax(z.subarray(b * L, (b + 1) * L)) === y);
    });
    seen += labels.length;
  }
  return { accuracy: seen ? right / seen : 0, seen, skipped };
}

/** Writes a checkpoint directory; `state` adds the optimiser's moments and where the run is, for --resume. */
export async function saveCheckpoint(
  trainer: Trainer,
  dir: string,
  pre: PreprocessConfig,
  state?: RunState,
): Promise<void> {
  await trainer.save(dir, pre);
  if (!state) return;
  const o = trainer.optimizerState();
  writeFileSync(
    path.join(dir, 'optimizer.safetensors'),
    encodeSafetensors(
      [
        { name: 'exp_avg', shape: [o.m.length], data: o.m },
        { name: 'exp_avg_sq', shape: [o.v.length], data: o.v },
      ],
      { step: String(o.step) },
    ),
  );
  writeFileSync(path.join(dir, 'trainer-state.json'), `${JSON.stringify({ ...state, step: o.step }, null, 1)}\n`);
}

/** The state of `OUT/last` for --resume, checked against this run's arguments. */
export async function readResume(dir: string, run: Record<string, unknown>) {
  const file = path.join(dir, 'trainer-state.json');
  if (!existsSync(file))
    throw new Error(`vit-wasm: --resume: ${file} is missing (no run was saved in ${path.dirname(dir)})`);
  const state = JSON.parse(readFileSync(file, 'utf8')) as RunState;
  for (const [k, v] of Object.entries(run))
    if (JSON.stringify(state.run[k]) !== JSON.stringify(v))
      throw new Error(
        `vit-wasm: --resume: the saved run had ${k} ${JSON.stringify(state.run[k])}, this one ${JSON.stringify(v)}; resume with the same arguments`,
      );
  const src = await (await modelFiles(dir)).open('optimizer.safetensors');
  try {
    const t = await readSafetensorsHeader(src),
      r = new TensorReader(t.values());
    const m = (await r.read(t.get('exp_avg')!)).slice(),
      v = (await r.read(t.get('exp_avg_sq')!)).slice();
    return { state, m, v };
  } finally {
    await src.close();
  }
}

/** The progress bar of a training epoch (both `train` commands): step, loss, accuracy, images/s, ETA. */
export function epochBar(): cliProgress.SingleBar {
  return new cliProgress.SingleBar(
    {
      format:
        'epoch {epoch}/{epochs} |{bar}| step {value}/{total} | loss {loss} | acc {acc}% | {speed} img/s | ETA {eta_formatted}',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
}
