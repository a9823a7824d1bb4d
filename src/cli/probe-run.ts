/**
 * `vit-wasm train --data D --from MODEL --freeze all`: a linear probe, the fast path of a frozen
 * backbone, for every family vit-wasm loads. Each image's features are computed once with the
 * model's own preprocessing (src/model/probe.ts), then a new classifier trains on them for every
 * epoch (src/train/head.ts); OUT/best and OUT/last are the checkpoint in its family's
 * classification form.
 */
import path from 'node:path';
import cliProgress from 'cli-progress';
import { openProbe, type ProbeTarget } from '../model/probe.js';
import { writeLocalFiles } from '../platform/platform.js';
import { HeadTrainer } from '../train/head.js';
import { ImageCache, type ImageSet } from './dataset.js';
import type { DataArgs } from './train-args.js';
import { loadBatch } from './train-data.js';

/** The most bytes of features a probe keeps (every image's, in one Float32Array). */
const MAX_FEATURE_BYTES = 2 ** 31;

/** Every image of `set` through the frozen model: features (n, F) and labels; unreadable images skipped with --skip-bad. */
async function embedSet(t: ProbeTarget, set: ImageSet, cache: ImageCache, a: DataArgs, what: string) {
  const m = t.model,
    pre = m.preprocessing,
    C = m.config.numChannels as 1 | 3,
    per = m.inputSize,
    F = t.features,
    n = set.samples.length,
    B = a.batch;
  if (n * F * 4 > MAX_FEATURE_BYTES)
    throw new Error(
      `vit-wasm: the features of ${n} images (${F} floats each) take ${((n * F * 4) / 2 ** 30).toFixed(1)} GiB, over the probe's 2 GiB: probe fewer images, or fine-tune (--freeze N) to stream them`,
    );
  const x = new Float32Array(n * F),
    y: number[] = [],
    pixels = new Float32Array(B * per),
    bar = new cliProgress.SingleBar(
      { format: `${what} |{bar}| {value}/{total} images | {speed} img/s | ETA {eta_formatted}`, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
  let skipped = 0;
  const t0 = performance.now();
  bar.start(n, 0, { speed: '-' });
  for (let s = 0; s < n; s += B) {
    const idx = Array.from({ length: Math.min(B, n - s) }, (_, i) => s + i);
    const { labels, bad } = loadBatch(set, idx, cache, pre, C, 'none', () => Math.random, pixels, a.skipBad);
    skipped += bad.length;
    for (const b of bad) console.error(`skipped ${b}`);
    if (labels.length) {
      const f = await m.embed(
        labels.map((_, b) => pixels.subarray(b * per, (b + 1) * per)),
        { pooling: 'head' },
      );
      x.set(f, y.length * F);
      y.push(...labels);
    }
    bar.update(s + idx.length, { speed: Math.round((s + idx.length) / ((performance.now() - t0) / 1000)) });
  }
  bar.stop();
  return { x: x.subarray(0, y.length * F), y: Int32Array.from(y), skipped, seconds: (performance.now() - t0) / 1000 };
}

/** The probe: embed, then train the head epoch by epoch; OUT/best and OUT/last. Returns the exit code. */
export async function probeDataCommand(a: DataArgs, train: ImageSet, val: ImageSet | null): Promise<number> {
  const from = a.from as string,
    t0 = performance.now();
  const target = await openProbe(from, train.classes, { threads: a.threads });
  const cache = new ImageCache(a.cacheMb * 2 ** 20);
  try {
    const m = target.model;
    console.log(
      `linear probe of ${from} (${m.family}, ${m.config.numLayers} layers, hidden ${m.config.hiddenSize}, ` +
        `${m.config.imageSize.join('×')} px) on ${m.runtime.threads} thread(s): the features of ${train.samples.length} images in ` +
        `${train.classes.length} classes${val ? ` and ${val.samples.length} for validation` : ''} computed once (${target.features} floats each, ` +
        `the model's own preprocessing, no augmentation), then ${a.epochs} epochs of a new classifier, batch ${a.batch * a.accumulate}, AdamW lr ${a.lr}, seed ${a.seed}`,
    );
    const tr = await embedSet(target, train, cache, a, 'features');
    const va = val ? await embedSet(target, val, cache, a, 'validation features') : null;
    if (!tr.y.length) throw new Error('vit-wasm: no training image could be read');
    console.log(
      `features of ${tr.y.length + (va?.y.length ?? 0)} images in ${(tr.seconds + (va?.seconds ?? 0)).toFixed(1)} s`,
    );
    return await trainHead(target, tr, va, a, tr.skipped + (va?.skipped ?? 0), t0);
  } finally {
    await target.model.dispose();
  }
}

/** Epochs of the head on cached features; writes OUT/best and OUT/last. */
async function trainHead(
  target: ProbeTarget,
  tr: { x: Float32Array; y: Int32Array },
  va: { x: Float32Array; y: Int32Array } | null,
  a: DataArgs,
  skipped: number,
  t0: number,
): Promise<number> {
  const B = a.batch * a.accumulate,
    total = a.epochs * Math.ceil(tr.y.length / B),
    L = target.model.config.numLabels;
  const head = new HeadTrainer(target.features, L, {
    lr: a.lr,
    weightDecay: a.weightDecay,
    warmupSteps: Math.round(total * a.warmup),
    totalSteps: total,
    clipNorm: a.clip,
    labelSmoothing: a.labelSmoothing,
    seed: a.seed,
  });
  const save = (dir: string) => {
    const { W, b } = head.weights();
    return writeLocalFiles(dir, target.files(W, b));
  };
  let stop = false;
  const onInt = () => {
    if (stop) process.exit(130);
    stop = true;
    console.error('\nCtrl-C: saving after this epoch (again to quit at once)');
  };
  process.on('SIGINT', onInt);
  let best = -Infinity,
    bestEpoch = 0,
    since = 0;
  try {
    for (let e = 1; e <= a.epochs && !stop; e++) {
      const t = performance.now(),
        r = head.epoch(tr.x, tr.y, e, B);
      let right = 0;
      if (va) head.predict(va.x, va.y.length).forEach((p, i) => (right += +(p === va.y[i])));
      const acc = va ? right / Math.max(1, va.y.length) : null,
        score = acc ?? -r.loss,
        better = score > best;
      if (better) [best, bestEpoch, since] = [score, e, 0];
      else since++;
      console.log(
        `epoch ${e}/${a.epochs}: loss ${r.loss.toFixed(4)}, train acc ${(100 * r.accuracy).toFixed(2)}%` +
          `${acc === null ? '' : `, val acc ${(100 * acc).toFixed(2)}%`}${better ? ' (best)' : ''}, ${((performance.now() - t) / 1000).toFixed(2)} s`,
      );
      if (better) await save(path.join(a.out, 'best'));
      if (a.patience > 0 && since >= a.patience) {
        console.log(`stopping early: no better ${va ? 'validation accuracy' : 'loss'} for ${a.patience} epochs`);
        break;
      }
    }
  } finally {
    process.off('SIGINT', onInt);
  }
  await save(path.join(a.out, 'last'));
  const rss = process.resourceUsage().maxRSS / 1024;
  console.log(
    `wrote ${path.join(a.out, 'best')} (epoch ${bestEpoch}${va ? `, val acc ${(100 * best).toFixed(2)}%` : ''}) and ${path.join(a.out, 'last')} in ` +
      `${((performance.now() - t0) / 1000).toFixed(1)} s; ${skipped} bad images skipped; peak RSS ${rss.toFixed(0)} MB`,
  );
  return stop ? 130 : 0;
}
