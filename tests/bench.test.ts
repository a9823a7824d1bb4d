// `vit-wasm bench` end to end on a tiny fixture: the table, the JSON and the chart are produced and
// consistent (no timing is asserted: speed is measured by running the command, see bench/NOTES.md).
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { forwardFlops } from '../src/cli/bench.js';
import { loadModel } from '../src/index.js';
import { FIXTURES, MODELS } from './helpers.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);

/** `vit-wasm bench --model MODELS/h40-hf ARGS…` in a child process with environment `env`. */
const benchWith = (env: NodeJS.ProcessEnv, ...args: string[]) =>
  run(
    process.execPath,
    [path.join(FIXTURES, '../../bin/vit-wasm.js'), 'bench', '--model', path.join(MODELS, 'h40-hf'), ...args],
    { timeout: 120_000, env },
  );
const bench = (...args: string[]) => benchWith(process.env, ...args);

test('FLOP count of ViT-B/16 matches the published 17.6 G multiply-adds', async () => {
  const { PRESETS, randomModelFiles } = await import('../src/io/presets.js');
  const model = await loadModel(randomModelFiles({ ...PRESETS['vit-b16'], numLayers: 1 }), { threads: 1 });
  const perLayer = forwardFlops(model.config);
  await model.dispose();
  // 12 layers; the one-layer model's patch embedding and head are counted once
  const base = 2 * (196 * 768 * 768 + 768 * 1000),
    layer = perLayer - base;
  expect((base + 12 * layer) / 2 / 1e9).toBeCloseTo(17.56, 1);
});

test('bench --peers prints one row per runtime × threads × batch, with JSON and SVG', async () => {
  const dir = tempDir('vit-wasm-bench-');
  const json = path.join(dir, 'b.json'),
    svg = path.join(dir, 'b.svg');
  const { stdout } = await bench(
    '--threads',
    '1,2',
    '--batch',
    '1,3',
    '--runs',
    '2',
    '--peers',
    '--relaxed',
    '--json',
    json,
    '--chart',
    svg,
  );
  expect(stdout).toMatch(
    /wasm SIMD ceiling, one core \(bench\/ceiling\.ts\): [\d.]+ GFLOP\/s mul\+add, [\d.]+ GFLOP\/s relaxed FMA, [\d.]+ GOP\/s relaxed int8 dot product$/m,
  );
  const out = JSON.parse(readFileSync(json, 'utf8'));
  expect(out.rows).toHaveLength(5 * 2 * 2);
  for (const r of out.rows) {
    expect(r.medianMs).toBeGreaterThan(0);
    expect(r.minMs).toBeLessThanOrEqual(r.medianMs);
    expect(r.imagesPerSec).toBeCloseTo((r.batch * 1000) / r.medianMs, 6);
    expect(r.rssPeakMb).toBeGreaterThan(10);
    // % of the ceiling of the row's build and arithmetic (int8 rows: the int8 dot product's)
    // (no int8 ceiling for the plain build, so no % for its int8 rows nor ort-web's int8 graph)
    const c = out.ceilings[r.runtime.startsWith('vit-wasm-relaxed') ? 'relaxed' : 'simd'];
    const peak = r.runtime === 'ort-node' ? null : r.runtime.endsWith('-int8') ? c.int8 : c.f32;
    if (peak === null) expect(r.pctCeiling).toBeNull();
    else expect(r.pctCeiling).toBeCloseTo((100 * r.gflops) / (peak * r.threads), 6);
    const line = stdout
      .split('\n')
      .find(
        (l) =>
          l.startsWith(`${r.runtime} `) &&
          l.split(/\s+/)[1] === String(r.threads) &&
          l.split(/\s+/)[2] === String(r.batch),
      );
    expect(line, `${r.runtime} ${r.threads} ${r.batch}`).toBeDefined();
    if (r.runtime.startsWith('vit-wasm')) {
      expect(r.vsOrtWeb).toBeCloseTo(
        r.medianMs /
          out.rows.find((x: typeof r) => x.runtime === 'ort-web' && x.threads === r.threads && x.batch === r.batch)
            .medianMs,
        6,
      );
      expect(r.gflops).toBeCloseTo((out.flopsPerImage * r.batch) / (r.medianMs / 1000) / 1e9, 6);
    }
  }
  const chart = readFileSync(svg, 'utf8');
  expect(chart).toMatch(/^<svg/);
  for (const rt of ['vit-wasm', 'vit-wasm-relaxed', 'ort-web', 'ort-web-int8', 'ort-node'])
    expect(chart).toContain(`>${rt}</text>`);
}, 180_000);

test.each(['h40-clip-text', 'h40-siglip-text'])(
  'bench --peers on a model with a text tower (%s) adds zero-shot rows (1 and 2 threads) beside onnxruntime-web’s, with their ratio',
  async (name) => {
    const json = path.join(tempDir('vit-wasm-bench-'), 'b.json');
    const { stdout } = await run(
      process.execPath,
      [
        path.join(FIXTURES, '../../bin/vit-wasm.js'),
        'bench',
        '--model',
        path.join(FIXTURES, 'zero-shot', name),
        '--threads',
        '1,2',
        '--runs',
        '2',
        '--peers',
        '--json',
        json,
      ],
      { timeout: 120_000 },
    );
    expect(stdout).toMatch(/^zero-shot rows: one image against 10 labels/m);
    const rows = JSON.parse(readFileSync(json, 'utf8')).rows as {
      runtime: string;
      threads: number;
      batch: number;
      medianMs: number;
      vsOrtWeb?: number;
    }[];
    for (const threads of [1, 2]) {
      const ours = rows.find((r) => r.runtime === 'vit-wasm-zero-shot' && r.threads === threads)!,
        peer = rows.find((r) => r.runtime === 'ort-web-zero-shot' && r.threads === threads)!;
      expect(ours.batch).toBe(1);
      expect(ours.vsOrtWeb).toBeCloseTo(ours.medianMs / peer.medianMs, 6);
      expect(ours).not.toHaveProperty('vsOrtNode'); // onnxruntime-node runs no zero-shot call
      expect(stdout).toMatch(new RegExp(`^vit-wasm-zero-shot +${threads} +1 +[\\d.]+`, 'm'));
    }
  },
  180_000,
);

test('bench --weights f16,int8 adds rows on quantized copies, with their sizes and latency ratios; leaves no temp folder', async () => {
  // the ONNX graph and the quantized copies go to folders of the bench's own, removed at the end
  const tmp = tempDir('vit-wasm-bench-tmp-');
  const { stdout } = await benchWith(
    { ...process.env, TMPDIR: tmp },
    '--threads',
    '1',
    '--runs',
    '1',
    '--relaxed',
    '--weights',
    'f16,int8',
  );
  expect(readdirSync(tmp)).toEqual([]);
  for (const rt of [
    'vit-wasm',
    'vit-wasm-relaxed',
    'vit-wasm-f16',
    'vit-wasm-relaxed-f16',
    'vit-wasm-int8',
    'vit-wasm-relaxed-int8',
  ])
    expect(stdout).toMatch(new RegExp(`^${rt} +1 +1 +[\\d.]+`, 'm'));
  // the copies' sizes against the source
  const sizes =
    /weights \(vit-wasm quantize\): f32 ([\d.]+) MiB, f16 ([\d.]+) MiB \(([\d.]+)x\), int8 ([\d.]+) MiB \(([\d.]+)x\)/.exec(
      stdout,
    );
  expect(sizes, stdout).not.toBeNull();
  // (this fixture's weights are f64, so f16 is a quarter of them)
  expect(Number(sizes![3])).toBeCloseTo(Number(sizes![2]) / Number(sizes![1]), 1);
  expect(Number(sizes![3])).toBeLessThan(1);
  expect(Number(sizes![5])).toBeLessThan(Number(sizes![3]));
  for (const rt of ['vit-wasm-f16', 'vit-wasm-int8', 'vit-wasm-relaxed-f16', 'vit-wasm-relaxed-int8'])
    expect(stdout).toMatch(new RegExp(`^${rt} / ${rt.replace(/-(f16|int8)$/, '')} latency: [\\d.]+ \\(1t b1\\)$`, 'm'));
  await expect(bench('--weights', 'int4')).rejects.toThrow("--weights takes f32, f16 and/or int8, got 'int4'");
}, 180_000);

test('bench --rounds 2: the rows take turns twice, in the same order each round', async () => {
  const json = path.join(tempDir('vit-wasm-bench-'), 'b.json');
  const { stdout } = await bench('--threads', '1,2', '--runs', '3', '--rounds', '2', '--json', json);
  const turns = stdout
    .split('\n')
    .map((l) => /^ {2}round (\d)\/2: measured (\S+) threads=(\d) batch=1: [\d.]+ ms$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => `${m[1]} ${m[2]} ${m[3]}`);
  expect(turns).toEqual(['1 vit-wasm 1', '1 vit-wasm 2', '2 vit-wasm 1', '2 vit-wasm 2']);
  const out = JSON.parse(readFileSync(json, 'utf8'));
  expect(out.rounds).toBe(2);
  expect(out.rows).toHaveLength(2);
  for (const r of out.rows) expect(r.minMs).toBeLessThanOrEqual(r.medianMs);
}, 120_000);
