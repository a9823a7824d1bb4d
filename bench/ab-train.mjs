// Training step time of one tree (its dist/): the MNIST ViT, batch 32 (needs the mnist package). For A/B runs.
// Usage: node bench/ab-train.mjs ROOT THREADS STEPS
const [root, threadsArg, stepsArg] = process.argv.slice(2);
const { createTrainer } = await import(`${root}/dist/train.js`);
const { loadMnist, normalizeDigits } = await import(`${root}/dist/mnist.js`);
const { MNIST_DIMS } = await import(`${root}/dist/train-cli.js`);
const B = 32,
  threads = Number(threadsArg),
  steps = Number(stepsArg);
const { train } = loadMnist();
const trainer = await createTrainer(MNIST_DIMS, { maxBatch: B, lr: 3e-3, threads });
const x = new Float32Array(B * 784);
const batch = (s) => Array.from({ length: B }, (_, i) => (s * B + i) % train.count);
for (let s = 0; s < 5; s++)
  await trainer.step(
    normalizeDigits(train, batch(s), x),
    batch(s).map((k) => train.labels[k]),
  );
const t0 = performance.now();
for (let s = 0; s < steps; s++) {
  const idx = batch(s);
  await trainer.step(
    normalizeDigits(train, idx, x),
    idx.map((k) => train.labels[k]),
  );
}
const ms = (performance.now() - t0) / steps;
console.log(`${root} threads ${threads}: ${ms.toFixed(2)} ms/step`);
await trainer.dispose();
