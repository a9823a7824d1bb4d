// Resident memory of a loaded model at several thread counts, each in a fresh process: the weights
// live once in the shared wasm memory, so each extra worker should cost only its own JS heap.
// Usage: node bench/memory.mjs [--preset deit-small] [--threads 1,2,4]
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    preset: { type: 'string', default: 'deit-small' },
    threads: { type: 'string', default: '1,2,4' },
    child: { type: 'string' },
  },
});
if (values.child) {
  const { loadModel } = await import('../dist/index.js');
  const { PRESETS, randomModelFiles } = await import('../dist/presets.js');
  let files = randomModelFiles(PRESETS[values.preset], 1);
  const m = await loadModel(files, { threads: Number(values.child), simd: 'simd' });
  files = null;
  const input = new Float32Array(3 * 224 * 224).fill(0.1);
  for (let i = 0; i < 3; i++) await m.forward(input, 1);
  globalThis.gc?.();
  await new Promise((r) => setTimeout(r, 200));
  console.log(JSON.stringify({ rss: process.memoryUsage().rss }));
  await m.dispose();
} else {
  const rows = values.threads.split(',').map((t) => {
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', new URL(import.meta.url).pathname, '--preset', values.preset, '--child', t],
      { encoding: 'utf8' },
    );
    return { threads: Number(t), rss: JSON.parse(out.trim().split('\n').pop()).rss / 2 ** 20 };
  });
  console.log(`${values.preset}: resident memory after load + 3 forwards (batch 1), fresh process each`);
  console.log('threads   RSS MB   vs 1 thread   per extra worker');
  for (const r of rows) {
    const d = r.rss - rows[0].rss,
      extra = r.threads - rows[0].threads;
    console.log(
      `${String(r.threads).padStart(7)}  ${r.rss.toFixed(1).padStart(7)}   ${(d >= 0 ? '+' : '') + d.toFixed(1).padStart(6)}       ${extra ? `${(d / extra).toFixed(1)} MB` : '-'}`,
    );
  }
}
