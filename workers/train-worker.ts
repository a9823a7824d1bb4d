/**
 * A training worker. Data parallel: the kernels over the trainer's shared memory and the same
 * layout as every other worker (src/train/core.ts, trainLayout), one comlink call per step. Or
 * hosted (src/train/hosted.ts): the whole one-thread trainer in its own memory, so that training
 * leaves the page's thread free where memory cannot be shared.
 */

import * as Comlink from 'comlink';
import { exposeToParent } from '../src/platform/platform.js';
import { barrier } from '../src/runtime/barrier.js';
import { instantiateKernels } from '../src/runtime/kernels.js';
import type { PoolWorkerApi } from '../src/runtime/pool.js';
import { TrainCore, type TrainJob, type TrainWorkerInit, trainLayout } from '../src/train/core.js';
import { type HostedInit, type HostedJob, type HostedResult, HostedTrainer } from '../src/train/hosted.js';

let core: TrainCore;
let hosted: HostedTrainer | null = null;
let id = 0;

const api: PoolWorkerApi<TrainWorkerInit | HostedInit, TrainJob | HostedJob, number | HostedResult> = {
  init(o) {
    if ('hosted' in o) {
      hosted = new HostedTrainer(o);
      return;
    }
    id = o.id;
    const layout = trainLayout(o.dims, o.params, o.perWorker, o.workers, o.base, o.options.recompute);
    core = new TrainCore({
      k: instantiateKernels(o.module, o.memory),
      layout,
      dims: o.dims,
      options: o.options,
      memory: o.memory,
      id: o.id,
      workers: o.workers,
      sync: barrier(o.memory, o.workers),
    });
  },
  run(job) {
    if (job.kind === 'hosted-step' || job.kind === 'hosted-forward') {
      const r = hosted!.run(job);
      // the copies are moved, not cloned again
      return Comlink.transfer(r, r.params ? [r.logits.buffer, r.params.buffer] : [r.logits.buffer]);
    }
    if (job.kind === 'forward') {
      if (job.counts[id]) core.forward(job.counts[id]);
      return 0;
    }
    const loss = core.forwardBackward(job.counts[id], job.total, job.first);
    if (job.last) core.update(job.t, job.lr);
    return loss;
  },
  fault() {
    throw new Error('vit-wasm: fault injection is for the inference worker');
  },
};

exposeToParent(api);
