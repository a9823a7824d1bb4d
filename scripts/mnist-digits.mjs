// Writes assets/digits/: twelve held-out MNIST digits (never trained on) as PNG files named with
// their true label, for `npm start` / `vit-wasm demo`. Run after `npm run build`.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { encode } from 'fast-png';
import { loadMnist } from '../dist/mnist.js';

const { test } = loadMnist();
const out = new URL('../assets/digits/', import.meta.url);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
// one of each digit, then two more: the first held-out images of each class
const picks = [];
for (let d = 0; d < 10; d++) picks.push(test.labels.indexOf(d));
for (let i = 0; picks.length < 12; i++) if (!picks.includes(i)) picks.push(i);
picks.forEach((k, n) => {
  const png = encode({ width: 28, height: 28, data: test.images.slice(k * 784, (k + 1) * 784), channels: 1, depth: 8 });
  writeFileSync(new URL(`digit-${String(n).padStart(2, '0')}-label-${test.labels[k]}.png`, out), png);
});
console.log(`wrote ${picks.length} digits to ${out.pathname}`);
