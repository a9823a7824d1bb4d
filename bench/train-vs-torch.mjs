// One training epoch of the default MNIST ViT (28 px, patch 7, hidden 64, 4 layers, 4 heads,
// MLP 128; 8,000 images, batch 32, AdamW) in vit-wasm and in PyTorch eager, side by side.
// PyTorch is Debian's python3-torch at /usr/bin/python3 when present.
// Usage: node bench/train-vs-torch.mjs [--threads 2] [--batch 32]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadMnist, normalizeDigits } from '../dist/mnist.js';
import { createTrainer } from '../dist/train.js';
import { MNIST_DIMS } from '../dist/train-cli.js';

const { values } = parseArgs({
  options: { threads: { type: 'string', default: '2' }, batch: { type: 'string', default: '32' } },
});
const B = Number(values.batch),
  threads = Number(values.threads);
const { train } = loadMnist();
const trainer = await createTrainer(MNIST_DIMS, { maxBatch: B, lr: 3e-3, threads });
const x = new Float32Array(B * 784),
  steps = Math.floor(train.count / B);
const batch = (s) => Array.from({ length: B }, (_, i) => (s * B + i) % train.count);
for (let s = 0; s < 3; s++)
  await trainer.step(
    normalizeDigits(train, batch(s), x),
    batch(s).map((k) => train.labels[k]),
  ); // warm-up
const t0 = performance.now();
for (let s = 0; s < steps; s++) {
  const idx = batch(s);
  await trainer.step(
    normalizeDigits(train, idx, x),
    idx.map((k) => train.labels[k]),
  );
}
const ours = (performance.now() - t0) / 1000;
console.log(
  `vit-wasm: ${ours.toFixed(2)} s per epoch (${Math.round((steps * B) / ours)} img/s), ${trainer.threads} thread(s)`,
);
await trainer.dispose();
let torch;
try {
  torch = JSON.parse(
    execFileSync(
      '/usr/bin/python3',
      [
        new URL('./train_torch.py', import.meta.url).pathname,
        '--threads',
        String(threads),
        '--batch',
        String(B),
        '--images',
        String(steps * B),
      ],
      { encoding: 'utf8' },
    )
      .trim()
      .split('\n')
      .pop(),
  );
} catch (e) {
  console.log(
    `PyTorch: not measured (${e.code === 'ENOENT' ? 'no /usr/bin/python3' : 'python3-torch missing? apt-get install -y python3-torch'})`,
  );
  process.exit(0);
}
console.log(
  `PyTorch ${torch.torch} eager: ${torch.seconds.toFixed(2)} s per epoch (${Math.round(torch.images / torch.seconds)} img/s), ${torch.threads} thread(s)`,
);
console.log(`vit-wasm is ${(torch.seconds / ours).toFixed(1)}x faster per epoch`);
