// A/B of forwards from several trees (each ROOT a built checkout: its dist/) in one process, one
// forward of each in turn, so the VM's drift hits every tree alike. B=8 for batch 8.
//   node bench/ab-interleaved.mjs THREADS simd|relaxed RUNS PRESET ROOT...
// (relaxed needs node --experimental-wasm-relaxed-simd on Node 20)
const [t, simd, runs, preset, ...roots] = process.argv.slice(2);
const ms = [];
for (const root of roots) {
  const { loadModel } = await import(`${root}/dist/index.js`);
  const { PRESETS, randomModelFiles } = await import(`${root}/dist/presets.js`);
  ms.push({ root, m: await loadModel(randomModelFiles(PRESETS[preset], 0), { threads: +t, simd }), ts: [] });
}
const B = +(process.env.B ?? 1);
const x = new Float32Array(B * 3 * 224 * 224).map((_, i) => Math.sin(i));
for (const o of ms) for (let i = 0; i < 3; i++) await o.m.forward(x, B);
for (let r = 0; r < +runs; r++)
  for (const o of ms) {
    const t0 = performance.now();
    await o.m.forward(x, B);
    o.ts.push(performance.now() - t0);
  }
for (const o of ms) {
  const s = o.ts.sort((a, b) => a - b);
  console.log(`${o.root} ${t} ${simd} ${preset} min ${s[0].toFixed(1)} median ${s[s.length >> 1].toFixed(1)}`);
  await o.m.dispose();
}
