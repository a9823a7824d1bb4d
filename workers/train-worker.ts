/**
 * A data-parallel training worker: the kernels over the trainer's shared memory and the same
 * layout as every other worker (src/train/core.ts, trainLayout). One comlink call per step.
 */

import { exposeToParent } from '../src/platform/platform.js';
import { barrier } from '../src/runtime/barrier.js';
import { instantiateKernels } from '../src/runtime/kernels.js';
import type { PoolWorkerApi } from '../src/runtime/pool.js';
import { TrainCore, type TrainJob, type TrainWorkerInit, trainLayout } from '../src/train/core.js';

let core: TrainCore;
let id = 0;

const api: PoolWorkerApi<TrainWorkerInit, TrainJob, number> = {
  init(o) {
    id = o.id;
    const layout = trainLayout(o.dims, o.perWorker, o.workers, o.base);
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
    if (job.kind === 'forward') {
      if (job.counts[id]) core.forward(job.counts[id]);
      return 0;
    }
    const loss = core.forwardBackward(job.counts[id], job.total);
    core.update(job.t, job.lr);
    return loss;
  },
  fault() {
    throw new Error('vit-wasm: fault injection is for the inference worker');
  },
};

exposeToParent(api);
