/**
 * A pool worker: one instance of the kernels over the model's shared memory. comlink carries only
 * control (init, run one forward, fault injection for tests); inside `run` every worker executes
 * the same forward on its share of each op and meets the others at the shared-memory barrier.
 */

import type { Weights } from '../src/io/checkpoint.js';
import type { ViTConfig } from '../src/network/config.js';
import { Exec } from '../src/network/ops.js';
import { type Activations, vitForward } from '../src/network/vit.js';
import { barrier, controlWords } from '../src/runtime/barrier.js';
import { instantiateKernels, type KernelExports } from '../src/runtime/kernels.js';
import { exitThisWorker, exposeToParent } from '../src/runtime/platform.js';
import type { Fault, PoolWorkerApi } from '../src/runtime/pool.js';

export interface WorkerInit {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  id: number;
  workers: number;
  config: ViTConfig;
  weights: Weights;
}

let k: KernelExports, init: WorkerInit, sync: () => void, ctl: Int32Array;
let pendingFault: Exclude<Fault, 'kill'> | null = null;

const api: PoolWorkerApi<WorkerInit, Activations, void> = {
  init(o: WorkerInit): void {
    init = o;
    k = instantiateKernels(o.module, o.memory);
    sync = barrier(o.memory, o.workers);
    ctl = controlWords(o.memory);
  },
  run(a: Activations): void {
    const fault = pendingFault;
    pendingFault = null;
    if (fault === 'trap') k.gemm_4x8(0, 1, 0, 0, 2 ** 31, 1, 8, 8, 8, 0); // a store far past the memory: RuntimeError
    const exitAt = typeof fault === 'object' && fault ? fault.exitAtOp : -1;
    const onOp =
      exitAt >= 0
        ? (op: number) => {
            if (op === exitAt) exitThisWorker();
          }
        : null;
    vitForward(
      new Exec(k, init.memory, a.scratch[init.id], init.workers, ctl, sync, onOp),
      init.config,
      init.weights,
      a,
    );
  },
  /** For tests of the pool's fault handling: the next run traps in a kernel, or exits this worker at op N. */
  fault(kind: Exclude<Fault, 'kill'>): void {
    pendingFault = kind;
  },
};

exposeToParent(api);
