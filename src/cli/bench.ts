/**
 * `vit-wasm bench`: latency, throughput, GFLOP/s and % of this machine's measured wasm SIMD ceiling
 * at several thread counts and batch sizes, with onnxruntime-web (wasm) and onnxruntime-node
 * (native CPU) on the same weights in the same run. Each (runtime, threads, batch) runs in a fresh
 * child process, so peak RSS and load time are its own and ORT-web's per-process thread pool can
 * be sized per row.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { QuantizeTarget } from '../export/quantize.js';
import { PRESETS } from '../io/presets.js';
import { packageFile } from '../platform/paths.js';
import {
  type Ceiling,
  type ChildJob,
  type ChildResult,
  measureCeiling,
  type Runtime,
  ZERO_SHOT_LABELS,
} from './bench-child.js';
import { type BenchRow, chartSvg, formatTable } from './bench-report.js';

export { forwardFlops } from '../nn/shape.js';
export { benchChild, benchPrep } from './bench-child.js';
export type { BenchRow };

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

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

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

/** What a bench run measures against: the model's FLOPs and weight sizes, this machine's ceilings. */
interface Setup {
  dir: string;
  onnx: string;
  forms: QuantizeTarget[];
  formDirs: Record<string, string>;
  flops: number;
  bytes: Record<string, number>;
  /** [C, H, W] as the model runs it. */
  input: [number, number, number];
  /** A model with a text tower, benched with peers: its text graph and prompts (zero-shot rows). */
  text: ChildJob['text'] | null;
  ceilings: { simd: Ceiling; relaxed: Ceiling };
  cpu: string;
}

/** Writes the model's files (in a child) and measures the ceilings; logs what the rows will be measured against. */
async function prepare(o: BenchOptions, temp: (prefix: string) => string): Promise<Setup> {
  const dir = o.model ?? temp(`vit-wasm-${o.preset}-`);
  const onnx = path.join(temp('vit-wasm-onnx-'), 'model.onnx');
  const forms = o.forms ?? [];
  const formDirs = Object.fromEntries(forms.map((f) => [f, temp(`vit-wasm-${f}-`)]));
  // In a child process: the parent's freeing of hundreds of MB would otherwise run during the timings.
  const { flops, bytes, input, text } = JSON.parse(
    await child([
      '__bench-prep',
      JSON.stringify({
        preset: o.preset,
        dir,
        onnx: o.peers ? onnx : null,
        forms: Object.fromEntries(forms.map((f) => [formDirs[f], f])),
      }),
    ]),
  ) as { flops: number; bytes: Record<string, number>; input: [number, number, number]; text: ChildJob['text'] | null };
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
  return { dir, onnx, forms, formDirs, flops, bytes, input, ceilings, cpu, text };
}

type Config = { batch: number; runtime: Runtime; threads: number };

/** Times every configuration, `rounds` turns each (see {@link BenchOptions.rounds}), each turn in a fresh child. */
async function measure(o: BenchOptions, s: Setup, configs: Config[], rounds: number): Promise<ChildResult[][]> {
  const results = configs.map(() => [] as ChildResult[]);
  for (let round = 0; round < rounds; round++)
    for (const [i, { batch, runtime, threads }] of configs.entries()) {
      const form = s.forms.find((f) => runtime.endsWith(`-${f}`));
      // this turn's share of the runs: together the turns time exactly o.runs forwards
      const runs = Math.floor((o.runs * (round + 1)) / rounds) - Math.floor((o.runs * round) / rounds);
      const job: ChildJob = {
        runtime,
        threads,
        batch,
        runs,
        dir: form ? s.formDirs[form] : s.dir,
        onnx: s.onnx,
        input: s.input,
        text: s.text ?? undefined,
      };
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
  return results;
}

/** One row per configuration from its turns: medians, GFLOP/s, % of the ceiling, speed-up, ratios to the peers. */
function toRows(s: Setup, configs: Config[], results: ChildResult[][]): BenchRow[] {
  const rows: BenchRow[] = [];
  for (const [i, { batch, runtime, threads }] of configs.entries()) {
    const turns = results[i],
      times = turns.flatMap((t) => t.times);
    const med = median(times);
    const gflops = (s.flops * batch) / (med / 1000) / 1e9;
    // int8 rows against the int8 dot product's ceiling (relaxed build only); ort-node is native code
    const build = runtime.startsWith('vit-wasm-relaxed') ? s.ceilings.relaxed : s.ceilings.simd;
    const ceiling = runtime === 'ort-node' ? NaN : runtime.endsWith('-int8') ? build.int8 : build.f32;
    const base = rows.find((x) => x.runtime === runtime && x.batch === batch && x.threads === 1);
    rows.push({
      runtime,
      threads,
      batch,
      medianMs: med,
      minMs: Math.min(...times),
      imagesPerSec: (batch * 1000) / med,
      gflops,
      pctCeiling: Number.isFinite(ceiling) ? (100 * gflops) / (ceiling * threads) : null,
      speedup: base ? base.medianMs / med : threads === 1 ? 1 : null,
      loadMs: median(turns.map((t) => t.loadMs)),
      firstMs: median(turns.map((t) => t.firstMs)),
      rssPeakMb: Math.max(...turns.map((t) => t.rssPeakMb)),
    });
  }
  for (const r of rows) {
    const peer = (rt: Runtime) => rows.find((x) => x.runtime === rt && x.batch === r.batch && x.threads === r.threads);
    if (r.runtime.startsWith('vit-wasm')) {
      // int8 rows against onnxruntime-web's 8-bit graph, zero-shot rows against its zero-shot call, the rest its f32 graph
      const zeroShot = r.runtime.endsWith('-zero-shot');
      const w = peer(r.runtime.endsWith('-int8') ? 'ort-web-int8' : zeroShot ? 'ort-web-zero-shot' : 'ort-web'),
        n = zeroShot ? undefined : peer('ort-node'); // (onnxruntime-node runs no zero-shot row)
      if (w) r.vsOrtWeb = r.medianMs / w.medianMs;
      if (n) r.vsOrtNode = r.medianMs / n.medianMs;
    }
  }
  return rows;
}

/** The table, what its ratios mean, and each weight form's latency over f32 in the same build. */
function report(o: BenchOptions, s: Setup, rows: BenchRow[]): void {
  o.log('');
  o.log(formatTable(rows));
  o.log(
    'ratios are latency / peer latency at the same threads and batch (< 1: vit-wasm faster)' +
      (s.forms.includes('int8') && o.peers ? "; int8 rows' vs ort-web is against its int8 graph" : ''),
  );
  if (s.text)
    o.log(
      `zero-shot rows: one image against ${ZERO_SHOT_LABELS.length} labels ("a photo of a {}."), their prompts' embeddings cached; ` +
        'first ms is the first call, which embeds them; ort-web-zero-shot runs the exported image and text towers (export-onnx, export-onnx --text) and scores the cached labels by cosine in JavaScript',
    );
  // each form against f32 in the same build, threads and batch: what quantizing buys
  for (const f of s.forms)
    for (const build of o.relaxed ? ['vit-wasm', 'vit-wasm-relaxed'] : ['vit-wasm']) {
      const pairs = rows
        .filter((r) => r.runtime === `${build}-${f}`)
        .map((r) => {
          const base = rows.find((x) => x.runtime === build && x.threads === r.threads && x.batch === r.batch)!;
          return `${(r.medianMs / base.medianMs).toFixed(2)} (${r.threads}t b${r.batch})`;
        });
      o.log(`${build}-${f} / ${build} latency: ${pairs.join(', ')}`);
    }
}

async function benchIn(o: BenchOptions, temp: (prefix: string) => string): Promise<BenchRow[]> {
  const s = await prepare(o, temp);
  const runtimes: Runtime[] = [
    'vit-wasm',
    ...(o.relaxed ? ['vit-wasm-relaxed' as const] : []),
    ...s.forms.flatMap((f) => [`vit-wasm-${f}` as const, ...(o.relaxed ? [`vit-wasm-relaxed-${f}` as const] : [])]),
    ...(o.peers ? ['ort-web' as const, 'ort-web-int8' as const, 'ort-node' as const] : []),
  ];
  const configs = o.batch.flatMap((batch) =>
    runtimes.flatMap((runtime) => o.threads.map((threads) => ({ batch, runtime, threads }))),
  );
  // a model with a text tower (with peers): a zero-shot call, one image, beside onnxruntime-web's
  if (s.text)
    for (const runtime of ['vit-wasm-zero-shot', 'ort-web-zero-shot'] as const)
      configs.push(...o.threads.map((threads) => ({ batch: 1, runtime, threads })));
  const rounds = Math.min(o.rounds ?? 1, o.runs);
  const rows = toRows(s, configs, await measure(o, s, configs, rounds));
  report(o, s, rows);
  const { flops, bytes, ceilings, cpu, dir } = s;
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
