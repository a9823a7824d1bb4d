/**
 * `vit-wasm train --data DIR|MANIFEST`: a ViT trained on a user's images, from scratch or fine-tuned
 * `--from` a checkpoint with a new head; train-time augmentation, AdamW under warmup + cosine,
 * validation every epoch, OUT/best and OUT/last as model directories, early stopping, Ctrl-C saving
 * OUT/last, and `--resume` continuing from it exactly. The data order is keyed by (seed, epoch) and
 * augmentation by (seed, epoch, step, image), so a resumed run writes the bytes an uninterrupted one would.
 */
import path from 'node:path';
import type cliProgress from 'cli-progress';
import type { PreprocessConfig } from '../io/config.js';
import { prepareJpegDecoder } from '../io/image/jpeg.js';
import { defaultThreadCount } from '../platform/platform.js';
import { permutation, streamRandom } from '../train/augment.js';
import { createTrainer } from '../train/create.js';
import type { TrainDims, Trainer } from '../train/trainer.js';
import { ImageCache, type ImageSet, openImageSet, stratifiedSplit } from './dataset.js';
import { probeDataCommand } from './probe-run.js';
import { type DataArgs, dataArgs } from './train-args.js';
import { epochBar, loadBatch, modelSpec, type RunState, readResume, saveCheckpoint, validate } from './train-data.js';

type UsageErrorCtor = new (m: string) => Error;

/** Where an epoch stopped: at its end, or early (Ctrl-C) after `stepInEpoch` steps. */
interface EpochEnd {
  interrupted: boolean;
}

/** One epoch from `state.stepInEpoch`, updating state (steps done, running loss and accuracy) as it goes. */
async function trainEpoch(
  trainer: Trainer,
  train: ImageSet,
  cache: ImageCache,
  pre: PreprocessConfig,
  a: DataArgs,
  state: RunState,
  stop: () => boolean,
  bar: cliProgress.SingleBar,
): Promise<EpochEnd> {
  const B = a.batch * a.accumulate, // a step's images: trainer.step accumulates micro-batches of a.batch
    n = train.samples.length,
    steps = Math.ceil(n / B),
    C = trainer.dims.numChannels as 1 | 3;
  const order = permutation(n, streamRandom(a.seed, 1, state.epoch)),
    x = new Float32Array(B * C * pre.size[0] * pre.size[1]);
  const t0 = performance.now(),
    seen0 = state.partial.seen;
  bar.start(steps, state.stepInEpoch, { epoch: state.epoch, epochs: a.epochs, loss: '-', acc: '-', speed: '-' });
  // augmentation keyed by where the image is in the run: (seed, epoch, step, place in the batch)
  const load = (st: number) =>
    loadBatch(
      train,
      order.slice(st * B, st * B + B),
      cache,
      pre,
      C,
      a.augment,
      (b) => streamRandom(a.seed, 2, state.epoch, st, b),
      x,
      a.skipBad,
    );
  for (let st = state.stepInEpoch; st < steps; st++) {
    await new Promise((r) => setImmediate(r)); // lets Ctrl-C in between steps
    if (stop()) return { interrupted: true };
    // read, then step: reading the next batch during a step would take a core from the workers,
    // which wait for each other at every op (measured: 2,600 → 1,100 img/s on 2 cores, 2 workers)
    const { labels, bad } = load(st);
    state.skipped += bad.length;
    for (const b of bad) console.error(`skipped ${b}`);
    if (labels.length) {
      const loss = await trainer.step(x.subarray(0, (labels.length * x.length) / B), labels),
        preds = trainer.lastPredictions();
      state.partial.lossSum += loss * labels.length;
      labels.forEach((y, b) => (state.partial.right += +(preds[b] === y)));
      state.partial.seen += labels.length;
    }
    state.stepInEpoch = st + 1;
    const p = state.partial;
    bar.update(st + 1, {
      loss: (p.lossSum / Math.max(1, p.seen)).toFixed(4),
      acc: ((100 * p.right) / Math.max(1, p.seen)).toFixed(1),
      speed: Math.round((p.seen - seen0) / ((performance.now() - t0) / 1000)),
    });
  }
  bar.stop();
  return { interrupted: false };
}

/** The data: --data, and --val or a stratified --val-split of it. */
function datasets(a: DataArgs): { train: ImageSet; val: ImageSet | null } {
  const all = openImageSet(a.data);
  if (a.val) return { train: all, val: openImageSet(a.val, all.classes) };
  if (a.valSplit > 0) return stratifiedSplit(all, a.valSplit, a.seed);
  return { train: all, val: null };
}

/** What decides the bytes a run writes: its data, shape and recipe (paths resolved). A resume must repeat them. */
function runRecord(a: DataArgs, dims: TrainDims): Record<string, unknown> {
  return {
    data: path.resolve(a.data),
    val: a.val && path.resolve(a.val),
    valSplit: a.valSplit,
    from: a.from,
    dims,
    epochs: a.epochs,
    batch: a.batch,
    ...(a.accumulate > 1 ? { accumulate: a.accumulate } : {}), // (absent from the records of runs before it)
    lr: a.lr,
    weightDecay: a.weightDecay,
    warmup: a.warmup,
    clip: a.clip,
    augment: a.augment,
    seed: a.seed,
    threads: a.threads,
    freeze: a.freeze,
    labelSmoothing: a.labelSmoothing,
    layerDecay: a.layerDecay,
  };
}

export async function trainDataCommand(argv: string[], Usage: UsageErrorCtor): Promise<number> {
  const a = dataArgs(argv, Usage, defaultThreadCount());
  await prepareJpegDecoder();
  const { train, val } = datasets(a);
  if (a.freeze === 'all' && a.augment === 'none') {
    // a linear probe: every family, on features computed once (src/cli/probe-run.ts)
    if (a.resume)
      throw new Usage(
        '--resume continues a fine-tune; a linear probe (--freeze all) computes its features again and trains its head in seconds: run it without --resume',
      );
    return probeDataCommand(a, train, val);
  }
  const { dims, pre } = await modelSpec(a, train.classes);
  const steps = Math.ceil(train.samples.length / (a.batch * a.accumulate)),
    total = steps * a.epochs;
  const run = runRecord(a, dims);
  const lastDir = path.join(a.out, 'last'),
    bestDir = path.join(a.out, 'best');
  const resumed = a.resume ? await readResume(lastDir, run) : null;
  const trainer = await createTrainer(dims, {
    from: resumed ? lastDir : a.from,
    newHead: !resumed && a.from !== undefined,
    labels: train.classes,
    maxBatch: a.batch,
    lr: a.lr,
    weightDecay: a.weightDecay,
    warmupSteps: Math.round(total * a.warmup),
    totalSteps: total,
    clipNorm: a.clip,
    freeze: a.freeze,
    labelSmoothing: a.labelSmoothing,
    layerDecay: a.layerDecay,
    seed: a.seed,
    threads: a.threads,
    recompute: a.recompute,
  });
  if (resumed) trainer.restoreOptimizer({ step: resumed.state.step ?? 0, m: resumed.m, v: resumed.v });
  const state: RunState = resumed?.state ?? {
    run,
    epoch: 1,
    stepInEpoch: 0,
    best: null,
    bestEpoch: 0,
    sinceBest: 0,
    history: [],
    skipped: 0,
    partial: { lossSum: 0, right: 0, seen: 0 },
  };
  console.log(
    `${resumed ? `resuming ${lastDir} at epoch ${state.epoch}, step ${state.stepInEpoch}: ` : ''}training a ${dims.numLayers}-layer ViT ` +
      `(${dims.imageSize.join('×')} px, patch ${dims.patchSize}, hidden ${dims.hiddenSize}, ${dims.numHeads} heads, MLP ${dims.intermediateSize})` +
      `${a.from ? ` from ${a.from} with a new ${train.classes.length}-class head${a.freeze === 'all' ? ', backbone frozen (linear probe)' : typeof a.freeze === 'number' ? `, training the last ${a.freeze} blocks` : ''}` : ' from scratch'} on ${trainer.threads} thread(s); ` +
      `${train.samples.length} images in ${train.classes.length} classes, ${val ? `${val.samples.length} for validation` : 'no validation'}; ` +
      `${a.epochs} epochs of ${steps} steps, batch ${a.batch}${a.accumulate > 1 ? ` × ${a.accumulate} accumulated` : ''}, AdamW lr ${a.lr}, augment ${a.augment}, seed ${a.seed}`,
  );
  let stop = false;
  const onInt = () => {
    if (stop) process.exit(130); // a second Ctrl-C does not wait for the save
    stop = true;
    console.error('\nCtrl-C: saving after this step (again to quit at once)');
  };
  process.on('SIGINT', onInt);
  // for tests: what Ctrl-C does, once this many steps have been taken (a reproducible interruption)
  const stopAt = Number(process.env.VIT_WASM_STOP_AFTER_STEPS) || Infinity;
  try {
    return await epochs(
      trainer,
      train,
      val,
      pre,
      a,
      state,
      () => stop || trainer.stepCount >= stopAt,
      lastDir,
      bestDir,
    );
  } finally {
    process.off('SIGINT', onInt);
    await trainer.dispose();
  }
}

/** The epochs from state.epoch on: train, validate, keep best and last, stop early or on Ctrl-C. */
async function epochs(
  trainer: Trainer,
  train: ImageSet,
  val: ImageSet | null,
  pre: PreprocessConfig,
  a: DataArgs,
  state: RunState,
  stop: () => boolean,
  lastDir: string,
  bestDir: string,
): Promise<number> {
  const cache = new ImageCache(a.cacheMb * 2 ** 20),
    t0 = performance.now();
  const bar = epochBar();
  for (; state.epoch <= a.epochs; ) {
    const te = performance.now();
    let end: EpochEnd;
    try {
      end = await trainEpoch(trainer, train, cache, pre, a, state, stop, bar);
    } catch (e) {
      bar.stop();
      await saveCheckpoint(trainer, lastDir, pre, state);
      throw new Error(`${(e as Error).message}; the run so far is saved in ${lastDir} (--resume continues it)`);
    }
    if (end.interrupted) {
      bar.stop();
      await saveCheckpoint(trainer, lastDir, pre, state);
      console.log(`saved ${lastDir} at epoch ${state.epoch}, step ${state.stepInEpoch}; --resume continues from there`);
      return 130;
    }
    const p = state.partial,
      sec = (performance.now() - te) / 1000;
    const v = val ? await validate(trainer, val, cache, pre, a) : null;
    state.history.push({
      epoch: state.epoch,
      loss: p.lossSum / Math.max(1, p.seen),
      trainAcc: p.right / Math.max(1, p.seen),
      valAcc: v?.accuracy ?? null,
    });
    const score = v ? v.accuracy : -p.lossSum / Math.max(1, p.seen); // no validation: the lowest training loss
    const better = state.best === null || score > state.best;
    if (better) Object.assign(state, { best: score, bestEpoch: state.epoch, sinceBest: 0 });
    else state.sinceBest++;
    console.log(
      `epoch ${state.epoch}/${a.epochs}: loss ${(p.lossSum / Math.max(1, p.seen)).toFixed(4)}, train acc ${((100 * p.right) / Math.max(1, p.seen)).toFixed(2)}%` +
        `${v ? `, val acc ${(100 * v.accuracy).toFixed(2)}%` : ''}${better ? ' (best)' : ''}, ${sec.toFixed(1)} s (${Math.round(p.seen / sec)} img/s)`,
    );
    const early = a.patience > 0 && state.sinceBest >= a.patience;
    Object.assign(state, { epoch: state.epoch + 1, stepInEpoch: 0, partial: { lossSum: 0, right: 0, seen: 0 } });
    if (better) await saveCheckpoint(trainer, bestDir, pre);
    await saveCheckpoint(trainer, lastDir, pre, state);
    if (early) {
      console.log(`stopping early: no better ${val ? 'validation accuracy' : 'loss'} for ${a.patience} epochs`);
      break;
    }
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(
    `wrote ${bestDir} (epoch ${state.bestEpoch}${val ? `, val acc ${(100 * (state.best ?? 0)).toFixed(2)}%` : ''}) and ${lastDir} in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s; ${state.skipped} bad images skipped; peak RSS ${rss.toFixed(0)} MB; ` +
      `image cache ${(cache.usedBytes / 2 ** 20).toFixed(0)} MB`,
  );
  return 0;
}
