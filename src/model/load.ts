/**
 * loadModel: a checkpoint directory (config.json, safetensors, preprocessor_config.json) → a
 * ViTModel, its weights in one wasm memory and, where memory can be shared, a pool of workers.
 */
import { loadCheckpoint } from '../io/checkpoint.js';
import { processorSize } from '../io/config.js';
import { sizeField } from '../io/json.js';
import { type ProcessorSource, processorConfig, readProcessor } from '../io/processor.js';
import { readSiglipTokenizer } from '../io/siglip-tokenizer.js';
import { type ModelLocation, modelFiles } from '../io/source.js';
import { readTokenizer } from '../io/tokenizer.js';
import type { Calibration, InferenceInit, InferenceJob } from '../nn/infer.js';
import { forwardFlops, type ViTShape } from '../nn/shape.js';
import { resolveLimits } from '../platform/limits.js';
import {
  defaultThreadCount,
  engineName,
  PLATFORM,
  sharedMemoryUnavailable,
  splitEveryOp,
} from '../platform/platform.js';
import { compileKernels, instantiateKernels, type SimdFlavor } from '../runtime/kernels.js';
import { WasmMemory } from '../runtime/memory.js';
import { checkThreads, MAX_WORKERS, WorkerPool } from '../runtime/pool.js';
import { ViTModel } from './model.js';
import type { LoadOptions, RuntimeInfo } from './options.js';

/**
 * Loads a ViT from a Hugging Face-layout directory: config.json, model.safetensors (or sharded
 * model.safetensors.index.json) and optional preprocessor_config.json. Weights named in the Hugging
 * Face, timm or torchvision scheme, as F32, F16 or BF16, are recognised automatically.
 * @param where a directory path (Node), a base URL (browsers), or a map of file name → contents
 */
export async function loadModel(where: ModelLocation, opts: LoadOptions = {}): Promise<ViTModel> {
  if (opts === null || typeof opts !== 'object') throw new Error('vit-wasm: loadModel: options must be an object');
  const asked = opts.threads === undefined ? undefined : checkThreads(opts.threads);
  const limits = resolveLimits(opts.limits);
  const simd = opts.simd ?? 'auto';
  if (simd !== 'auto' && simd !== 'simd' && simd !== 'relaxed')
    throw new Error(`vit-wasm: simd must be 'auto', 'simd' or 'relaxed', got ${JSON.stringify(simd)}`);
  const fallback = sharedMemoryUnavailable();
  const shared = fallback === null;
  // Workers even for one thread: the caller's thread (a page, a server's event loop) never computes.
  if (!shared && !warnedFallback)
    console.warn(`vit-wasm: threads are off, running on one thread in the calling thread: ${fallback}`);
  warnedFallback ||= !shared;
  const files = await modelFiles(where, limits);
  const { module, flavor } = await compileKernels(simd, shared);
  const mem = new WasmMemory(shared);
  const k = instantiateKernels(module, mem.memory);
  const weightsForm = opts.weights ?? 'f32';
  if (weightsForm !== 'f32' && weightsForm !== 'int8')
    throw new Error(`vit-wasm: weights must be 'f32' or 'int8', got ${JSON.stringify(weightsForm)}`);
  // the imageSize option read as config.json's image_size is: a side, or [height, width]
  const imageSize = sizeField(opts.imageSize, 'imageSize', 'loadModel');
  let proc: ProcessorSource | null = null;
  const { config, weights, scheme, family, text } = await loadCheckpoint(files, mem, {
    int8: weightsForm === 'int8' ? k : undefined,
    imageSize,
    // what the processor gives: a family that runs at its input's size (DINOv2) runs at it
    inputSize: async (modelConfig) => {
      proc = await readProcessor(files, modelConfig, opts.transforms);
      return proc ? processorSize(proc.raw, proc.file) : undefined;
    },
  });
  // at a size the caller chose, images are resized (and cropped) to it, not to the processor's size
  const preprocessing = processorConfig(proc, config, imageSize, `${files.where}/preprocessor_config.json`);
  // asked for, or as many as the model's size makes worth a synchronization per op
  const threads = asked ?? autoThreads(config);
  let pool: WorkerPool<InferenceInit, InferenceJob> | null = null;
  if (shared) {
    // read at every (re)start of a worker, so a replaced pool keeps what calibration decided
    let serialBelow = 0;
    pool = new WorkerPool({
      workers: threads,
      memory: mem.memory,
      kind: 'worker',
      workerUrl: opts.workerUrl,
      init: (id): InferenceInit => ({
        module,
        memory: mem.memory,
        id,
        workers: threads,
        shape: config,
        weights,
        text: text && { shape: text.shape, weights: text.weights },
        serialBelow,
      }),
    });
    await pool.started();
    if (threads > 1 && !splitEveryOp()) serialBelow = await tuneThreads(pool, mem, threads, config);
  }
  const runtime = runtimeInfo(pool, flavor, shared, simd, fallback);
  return new ViTModel({
    config,
    preprocessing,
    scheme,
    family,
    simd: flavor,
    mem,
    k,
    weights,
    keepAttention: !!opts.keepAttention,
    allowNonFinite: !!opts.allowNonFinite,
    int8: weightsForm === 'int8',
    limits,
    pool,
    runtime,
    text: text && {
      tower: text,
      tokenizer:
        family === 'siglip'
          ? await readSiglipTokenizer(files, text.shape.maxPositions)
          : await readTokenizer(files, text.shape.maxPositions),
      where: files.where,
    },
  });
}

/** What model.runtime says: threads, kernel build, shared memory, and why where it fell back. */
function runtimeInfo(
  pool: WorkerPool<InferenceInit, InferenceJob> | null,
  flavor: SimdFlavor,
  shared: boolean,
  simd: string,
  fallback: string | null,
): RuntimeInfo {
  return {
    platform: PLATFORM,
    engine: engineName(),
    threads: pool?.size ?? 1,
    workers: !!pool,
    simd: flavor,
    sharedMemory: shared,
    crossOriginIsolated:
      PLATFORM === 'browser' ? (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true : null,
    fallback,
    simdReason:
      flavor === 'relaxed'
        ? null
        : !shared
          ? 'the one-thread fallback build is plain SIMD'
          : simd === 'simd'
            ? "plain SIMD was asked for (simd: 'simd')"
            : 'this engine has no relaxed SIMD',
  };
}

/** How much more a split op must save than a barrier costs before it is split (noise, uneven chunks). */
const BARRIER_MARGIN = 4;

/**
 * pthreadpool's rule, measured here at load: an op is split between the workers only when the time
 * it saves, its cost × (1 − 1/workers), is over BARRIER_MARGIN barriers; smaller ops run on worker
 * 0 alone while the others go on (src/nn/work.ts, Work.each). Times one barrier of all the workers
 * (median) and a small GEMM on each (median), tells every worker the threshold, and returns it
 * (GEMM flop-equivalents). A forward too small for a second worker at all (under 2 × FLOPS_PER_THREAD,
 * as autoThreads counts) runs on worker 0 alone, the others not called (WorkerPool.soloWhen).
 */
async function tuneThreads(
  pool: WorkerPool<InferenceInit, InferenceJob>,
  mem: WasmMemory,
  workers: number,
  config: ViTShape,
): Promise<number> {
  const scratch = mem.alloc(workers * 3 * 64 * 64);
  const got = await pool.all<Calibration>('calibrate', (id) => scratch + id * 3 * 64 * 64 * 4);
  const median = (xs: number[]) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const barrierNs = median(got.map((g) => g.barrierNs)),
    nsPerFlop = median(got.map((g) => g.nsPerFlop));
  // a clock too coarse to see the GEMM (a page's timers can be) leaves every op split, as before
  const serialBelow =
    nsPerFlop > 0 && Number.isFinite(barrierNs) ? (BARRIER_MARGIN * barrierNs) / (nsPerFlop * (1 - 1 / workers)) : 0;
  await pool.all('tune', () => serialBelow);
  // a forward too small for a second worker (autoThreads' rule) runs on one, the others not called
  const flops = forwardFlops(config);
  pool.soloWhen((a) => 'B' in a && a.B * flops < 2 * FLOPS_PER_THREAD);
  return serialBelow;
}

/**
 * The work (FLOPs of one image's forward) each extra worker must bring before it is worth having:
 * every op ends at a barrier the workers meet at, which costs microseconds per op however small the
 * op. Measured (bench/browser-threads.mjs, bench/NOTES.md): the bundled MNIST model (5 MFLOP) is
 * faster on 1 thread than on 2 in Chromium and Node; deit-tiny (2.5 GFLOP) 1.6–1.7× faster on 2.
 */
const FLOPS_PER_THREAD = 1e8;

/**
 * The thread count when none is asked for: the cores (defaultThreadCount), fewer for a model too
 * small to share, and never over MAX_WORKERS (a 128-core server gets 64, not an error).
 */
export function autoThreads(c: ViTShape): number {
  const cores = Math.min(defaultThreadCount(), MAX_WORKERS);
  return Math.max(1, Math.min(cores, Math.floor(forwardFlops(c) / FLOPS_PER_THREAD)));
}

/** The one-thread fallback is announced once per page or process, not once per model. */
let warnedFallback = false;
