/**
 * `vit-wasm bench`: latency, throughput, GFLOP/s and % of this machine's measured wasm SIMD ceiling
 * at several thread counts and batch sizes, with onnxruntime-web (wasm) and onnxruntime-node
 * (native CPU) on the same weights in the same run. Each (runtime, threads, batch) runs in a fresh
 * child process, so peak RSS and load time are its own and ORT-web's per-process thread pool can
 * be sized per row.
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  fsyncSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import v8 from 'node:v8';
import { type QuantizeTarget, quantizeModel } from '../export/quantize.js';
import type { ViTConfig } from '../io/config.js';
import { PRESETS, randomModelFiles } from '../io/presets.js';
import { modelFiles } from '../io/source.js';
import { loadModel } from '../model/load.js';
import { tokens } from '../nn/shape.js';
import { importOptional } from '../platform/optional.js';
import { packageFile } from '../platform/paths.js';
import { WasmMemory } from '../runtime/memory.js';

/** `ort-web-int8` runs the dynamically quantized graph of `export-onnx --int8`. */
export type Runtime =
  | 'vit-wasm'
  | 'vit-wasm-relaxed'
  | 'vit-wasm-f16'
  | 'vit-wasm-relaxed-f16'
  | 'vit-wasm-int8'
  | 'vit-wasm-relaxed-int8'
  | 'ort-web'
  | 'ort-web-int8'
  | 'ort-node';

/** Multiply-adds × 2 of one image through the model (matrix products only; elementwise ops are noise). */
export function forwardFlops(c: ViTConfig): number {
  const D = c.hiddenSize,
    M = c.intermediateSize,
    p = c.patchSize,
    K = c.numChannels * p * p;
  const { Np, T } = tokens(c);
  const layer = T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * M;
  return 2 * (Np * K * D + c.numLayers * layer + D * c.numLabels);
}

/** What one core can do at most, measured by bench/ceiling.ts in one build. */
export interface Ceiling {
  /** f32x4 GFLOP/s: mul+add in the plain build, FMA in the relaxed one. */
  f32: number;
  /**
   * int8 GOP/s (2 per multiply-add, as the forward's FLOPs count them) of the int8 GEMM's dot
   * product; relaxed build only (NaN in the plain one, whose GEMM shares the sign extensions of a
   * weight vector between the rows of a tile, so a chain of whole dot products is no bound for it).
   */
  int8: number;
}

/** One core's ceilings in the plain ('simd') or relaxed build, best of 5 each. */
export async function measureCeiling(flavor: 'simd' | 'relaxed'): Promise<Ceiling> {
  if (flavor === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  const file = fileURLToPath(packageFile(`build/bench/ceiling-${flavor}.wasm`));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 65536, shared: true });
  const { instance } = await WebAssembly.instantiate(readFileSync(file), { env: { memory } });
  const best = (run: (n: number) => unknown, opsPerIter: number) => {
    run(2e6); // past V8's baseline tier
    let top = 0;
    for (let r = 0; r < 5; r++) {
      const n = 1e7,
        t0 = performance.now();
      run(n);
      top = Math.max(top, (n * opsPerIter) / ((performance.now() - t0) / 1000) / 1e9);
    }
    return top;
  };
  const peak = instance.exports.peak as (iters: number, x: number) => number,
    peakI8 = instance.exports.peak_i8 as (iters: number, x: number) => number;
  // 12 chains × 4 lanes × 2 flops; 12 chains × 16 multiply-adds × 2
  return {
    f32: best((n) => peak(n, 1), 12 * 8),
    int8: flavor === 'relaxed' ? best((n) => peakI8(n, 1), 12 * 32) : NaN,
  };
}

interface ChildJob {
  runtime: Runtime;
  threads: number;
  batch: number;
  runs: number;
  dir: string;
  onnx: string;
}
interface ChildResult {
  loadMs: number;
  firstMs: number;
  times: number[];
  rssPeakMb: number;
  flops: number;
}

function pixels(n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.0137) * 1.5);
}

/** Runs one configuration in this process (the child side); returns what it measured. */
export async function benchChild(job: ChildJob): Promise<ChildResult> {
  const cfg = JSON.parse(readFileSync(path.join(job.dir, 'config.json'), 'utf8'));
  const C = cfg.num_channels ?? 3,
    S = cfg.image_size,
    [H, W] = Array.isArray(S) ? S : [S, S];
  const input = pixels(job.batch * C * H * W);
  let run: () => Promise<unknown>, flops: number;
  const t0 = performance.now();
  if (job.runtime.startsWith('vit-wasm')) {
    const simd = job.runtime.startsWith('vit-wasm-relaxed') ? 'relaxed' : 'simd';
    if (simd === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    const weights = job.runtime.endsWith('-int8') ? 'int8' : 'f32';
    const model = await loadModel(job.dir, { threads: job.threads, simd, weights });
    flops = forwardFlops(model.config) * job.batch;
    run = () => model.forward(input, job.batch);
  } else {
    const ort =
      job.runtime === 'ort-node'
        ? (await importOptional<{ default: typeof import('onnxruntime-node') }>('onnxruntime-node', 'bench --peers'))
            .default
        : await importOptional<typeof import('onnxruntime-web')>('onnxruntime-web', 'bench --peers');
    if (job.runtime.startsWith('ort-web')) (ort.env.wasm as { numThreads: number }).numThreads = job.threads;
    const opts =
      job.runtime === 'ort-node'
        ? { intraOpNumThreads: job.threads, interOpNumThreads: 1, executionProviders: ['cpu'] }
        : { executionProviders: ['wasm'] };
    const file = job.runtime === 'ort-web-int8' ? int8Onnx(job.onnx) : job.onnx;
    const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(file)), opts);
    const feeds = { pixel_values: new ort.Tensor('float32', input, [job.batch, C, H, W]) };
    flops = NaN;
    run = () => session.run(feeds);
  }
  const loaded = performance.now();
  await run();
  const firstMs = performance.now() - loaded;
  for (let i = 0; i < 2; i++) await run(); // warm-up: V8 tiers wasm up while it runs
  const times: number[] = [];
  for (let i = 0; i < job.runs; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  return { loadMs: loaded - t0, firstMs, times, rssPeakMb: peakRssMb(), flops };
}

/**
 * This process's peak resident memory. Linux's VmHWM belongs to the address space, so it starts
 * afresh at exec; getrusage's maxRSS survives exec and would report the parent's peak instead.
 */
function peakRssMb(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) / 1024;
  } catch {
    /* not Linux */
  }
  return process.resourceUsage().maxRSS / 1024;
}

export interface BenchOptions {
  preset?: string;
  model?: string;
  threads: number[];
  batch: number[];
  runs: number;
  /**
   * The configurations take turns this many times (default 1), each turn in a fresh process timing
   * its share of `runs`, so that a drift in the machine's speed during the bench falls on every row
   * alike instead of on whichever rows ran during it. A row's median is over all its turns' runs.
   */
  rounds?: number;
  peers: boolean;
  json?: string;
  chart?: string;
  relaxed: boolean;
  /**
   * Weight forms to add rows for, each from its own `vit-wasm quantize` directory: `f16` (dequantized
   * at load, f32 arithmetic) and `int8` (loadModel's weights: 'int8').
   */
  forms?: QuantizeTarget[];
  log: (line: string) => void;
}

export interface BenchRow {
  runtime: Runtime;
  threads: number;
  batch: number;
  medianMs: number;
  minMs: number;
  imagesPerSec: number;
  gflops: number | null;
  pctCeiling: number | null;
  speedup: number | null;
  loadMs: number;
  firstMs: number;
  rssPeakMb: number;
  vsOrtWeb?: number;
  vsOrtNode?: number;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Writes and flushes a file, so the kernel's write-back of hundreds of MB does not run during the timings. */
function writeDurably(file: string, data: Uint8Array | string): void {
  writeFileSync(file, data);
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Bytes of a model directory's weights (model.safetensors, or its shards). */
function weightBytes(dir: string): number {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .reduce((a, f) => a + statSync(path.join(dir, f)).size, 0);
}

/**
 * Writes the preset (if any), the quantized copies (`forms`: dir → target) and the ONNX export; run
 * in a child so the parent never holds the model.
 */
export async function benchPrep(o: {
  preset?: string;
  dir: string;
  onnx: string | null;
  forms: Record<string, QuantizeTarget>;
}): Promise<{ flops: number; bytes: Record<string, number> }> {
  if (o.preset)
    for (const [name, data] of Object.entries(randomModelFiles(PRESETS[o.preset], 0)))
      writeDurably(path.join(o.dir, name), data);
  const bytes: Record<string, number> = { f32: weightBytes(o.dir) }; // the source's, whatever its dtype
  for (const [dir, to] of Object.entries(o.forms)) {
    const files = await quantizeModel(await modelFiles(o.dir), new WasmMemory(false), to);
    for (const [name, data] of Object.entries(files)) writeDurably(path.join(dir, name), data);
    bytes[to] = weightBytes(dir);
  }
  const model = await loadModel(o.dir, { threads: 1, simd: 'simd' });
  try {
    if (o.onnx) {
      writeDurably(o.onnx, model.toOnnx());
      writeDurably(int8Onnx(o.onnx), model.toOnnx({ int8: true }));
    }
    return { flops: forwardFlops(model.config), bytes };
  } finally {
    await model.dispose();
  }
}

/** Where the int8 graph is written beside the f32 one. */
const int8Onnx = (onnx: string) => onnx.replace(/\.onnx$/, '.int8.onnx');

async function child(args: string[]): Promise<string> {
  const bin = fileURLToPath(packageFile('bin/vit-wasm.js'));
  const { stdout } = await promisify(execFile)(process.execPath, [bin, ...args], { maxBuffer: 1 << 24 });
  return stdout.trim().split('\n').pop()!;
}

export async function runBench(o: BenchOptions): Promise<BenchRow[]> {
  if (o.preset && !(o.preset in PRESETS))
    throw new Error(`vit-wasm: unknown preset '${o.preset}' (${Object.keys(PRESETS).join(', ')})`);
  // The preset's weights, its ONNX graphs and the quantized copies are written to folders of their
  // own (vit-b16: ~0.9 GB in all); they go when the bench ends, fails or is interrupted.
  const temps: string[] = [];
  const temp = (prefix: string) => {
    const d = mkdtempSync(path.join(tmpdir(), prefix));
    temps.push(d);
    return d;
  };
  const cleanUp = () => {
    for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    cleanUp();
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  try {
    return await benchIn(o, temp);
  } finally {
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
    cleanUp();
  }
}

async function benchIn(o: BenchOptions, temp: (prefix: string) => string): Promise<BenchRow[]> {
  const dir = o.model ?? temp(`vit-wasm-${o.preset}-`);
  const onnx = path.join(temp('vit-wasm-onnx-'), 'model.onnx');
  const forms = o.forms ?? [];
  const formDirs = Object.fromEntries(forms.map((f) => [f, temp(`vit-wasm-${f}-`)]));
  // In a child process: the parent's freeing of hundreds of MB would otherwise run during the timings.
  const { flops, bytes } = JSON.parse(
    await child([
      '__bench-prep',
      JSON.stringify({
        preset: o.preset,
        dir,
        onnx: o.peers ? onnx : null,
        forms: Object.fromEntries(forms.map((f) => [formDirs[f], f])),
      }),
    ]),
  ) as { flops: number; bytes: Record<string, number> };

  const ceilings = {
    simd: await measureCeiling('simd'),
    relaxed: o.relaxed ? await measureCeiling('relaxed') : { f32: NaN, int8: NaN },
  };
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  o.log(
    `${o.preset ?? dir}: ${(flops / 1e9).toFixed(2)} GFLOP per image; ${cpus().length} cores (${cpu}); node ${process.version}`,
  );
  o.log(
    `wasm SIMD ceiling, one core (bench/ceiling.ts): ${ceilings.simd.f32.toFixed(1)} GFLOP/s mul+add` +
      (o.relaxed ? `, ${ceilings.relaxed.f32.toFixed(1)} GFLOP/s relaxed FMA` : '') +
      (o.relaxed ? `, ${ceilings.relaxed.int8.toFixed(1)} GOP/s relaxed int8 dot product` : ''),
  );
  if (forms.length)
    o.log(
      `weights (vit-wasm quantize): ${Object.entries(bytes)
        .map(
          ([f, b]) =>
            `${f} ${(b / 2 ** 20).toPrecision(4)} MiB${f === 'f32' ? '' : ` (${(b / bytes.f32).toFixed(3)}x)`}`,
        )
        .join(', ')}`,
    );

  const runtimes: Runtime[] = [
    'vit-wasm',
    ...(o.relaxed ? ['vit-wasm-relaxed' as const] : []),
    ...forms.flatMap((f) => [`vit-wasm-${f}` as const, ...(o.relaxed ? [`vit-wasm-relaxed-${f}` as const] : [])]),
    ...(o.peers ? ['ort-web' as const, 'ort-web-int8' as const, 'ort-node' as const] : []),
  ];
  const rows: BenchRow[] = [];
  const configs = o.batch.flatMap((batch) =>
    runtimes.flatMap((runtime) => o.threads.map((threads) => ({ batch, runtime, threads }))),
  );
  const rounds = Math.min(o.rounds ?? 1, o.runs),
    results = configs.map(() => [] as ChildResult[]);
  for (let round = 0; round < rounds; round++)
    for (const [i, { batch, runtime, threads }] of configs.entries()) {
      const form = forms.find((f) => runtime.endsWith(`-${f}`));
      // this turn's share of the runs: together the turns time exactly o.runs forwards
      const runs = Math.floor((o.runs * (round + 1)) / rounds) - Math.floor((o.runs * round) / rounds);
      const job: ChildJob = { runtime, threads, batch, runs, dir: form ? formDirs[form] : dir, onnx };
      const r: ChildResult = JSON.parse(
        await child(['__bench-child', JSON.stringify(job)]).catch((e) => {
          throw new Error(
            `vit-wasm bench: ${runtime} threads=${threads} batch=${batch} failed: ${e.stderr || e.message}`,
          );
        }),
      );
      results[i].push(r);
      o.log(
        `  ${rounds > 1 ? `round ${round + 1}/${rounds}: ` : ''}measured ${runtime} threads=${threads} batch=${batch}: ` +
          `${median(r.times).toFixed(1)} ms`,
      );
    }
  for (const [i, { batch, runtime, threads }] of configs.entries()) {
    const turns = results[i];
    const r: ChildResult = {
      times: turns.flatMap((t) => t.times),
      loadMs: median(turns.map((t) => t.loadMs)),
      firstMs: median(turns.map((t) => t.firstMs)),
      rssPeakMb: Math.max(...turns.map((t) => t.rssPeakMb)),
      flops: turns[0].flops,
    };
    const med = median(r.times);
    const gflops = (flops * batch) / (med / 1000) / 1e9;
    // int8 rows against the int8 dot product's ceiling (relaxed build only); ort-node is native code
    const build = runtime.startsWith('vit-wasm-relaxed') ? ceilings.relaxed : ceilings.simd;
    const ceiling = runtime === 'ort-node' ? NaN : runtime.endsWith('-int8') ? build.int8 : build.f32;
    const base = rows.find((x) => x.runtime === runtime && x.batch === batch && x.threads === 1);
    const row: BenchRow = {
      runtime,
      threads,
      batch,
      medianMs: med,
      minMs: Math.min(...r.times),
      imagesPerSec: (batch * 1000) / med,
      gflops,
      pctCeiling: Number.isFinite(ceiling) ? (100 * gflops) / (ceiling * threads) : null,
      speedup: base ? base.medianMs / med : threads === 1 ? 1 : null,
      loadMs: r.loadMs,
      firstMs: r.firstMs,
      rssPeakMb: r.rssPeakMb,
    };
    rows.push(row);
  }
  for (const r of rows) {
    const peer = (rt: Runtime) => rows.find((x) => x.runtime === rt && x.batch === r.batch && x.threads === r.threads);
    if (r.runtime.startsWith('vit-wasm')) {
      // int8 rows against onnxruntime-web's 8-bit graph, the rest against its f32 one
      const w = peer(r.runtime.endsWith('-int8') ? 'ort-web-int8' : 'ort-web'),
        n = peer('ort-node');
      if (w) r.vsOrtWeb = r.medianMs / w.medianMs;
      if (n) r.vsOrtNode = r.medianMs / n.medianMs;
    }
  }
  o.log('');
  o.log(formatTable(rows));
  o.log(
    'ratios are latency / peer latency at the same threads and batch (< 1: vit-wasm faster)' +
      (forms.includes('int8') && o.peers ? "; int8 rows' vs ort-web is against its int8 graph" : ''),
  );
  // each form against f32 in the same build, threads and batch: what quantizing buys
  for (const f of forms)
    for (const build of o.relaxed ? ['vit-wasm', 'vit-wasm-relaxed'] : ['vit-wasm']) {
      const pairs = rows
        .filter((r) => r.runtime === `${build}-${f}`)
        .map((r) => {
          const base = rows.find((x) => x.runtime === build && x.threads === r.threads && x.batch === r.batch)!;
          return `${(r.medianMs / base.medianMs).toFixed(2)} (${r.threads}t b${r.batch})`;
        });
      o.log(`${build}-${f} / ${build} latency: ${pairs.join(', ')}`);
    }
  if (o.json)
    writeFileSync(
      o.json,
      JSON.stringify(
        {
          model: o.preset ?? dir,
          flopsPerImage: flops,
          weightBytes: bytes,
          ceilings,
          cpu,
          node: process.version,
          runs: o.runs,
          rounds,
          rows,
        },
        null,
        2,
      ),
    );
  if (o.chart) writeFileSync(o.chart, chartSvg(rows, o.preset ?? path.basename(dir)));
  return rows;
}

export function formatTable(rows: BenchRow[]): string {
  const head = [
    'runtime',
    'threads',
    'batch',
    'median ms',
    'min ms',
    'img/s',
    'GFLOP/s',
    '% ceil',
    'speedup',
    'vs ort-web',
    'vs ort-node',
    'load ms',
    'first ms',
    'peak RSS MB',
  ];
  const f = (v: number | null | undefined, d = 1) =>
    v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d);
  const body = rows.map((r) => [
    r.runtime,
    String(r.threads),
    String(r.batch),
    f(r.medianMs),
    f(r.minMs),
    f(r.imagesPerSec, 2),
    f(r.gflops),
    f(r.pctCeiling, 0),
    r.speedup ? `${r.speedup.toFixed(2)}x` : '-',
    r.vsOrtWeb ? `${r.vsOrtWeb.toFixed(2)}x` : '-',
    r.vsOrtNode ? `${r.vsOrtNode.toFixed(2)}x` : '-',
    f(r.loadMs, 0),
    f(r.firstMs, 0),
    f(r.rssPeakMb, 0),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

/** Latency against thread count, one line per runtime (first batch size). */
export function chartSvg(rows: BenchRow[], title: string): string {
  const batch = rows[0]?.batch ?? 1,
    data = rows.filter((r) => r.batch === batch);
  const runtimes = [...new Set(data.map((r) => r.runtime))],
    threads = [...new Set(data.map((r) => r.threads))].sort((a, b) => a - b);
  const Wd = 640,
    Ht = 400,
    L = 70,
    R = 170,
    T = 40,
    B = 50,
    ymax = Math.max(...data.map((r) => r.medianMs)) * 1.1;
  const x = (t: number) =>
    L + (threads.length === 1 ? (Wd - L - R) / 2 : ((Wd - L - R) * threads.indexOf(t)) / (threads.length - 1));
  const y = (ms: number) => T + (Ht - T - B) * (1 - ms / ymax);
  const colors = ['#1f77b4', '#2ca02c', '#17becf', '#8c564b', '#d62728', '#9467bd', '#ff7f0e'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Wd}" height="${Ht}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${Wd / 2}" y="22" text-anchor="middle" font-size="14">${title}: latency vs threads (batch ${batch}, median)</text>`,
    `<line x1="${L}" y1="${Ht - B}" x2="${Wd - R}" y2="${Ht - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${Ht - B}" stroke="black"/>`,
    `<text x="${(L + Wd - R) / 2}" y="${Ht - 12}" text-anchor="middle">threads</text>`,
    `<text x="18" y="${(T + Ht - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + Ht - B) / 2})">ms</text>`,
  ];
  for (const t of threads) parts.push(`<text x="${x(t)}" y="${Ht - B + 18}" text-anchor="middle">${t}</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    parts.push(
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text><line x1="${L}" y1="${y(v)}" x2="${Wd - R}" y2="${y(v)}" stroke="#ddd"/>`,
    );
  }
  runtimes.forEach((rt, i) => {
    const pts = threads.flatMap((t) =>
      data.filter((r) => r.runtime === rt && r.threads === t).map((r) => `${x(t)},${y(r.medianMs)}`),
    );
    parts.push(
      `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts.join(' ')}"/>`,
    );
    for (const p of pts) {
      const [px, py] = p.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colors[i % colors.length]}"/>`);
    }
    parts.push(
      `<rect x="${Wd - R + 15}" y="${T + i * 20}" width="12" height="12" fill="${colors[i % colors.length]}"/><text x="${Wd - R + 32}" y="${T + i * 20 + 11}">${rt}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
