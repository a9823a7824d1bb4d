// Forward latency of one tree (its dist/): a preset (default deit-tiny), batch 1. For A/B runs of two trees side by side,
// or of two activations in one tree (HIDDEN_ACT: config.json's hidden_act, default the preset's gelu).
// Usage: node bench/ab-forward.mjs ROOT THREADS simd|relaxed RUNS [f32|int8] [PRESET] [HIDDEN_ACT]
const [root, t, simd, runs, weights = 'f32', preset = 'deit-tiny', act] = process.argv.slice(2);
const { loadModel } = await import(`${root}/dist/index.js`);
const { PRESETS, randomModelFiles } = await import(`${root}/dist/presets.js`);
const files = randomModelFiles(PRESETS[preset], 0);
if (act) files['config.json'] = JSON.stringify({ ...JSON.parse(files['config.json']), hidden_act: act });
const m = await loadModel(files, { threads: Number(t), simd, weights });
const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));
for (let i = 0; i < 3; i++) await m.forward(x, 1);
const ts = [];
for (let i = 0; i < Number(runs); i++) {
  const t0 = performance.now();
  await m.forward(x, 1);
  ts.push(performance.now() - t0);
}
ts.sort((a, b) => a - b);
console.log(
  `${root} ${t} ${simd} ${weights} ${preset}${act ? ` ${act}` : ''} min ${ts[0].toFixed(1)} median ${ts[ts.length >> 1].toFixed(1)}`,
);
await m.dispose();
