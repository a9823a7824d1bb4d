/**
 * The inference pool worker's entry: one instance of the kernels over the model's shared memory
 * (src/nn/infer.ts). comlink carries only control (init, run one forward, fault injection for
 * tests); inside `run` every worker executes the same forward on its share of each op and meets
 * the others at the shared-memory barrier.
 */
import { inferenceWorker } from '../src/nn/infer.js';
import { exitThisWorker, exposeToParent } from '../src/platform/platform.js';

exposeToParent(inferenceWorker(exitThisWorker));
