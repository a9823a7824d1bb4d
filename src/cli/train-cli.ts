/**
 * `vit-wasm train --dataset mnist` and `vit-wasm eval --dataset mnist`.
 */
import { parseArgs } from 'node:util';
import type cliProgress from 'cli-progress';
import { loadModel } from '../model/load.js';
import { defaultThreadCount } from '../platform/platform.js';
import { MAX_WORKERS } from '../runtime/pool.js';
import { createTrainer } from '../train/create.js';
import { argmax, type Trainer } from '../train/trainer.js';
import { evalDataCommand } from './eval-data.js';
import { type DigitSet, loadMnist, MNIST_DIMS, MNIST_SIZE, normalizeDigits } from './mnist.js';
import { positiveFlag as num } from './train-args.js';
import { epochBar } from './train-data.js';
import { trainDataCommand } from './train-run.js';

type UsageErrorCtor = new (m: string) => Error;

export { MNIST_DIMS }; // (bench/ reads it from dist/train-cli.js)

const all = (set: DigitSet) => Array.from({ length: set.count }, (_, i) => i);

/** What `vit-wasm train` was asked for. */
interface TrainArgs {
  out: string;
  epochs: number;
  B: number;
  lr: number;
  threads: number;
  shift: number;
  seed: number;
}

function trainArgs(argv: string[], Usage: UsageErrorCtor): TrainArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string' },
      epochs: { type: 'string' },
      batch: { type: 'string' },
      lr: { type: 'string' },
      threads: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      shift: { type: 'string' },
    },
  });
  if (values.dataset !== 'mnist')
    throw new Usage(`train needs --dataset mnist${values.dataset ? `, got '${values.dataset}'` : ''}`);
  if (!values.out) throw new Usage('train needs --out DIR');
  const epochs = num(values.epochs, '--epochs', 34, Usage, true),
    B = num(values.batch, '--batch', 32, Usage, true);
  const lr = num(values.lr, '--lr', 3e-3, Usage);
  // the cores, but no more workers than a pool may have (a 128-core server trains on 64)
  const threads = num(values.threads, '--threads', Math.min(defaultThreadCount(), MAX_WORKERS), Usage, true);
  const shift = values.shift === undefined ? 2 : Number(values.shift);
  if (!Number.isInteger(shift) || shift < 0 || shift > 8)
    throw new Usage(
      `--shift must be an integer 0…8 (pixels of random shift; 0 turns augmentation off), got '${values.shift}'`,
    );
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new Usage(`--seed must be an integer, got '${values.seed}'`);
  return { out: values.out, epochs, B, lr, threads, shift, seed };
}

/** xorshift32 in [0, 1), seeded: the data order and the shifts of a run, the same on every machine. */
function xorshift(seed: number): () => number {
  let s = (seed * 2654435761 + 12345) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** One epoch over `train` in a seeded order, with the progress bar; returns its loss sum and accuracy counts. */
async function trainEpoch(
  trainer: Trainer,
  train: DigitSet,
  a: TrainArgs,
  random: () => number,
  bar: cliProgress.SingleBar,
  epoch: number,
): Promise<{ lossSum: number; right: number; seen: number; steps: number }> {
  const { B } = a,
    steps = Math.floor(train.count / B),
    x = new Float32Array(B * MNIST_SIZE ** 2);
  const order = all(train);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const te = performance.now();
  let lossSum = 0,
    right = 0,
    seen = 0;
  bar.start(steps, 0, { epoch, epochs: a.epochs, loss: '-', acc: '-', speed: '-' });
  for (let st = 0; st < steps; st++) {
    const idx = order.slice(st * B, st * B + B),
      labels = idx.map((k) => train.labels[k]);
    normalizeDigits(train, idx, x, 0.5, 0.5, a.shift, random);
    lossSum += await trainer.step(x, labels);
    const preds = trainer.lastPredictions();
    for (let b = 0; b < B; b++) right += +(preds[b] === labels[b]);
    seen += B;
    bar.update(st + 1, {
      loss: (lossSum / (st + 1)).toFixed(4),
      acc: ((100 * right) / seen).toFixed(1),
      speed: Math.round(seen / ((performance.now() - te) / 1000)),
    });
  }
  bar.stop();
  return { lossSum, right, seen, steps };
}

export async function trainCommand(argv: string[], Usage: UsageErrorCtor): Promise<number> {
  if (argv.some((f) => f === '--data' || f.startsWith('--data='))) return trainDataCommand(argv, Usage);
  const a = trainArgs(argv, Usage),
    { epochs, B, lr, seed } = a;
  const { train, test } = loadMnist();
  const stepsPerEpoch = Math.floor(train.count / B),
    total = stepsPerEpoch * epochs;
  const trainer = await createTrainer(MNIST_DIMS, {
    maxBatch: B,
    lr,
    seed,
    warmupSteps: Math.round(total * 0.05),
    totalSteps: total,
    weightDecay: 0.05,
    threads: a.threads,
  });
  const random = xorshift(seed);
  const testX = normalizeDigits(test, all(test), new Float32Array(test.count * MNIST_SIZE ** 2));
  console.log(
    `training a ${MNIST_DIMS.numLayers}-layer ViT on ${trainer.threads} thread(s) (hidden ${MNIST_DIMS.hiddenSize}, ${MNIST_DIMS.numHeads} heads, MLP ${MNIST_DIMS.intermediateSize}, patch ${MNIST_DIMS.patchSize}) ` +
      `, ${train.count} MNIST digits, ${test.count} held out; ${epochs} epochs of ${stepsPerEpoch} steps, batch ${B}, AdamW lr ${lr}, ` +
      `shifts ±${a.shift} px, seed ${seed}`,
  );
  const bar = epochBar();
  const t0 = performance.now();
  for (let e = 1; e <= epochs; e++) {
    const te = performance.now();
    const { lossSum, right, seen } = await trainEpoch(trainer, train, a, random, bar, e);
    const sec = (performance.now() - te) / 1000,
      ev = await trainer.evaluate(testX, test.labels);
    console.log(
      `epoch ${e}/${epochs}: loss ${(lossSum / stepsPerEpoch).toFixed(4)}, train acc ${((100 * right) / seen).toFixed(2)}%, ` +
        `held-out acc ${(100 * ev.accuracy).toFixed(2)}%, ${sec.toFixed(1)} s (${Math.round(seen / sec)} img/s)`,
    );
  }
  await trainer.save(a.out, { image_mean: [0.5], image_std: [0.5] });
  const final = await trainer.evaluate(testX, test.labels);
  await trainer.dispose();
  console.log(
    `wrote ${a.out} after ${((performance.now() - t0) / 1000).toFixed(1)} s on ${trainer.threads} thread(s); held-out accuracy ${(100 * final.accuracy).toFixed(2)}%`,
  );
  return 0;
}

export async function evalCommand(argv: string[], Usage: UsageErrorCtor): Promise<number> {
  if (argv.some((f) => f === '--data' || f.startsWith('--data='))) return evalDataCommand(argv, Usage);
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      dataset: { type: 'string' },
      threads: { type: 'string' },
      weights: { type: 'string' },
    },
  });
  const weights = values.weights ?? 'f32';
  if (weights !== 'f32' && weights !== 'int8') throw new Usage(`--weights must be f32 or int8, got '${weights}'`);
  if (values.dataset !== 'mnist')
    throw new Usage(`eval needs --dataset mnist${values.dataset ? `, got '${values.dataset}'` : ''}`);
  if (!values.model) throw new Usage('eval needs --model DIR');
  const { test } = loadMnist();
  const model = await loadModel(values.model, {
    weights,
    ...(values.threads ? { threads: num(values.threads, '--threads', 1, Usage, true) } : {}),
  });
  try {
    const c = model.config,
      p = model.preprocessing;
    if (c.numChannels !== 1 || c.imageSize[0] !== MNIST_SIZE || c.imageSize[1] !== MNIST_SIZE || c.numLabels !== 10) {
      throw new Error(`vit-wasm: ${values.model} is not a 28×28, 1-channel, 10-class model`);
    }
    const x = normalizeDigits(
      test,
      all(test),
      new Float32Array(test.count * MNIST_SIZE ** 2),
      p.imageMean[0],
      p.imageStd[0],
    );
    const logits = await model.forward(x, test.count);
    const confusion = Array.from({ length: 10 }, () => new Array<number>(10).fill(0));
    let right = 0;
    for (let i = 0; i < test.count; i++) {
      const row = logits.subarray(i * 10, i * 10 + 10);
      const pred = argmax(row);
      confusion[test.labels[i]][pred]++;
      right += +(pred === test.labels[i]);
    }
    console.log(
      `${values.model}: held-out accuracy ${((100 * right) / test.count).toFixed(2)}% (${right} of ${test.count})\n`,
    );
    console.log('confusion matrix (rows: true digit, columns: predicted)');
    console.log(`      ${Array.from({ length: 10 }, (_, j) => String(j).padStart(5)).join('')}`);
    confusion.forEach((r, i) =>
      console.log(`${String(i).padStart(5)} ${r.map((v) => String(v).padStart(5)).join('')}`),
    );
  } finally {
    await model.dispose();
  }
  return 0;
}
