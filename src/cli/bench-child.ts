/**
 * bench's child processes: each (runtime, threads, batch) row runs in a fresh process (peak RSS
 * and load time its own, onnxruntime-web's thread pool sized per row), and one more writes the
 * preset, its quantized copies and ONNX graphs first, so the parent never holds a model.
 */
import { closeSync, fsyncSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { type QuantizeTarget, quantizeModel } from '../export/quantize.js';
import { PRESETS, randomModelFiles } from '../io/presets.js';
import { modelFiles } from '../io/source.js';
import { loadModel } from '../model/load.js';
import { forwardFlops } from '../nn/shape.js';
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
  | 'ort-node'
  | 'vit-wasm-zero-shot'
  | 'ort-web-zero-shot';

/**
 * A zero-shot call's labels (a model with a text tower): the rows time one image against these 10,
 * their prompts' embeddings cached (the first call, which embeds them, is the row's first ms).
 */
export const ZERO_SHOT_LABELS = [
  'cat',
  'dog',
  'car',
  'bicycle',
  'red apple',
  'small bird',
  'airplane',
  'horse',
  'mountain lake',
  'bridge',
];
const ZERO_SHOT_TEMPLATE = 'a photo of a {}.';

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

export interface ChildJob {
  runtime: Runtime;
  threads: number;
  batch: number;
  runs: number;
  dir: string;
  onnx: string;
  /** The input image as the model runs it, [C, H, W] (benchPrep reads it off the loaded model). */
  input: [number, number, number];
  /** zero-shot rows: the text tower's ONNX graph and the prompts' ids, padded to its length (benchPrep). */
  text?: { onnx: string; ids: number[][] };
}
export interface ChildResult {
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
  const [C, H, W] = job.input;
  const input = pixels(job.batch * C * H * W);
  let run: () => Promise<unknown>, flops: number;
  const t0 = performance.now();
  if (job.runtime === 'vit-wasm-zero-shot') {
    const model = await loadModel(job.dir, { threads: job.threads, simd: 'simd' });
    flops = forwardFlops(model.config); // the image forward: the call's work once the labels are cached
    run = () => model.zeroShot(input, ZERO_SHOT_LABELS, { template: ZERO_SHOT_TEMPLATE });
  } else if (job.runtime === 'ort-web-zero-shot') {
    run = await ortZeroShot(job, input);
    flops = NaN;
  } else if (job.runtime.startsWith('vit-wasm')) {
    const simd = job.runtime.startsWith('vit-wasm-relaxed') ? 'relaxed' : 'simd';
    if (simd === 'relaxed') v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
    const weights = job.runtime.endsWith('-int8') ? 'int8' : 'f32';
    const model = await loadModel(job.dir, { threads: job.threads, simd, weights });
    flops = forwardFlops(model.config) * job.batch;
    // a model without a classifier runs the same network to its embeddings
    const n = C * H * W,
      images = Array.from({ length: job.batch }, (_, i) => input.subarray(i * n, (i + 1) * n));
    run = model.config.numLabels > 0 ? () => model.forward(input, job.batch) : () => model.embed(images);
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
 * onnxruntime-web's zero-shot call on the exported towers, made as vit-wasm makes it: the prompts
 * embedded by the text graph on the first call and kept, then per call the image graph, both sides
 * normalized, the cosines and their softmax (CLIP's scoring; SigLIP's sigmoid would cost the same,
 * next to nothing beside the image graph).
 */
async function ortZeroShot(job: ChildJob, input: Float32Array): Promise<() => Promise<unknown>> {
  const ort = await importOptional<typeof import('onnxruntime-web')>('onnxruntime-web', 'bench --peers');
  (ort.env.wasm as { numThreads: number }).numThreads = job.threads;
  ort.env.logLevel = 'error'; // (not its notes on a quick-GELU graph's unused constants)
  const opts = { executionProviders: ['wasm'] };
  const image = await ort.InferenceSession.create(new Uint8Array(readFileSync(job.onnx)), opts);
  const text = await ort.InferenceSession.create(new Uint8Array(readFileSync(job.text!.onnx)), opts);
  const ids = job.text!.ids,
    T = ids[0].length;
  const [C, H, W] = job.input;
  const feeds = { pixel_values: new ort.Tensor('float32', input, [1, C, H, W]) };
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  let labels: Float32Array[] | null = null;
  return async () => {
    if (!labels) {
      const out = await text.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat(), BigInt), [ids.length, T]),
      });
      const e = out.text_embeds.data as Float32Array,
        P = e.length / ids.length;
      labels = ids.map((_, i) => unit(e.slice(i * P, (i + 1) * P)));
    }
    const img = unit((await image.run(feeds))[image.outputNames[0]].data as Float32Array);
    const logits = labels.map((l) => 100 * l.reduce((s, x, d) => s + x * img[d], 0));
    const z = Math.max(...logits),
      e = logits.map((x) => Math.exp(x - z)),
      sum = e.reduce((a, b) => a + b);
    return e.map((x) => x / sum);
  };
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
}): Promise<{
  flops: number;
  bytes: Record<string, number>;
  input: [number, number, number];
  text: ChildJob['text'] | null;
}> {
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
    let text: ChildJob['text'] | null = null;
    if (o.onnx) {
      writeDurably(o.onnx, model.toOnnx());
      writeDurably(int8Onnx(o.onnx), model.toOnnx({ int8: true }));
      if (model.hasText) {
        // the prompts' ids as the model's tokenizer makes them, padded with their last token to the longest
        const ids = [];
        for (const l of ZERO_SHOT_LABELS)
          ids.push(Array.from((await model.traceText(ZERO_SHOT_TEMPLATE.replace('{}', l))).ids));
        const T = Math.max(...ids.map((x) => x.length));
        text = {
          onnx: o.onnx.replace(/\.onnx$/, '.text.onnx'),
          ids: ids.map((x) => [...x, ...new Array(T - x.length).fill(x[x.length - 1])]),
        };
        writeDurably(text.onnx, model.toOnnx({ text: true, textLength: T }));
      }
    }
    // the size the model runs at (a DINOv2 at its processor's crop): its ONNX graph is exported at it too
    const { numChannels: C, imageSize } = model.config;
    return { flops: forwardFlops(model.config), bytes, input: [C, ...imageSize], text };
  } finally {
    await model.dispose();
  }
}

/** Where the int8 graph is written beside the f32 one. */
const int8Onnx = (onnx: string) => onnx.replace(/\.onnx$/, '.int8.onnx');
