/**
 * The digits the guide trains on in the page (its step 14): the first 2,000 training digits and the
 * first 500 held-out digits of the fixed MNIST split (src/cli/mnist.ts), as one grey PNG of
 * 28×28 tiles (row-major, 50 tiles a row) and a JSON list of labels. Small enough to fetch on
 * demand; the whole 10,000 would be 7.8 MB.
 */
import { encode } from 'fast-png';
import { loadMnist, MNIST_SIZE } from './mnist.js';

export const GUIDE_TRAIN = 2000;
export const GUIDE_TEST = 500;
const COLS = 50;

/** `digits.png` and `labels.json` for the guide; throws the mnist package's missing-package error. */
export function guideTrainingFiles(): Record<string, Uint8Array | string> {
  const { train, test } = loadMnist();
  const n = GUIDE_TRAIN + GUIDE_TEST,
    rows = Math.ceil(n / COLS),
    S = MNIST_SIZE;
  const img = new Uint8Array(COLS * S * rows * S);
  const labels: number[] = [];
  for (let k = 0; k < n; k++) {
    const [set, i] = k < GUIDE_TRAIN ? [train, k] : [test, k - GUIDE_TRAIN];
    labels.push(set.labels[i]);
    const x0 = (k % COLS) * S,
      y0 = Math.floor(k / COLS) * S;
    for (let y = 0; y < S; y++)
      img.set(set.images.subarray(i * S * S + y * S, i * S * S + (y + 1) * S), (y0 + y) * COLS * S + x0);
  }
  return {
    'digits.png': encode({ width: COLS * S, height: rows * S, data: img, channels: 1, depth: 8 }),
    'labels.json': JSON.stringify({ train: GUIDE_TRAIN, test: GUIDE_TEST, columns: COLS, size: S, labels }),
  };
}
