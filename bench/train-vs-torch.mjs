// Training steps in vit-wasm and in PyTorch eager, side by side on one machine: one epoch of the
// default MNIST ViT (28 px, patch 7, hidden 64, 4 layers, 4 heads, MLP 128; 8,000 images, batch 32,
// AdamW), or (--shape deit-tiny) --steps steps of a 224-px deit-tiny-shaped model with a 10-class
// head, as a fine-tune step. PyTorch is Debian's python3-torch at /usr/bin/python3 when present.
// Usage: node bench/train-vs-torch.mjs [--threads 2] [--batch 32] [--shape mnist|deit-tiny] [--steps 3]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { loadMnist, normalizeDigits } from '../dist/mnist.js';
import { PRESETS } from '../dist/presets.js';
import { createTrainer } from '../dist/train.js';
import { MNIST_DIMS } from '../dist/train-cli.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    batch: { type: 'string', default: '32' },
    shape: { type: 'string', default: 'mnist' },
    steps: { type: 'string', default: '3' },
  },
});
const B = Number(values.batch),
  threads = Number(values.threads),
  deit = values.shape === 'deit-tiny';
if (!deit && values.shape !== 'mnist') throw new Error(`--shape must be mnist or deit-tiny, got ${values.shape}`);
const dims = deit ? { ...PRESETS['deit-tiny'], numLabels: 10 } : MNIST_DIMS;
const per = dims.numChannels * dims.imageSize[0] * dims.imageSize[1];
const trainer = await createTrainer(dims, { maxBatch: B, lr: 3e-3, threads });
const x = new Float32Array(B * per);
let steps, next;
if (deit) {
  // random inputs (the arithmetic does not depend on them), fixed labels
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 12.9898) * 0.9;
  steps = Number(values.steps);
  next = () => [x, Array.from({ length: B }, (_, i) => i % 10)];
} else {
  const { train } = loadMnist();
  steps = Math.floor(train.count / B);
  let s = 0;
  next = () => {
    const idx = Array.from({ length: B }, (_, i) => (s * B + i) % train.count);
    s++;
    return [normalizeDigits(train, idx, x), idx.map((k) => train.labels[k])];
  };
}
for (let s = 0; s < (deit ? 1 : 3); s++) await trainer.step(...next()); // warm-up
const t0 = performance.now();
for (let s = 0; s < steps; s++) await trainer.step(...next());
const ours = (performance.now() - t0) / 1000;
const what = deit ? `${steps} steps of batch ${B}` : 'per epoch';
console.log(
  `vit-wasm: ${ours.toFixed(2)} s ${what} (${((steps * B) / ours).toFixed(1)} img/s), ${trainer.threads} thread(s)`,
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
        '--shape',
        values.shape,
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
  `PyTorch ${torch.torch} eager: ${torch.seconds.toFixed(2)} s ${what} (${(torch.images / torch.seconds).toFixed(1)} img/s), ${torch.threads} thread(s)`,
);
console.log(`PyTorch's time / vit-wasm's: ${(torch.seconds / ours).toFixed(2)}`);
