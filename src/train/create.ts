/**
 * createTrainer: where a trainer's steps run (the calling thread, workers on a shared memory, or one
 * worker with its own memory: src/train/hosted.ts), its memory laid out and its initial weights.
 */

import { PLAIN_VIT, untrainable } from '../nn/arch.js';
import { sharedMemoryUnavailable } from '../platform/platform.js';
import { compileKernels, instantiateKernels } from '../runtime/kernels.js';
import { PAGE, WasmMemory } from '../runtime/memory.js';
import { checkThreads, WorkerPool } from '../runtime/pool.js';
import { type Options, TrainCore, type TrainJob, type TrainWorkerInit, trainLayout } from './core.js';
import type { HostedInit, HostedJob, HostedResult } from './hosted.js';
import { checkDims, dimsFrom, initialise, readCarried } from './init.js';
import type { TrainDims, TrainOptions } from './options.js';
import { familySpec, plainSpec, type TrainSpec } from './spec.js';
import { Trainer } from './trainer.js';

/**
 * A trainer for a ViT of the given dimensions (or of a checkpoint's, with `options.from`). With
 * `threads` > 1 the batch is split over a pool of workers on one shared memory (data parallel);
 * their gradients are summed in worker order, so a run is reproducible for a seed and thread count.
 * @example
 * const t = await createTrainer(dims, { lr: 1e-3, maxBatch: 64, threads: 2 });
 * const loss = await t.step(images, labels);   // images (B, C, H, W) normalized, labels (B)
 * const { accuracy } = await t.evaluate(testImages, testLabels);
 * await t.save('my-model');                    // loadModel('my-model') classifies with it
 * await t.dispose();
 */
export async function createTrainer(dims: TrainDims | null, options: TrainOptions = {}): Promise<Trainer> {
  // fine-tuning another family than the plain ViT: its classification form (null: the plain ViT)
  const family = options.from
    ? await familySpec(options.from, options.labels, options.newHead ?? false, dims?.imageSize)
    : null;
  let d = family?.dims ?? dims ?? (options.from ? await dimsFrom(options.from) : null);
  if (!d) throw new Error('vit-wasm: createTrainer needs dimensions or options.from');
  // a new head for your classes on a checkpoint: as many as the labels say (the checkpoint's count,
  // and a loaded model's config's, are the old head's)
  if (!family && options.from && options.newHead && Array.isArray(options.labels))
    d = { ...d, numLabels: options.labels.length };
  checkDims(d);
  if (!family) d = plainDims(d);
  const spec = family?.spec ?? plainSpec(d);
  if (options.labels !== undefined && (!Array.isArray(options.labels) || options.labels.length !== d.numLabels))
    throw new Error(
      `vit-wasm: createTrainer: ${Array.isArray(options.labels) ? `${options.labels.length} labels` : 'labels that are not an array'} for ${d.numLabels} classes` +
        (options.from && !options.newHead ? ' (to train a new head for other classes, pass newHead: true)' : ''),
    );
  const threads = checkThreads(options.threads ?? 1);
  const o: Options = {
    maxBatch: options.maxBatch ?? 64,
    lr: options.lr ?? 1e-3,
    weightDecay: options.weightDecay ?? 0.05,
    beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999,
    adamEps: options.adamEps ?? 1e-8,
    warmupSteps: options.warmupSteps ?? 0,
    totalSteps: options.totalSteps ?? 0,
    clipNorm: options.clipNorm ?? 1,
    labelSmoothing: checkSmoothing(options.labelSmoothing ?? 0),
    layerDecay: checkLayerDecay(options.layerDecay ?? 1),
    freeze: checkFreeze(options.freeze ?? 'none', d),
    seed: options.seed ?? 0,
    recompute: options.recompute === true,
    labels: options.labels ?? family?.labels ?? Array.from({ length: d.numLabels }, (_, i) => String(i)),
  };
  const shared = sharedMemoryUnavailable() === null,
    // a page's own thread must keep answering clicks while a model trains: there, even one thread is a worker
    isolate = options.isolate ?? typeof (globalThis as { document?: unknown }).document !== 'undefined';
  if (isolate && !shared) return hostedTrainer(d, o, options, spec);
  const pooled = shared && (threads > 1 || isolate);
  const W = pooled ? threads : 1,
    perWorker = Math.ceil(o.maxBatch / W);
  const { module } = await compileKernels('simd', pooled);
  const mem = new WasmMemory(pooled);
  const base = mem.end,
    layout = trainLayout(d, spec.params, perWorker, W, base, o.recompute);
  mem.alloc((layout.end - base) / 4);
  await initialise(mem.f32(layout.P, layout.n), layout.params, options.from, o.seed, options.newHead, spec, d);
  const carried = await readCarried(options.from, spec);
  if (!pooled) {
    const core = new TrainCore({
      k: instantiateKernels(module, mem.memory),
      layout,
      dims: d,
      options: o,
      memory: mem.memory,
    });
    core.repack(true);
    return new Trainer(d, o, { kind: 'inline', mem, core }, layout, spec, carried);
  }
  instantiateKernels(module, mem.memory); // writes the kernels' constants
  const pool = new WorkerPool<TrainWorkerInit, TrainJob, number>({
    workers: W,
    memory: mem.memory,
    kind: 'train-worker',
    workerUrl: options.workerUrl,
    init: (id) => ({
      module,
      memory: mem.memory,
      dims: d,
      params: spec.params,
      options: o,
      perWorker,
      workers: W,
      id,
      base,
    }),
  });
  await pool.started();
  new TrainCore({ k: instantiateKernels(module, mem.memory), layout, dims: d, options: o, memory: mem.memory }).repack(
    true,
  );
  return new Trainer(d, o, { kind: 'pool', mem, pool }, layout, spec, carried);
}

/** A one-thread trainer in a worker with its own memory (src/train/hosted.ts), where memory cannot be shared. */
async function hostedTrainer(d: TrainDims, o: Options, options: TrainOptions, spec: TrainSpec): Promise<Trainer> {
  const { module } = await compileKernels('simd', false);
  const layout = trainLayout(d, spec.params, o.maxBatch, 1, PAGE, o.recompute), // the parameters' offsets, as the worker lays them out
    params = new Float32Array(layout.n);
  await initialise(params, layout.params, options.from, o.seed, options.newHead, spec, d);
  const carried = await readCarried(options.from, spec);
  const pool = new WorkerPool<HostedInit, HostedJob, HostedResult>({
    workers: 1,
    // the pool's barrier words live here; the worker never sees this memory (its own is unshared)
    memory: new WebAssembly.Memory({ initial: 1 }),
    kind: 'train-worker',
    workerUrl: options.workerUrl,
    init: () => ({ hosted: true, module, dims: d, spec: spec.params, options: o, params }),
  });
  await pool.started();
  return new Trainer(d, o, { kind: 'hosted', pool, mirror: params }, layout, spec, carried);
}

/**
 * Dimensions the plain ViT's trainer computes: a plain ViT's arithmetic (a loaded ViTModel's config
 * says no classifier: training gives it one); another family's trains only from its checkpoint.
 */
function plainDims(d: TrainDims): TrainDims {
  const arch = d.arch ?? PLAIN_VIT;
  if (JSON.stringify({ ...arch, head: 'linear' }) === JSON.stringify(PLAIN_VIT)) return { ...d, arch: PLAIN_VIT };
  const why = untrainable(arch);
  throw new Error(
    why
      ? `vit-wasm: training a model with ${why} is not supported yet (its backward is not written)`
      : 'vit-wasm: createTrainer: this arch (a family other than the plain ViT) is trained from its checkpoint only: fine-tune it with options.from (a new head: newHead and labels)',
  );
}

/** `freeze` checked: 'none', 'all', or a count of blocks 0…numLayers. */
function checkFreeze(f: unknown, d: TrainDims): 'none' | 'all' | number {
  if (f === 'none' || f === 'all') return f;
  if (typeof f === 'number' && Number.isInteger(f) && f >= 0 && f <= d.numLayers) return f;
  throw new Error(
    `vit-wasm: freeze must be 'none', 'all' or a number of trained blocks 0…${d.numLayers}, got ${JSON.stringify(f)}`,
  );
}

/** `labelSmoothing` checked: a number in [0, 1). */
function checkSmoothing(e: unknown): number {
  if (typeof e !== 'number' || !(e >= 0 && e < 1))
    throw new Error(`vit-wasm: labelSmoothing must be a number in [0, 1), got ${JSON.stringify(e)}`);
  return e;
}

/** `layerDecay` checked: a number in (0, 1]. */
function checkLayerDecay(d: unknown): number {
  if (typeof d !== 'number' || !(d > 0 && d <= 1))
    throw new Error(`vit-wasm: layerDecay must be a number in (0, 1], got ${JSON.stringify(d)}`);
  return d;
}
