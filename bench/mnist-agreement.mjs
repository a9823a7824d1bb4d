// A trained model's view of int8: the bundled MNIST ViT (assets/mnist-vit) on its held-out digits,
// f32 against the int8 forward (loadModel's weights: 'int8') quantized at load and from its
// `vit-wasm quantize` int8 file. Prints accuracy, top-1 agreement with f32, and the relative logit
// error (max |Δlogit| / max |logit| per image: median, 99th percentile, max). The random presets'
// near-tied logits are the worst case for this (README, int8 arithmetic); this is the trained case.
//   node bench/mnist-agreement.mjs [--threads T]       (after npm run build)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { loadMnist, MNIST_SIZE, normalizeDigits } from '../dist/mnist.js';

const { values } = parseArgs({ options: { threads: { type: 'string', default: '2' } } });
const ROOT = new URL('..', import.meta.url).pathname,
  MODEL = path.join(ROOT, 'assets/mnist-vit'),
  threads = Number(values.threads);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-mnist-int8-'));
try {
  execFileSync(process.execPath, [path.join(ROOT, 'bin/vit-wasm.js'), 'quantize', '--model', MODEL, '--out', tmp]);
  const { test } = loadMnist();
  const idx = Array.from({ length: test.count }, (_, i) => i);
  const logitsOf = async (dir, weights) => {
    const m = await loadModel(dir, { threads, weights });
    const p = m.preprocessing;
    const x = normalizeDigits(test, idx, new Float32Array(test.count * MNIST_SIZE ** 2), p.imageMean[0], p.imageStd[0]);
    const y = await m.forward(x, test.count);
    await m.dispose();
    return y;
  };
  const argmax = (y, i) => {
    let b = 0;
    for (let j = 1; j < 10; j++) if (y[i * 10 + j] > y[i * 10 + b]) b = j;
    return b;
  };
  const ref = await logitsOf(MODEL, 'f32');
  const right = (y) => idx.filter((i) => argmax(y, i) === test.labels[i]).length;
  console.log(`${test.count} held-out digits, ${threads} threads`);
  console.log(`f32: accuracy ${((100 * right(ref)) / test.count).toFixed(2)}%`);
  for (const [name, dir] of [
    ["weights: 'int8' from the f32 file", MODEL],
    ["weights: 'int8' from the int8 file", tmp],
  ]) {
    const y = await logitsOf(dir, 'int8');
    const errs = idx
      .map((i) => {
        let d = 0,
          s = 0;
        for (let j = 0; j < 10; j++) {
          d = Math.max(d, Math.abs(y[i * 10 + j] - ref[i * 10 + j]));
          s = Math.max(s, Math.abs(ref[i * 10 + j]));
        }
        return d / s;
      })
      .sort((a, b) => a - b);
    const agree = idx.filter((i) => argmax(y, i) === argmax(ref, i)).length;
    const q = (f) => errs[Math.min(errs.length - 1, Math.floor(f * errs.length))].toExponential(1);
    console.log(
      `${name}: accuracy ${((100 * right(y)) / test.count).toFixed(2)}%, top-1 agreement with f32 ` +
        `${((100 * agree) / test.count).toFixed(2)}% (${test.count - agree} differ), logit error median ${q(0.5)}, ` +
        `99th percentile ${q(0.99)}, max ${errs[errs.length - 1].toExponential(1)}`,
    );
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
