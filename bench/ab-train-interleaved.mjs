// Training step time of several trees (each ROOT a built checkout: its dist/) in one process, one
// step of each in turn: a preset's shape with 10 classes, random images, batch B.
//   node --experimental-wasm-relaxed-simd bench/ab-train-interleaved.mjs THREADS STEPS B PRESET ROOT...
const [t, steps, B, preset, ...roots] = process.argv.slice(2);
const rs = [];
for (const root of roots) {
  const { createTrainer } = await import(`${root}/dist/train.js`);
  const { PRESETS } = await import(`${root}/dist/presets.js`);
  const dims = { ...PRESETS[preset], numLabels: 10 };
  const tr = await createTrainer(dims, { maxBatch: +B, lr: 1e-4, threads: +t });
  rs.push({ root, tr, ts: [] });
}
const x = new Float32Array(+B * 3 * 224 * 224).map((_, i) => Math.sin(i * 0.01));
const y = Array.from({ length: +B }, (_, i) => i % 10);
for (const r of rs) for (let i = 0; i < 2; i++) await r.tr.step(x, y);
for (let s = 0; s < +steps; s++)
  for (const r of rs) {
    const t0 = performance.now();
    await r.tr.step(x, y);
    r.ts.push(performance.now() - t0);
  }
for (const r of rs) {
  const s = r.ts.sort((a, b) => a - b);
  console.log(
    r.root,
    preset,
    'B',
    B,
    'threads',
    t,
    'min',
    s[0].toFixed(0),
    'median',
    s[s.length >> 1].toFixed(0),
    'ms/step',
  );
  await r.tr.dispose();
}
