/**
 * A one-thread trainer hosted in a worker that owns its memory: where SharedArrayBuffer is missing
 * (a page without COOP/COEP, WebKitGTK) training must still leave the page's thread free, so the
 * whole step runs in one worker with a private, unshared memory and the single build. The batch
 * goes in by message; the loss, the batch's logits and a copy of the parameters come back, so the
 * page-side Trainer answers `parameters()` and `files()` without a round trip.
 */
import { instantiateKernels } from '../runtime/kernels.js';
import { WasmMemory } from '../runtime/memory.js';
import { type Options, TrainCore, trainLayout } from './core.js';
import type { TrainDims } from './options.js';
import type { TrainParam } from './spec.js';

/** What the hosting worker receives once. */
export interface HostedInit {
  hosted: true;
  /** The single (unshared-memory) build of the kernels. */
  module: WebAssembly.Module;
  dims: TrainDims;
  options: Options;
  /** The parameter list (src/train/spec.ts). */
  spec: TrainParam[];
  /** The initial parameters, in the trainer's layout (src/train/core.ts, parameterList). */
  params: Float32Array;
}

/** One call into the hosting worker: x (B, C, H, W) normalized, y (B) class indices. */
export type HostedJob =
  | { kind: 'hosted-step'; x: Float32Array; y: Int32Array; B: number; t: number; lr: number }
  | { kind: 'hosted-forward'; x: Float32Array; B: number };

/** A step's loss sum (0 for a forward), the batch's logits (B, L), and after a step the parameters. */
export interface HostedResult {
  loss: number;
  logits: Float32Array;
  params: Float32Array | null;
}

/** The worker's side: its own memory, the layout of one worker, and a TrainCore over it. */
export class HostedTrainer {
  private readonly mem: WasmMemory;
  private readonly core: TrainCore;
  private readonly layout: ReturnType<typeof trainLayout>;

  constructor(private readonly init: HostedInit) {
    this.mem = new WasmMemory(false);
    const base = this.mem.end;
    this.layout = trainLayout(init.dims, init.spec, init.options.maxBatch, 1, base, init.options.recompute);
    this.mem.alloc((this.layout.end - base) / 4);
    if (init.params.length !== this.layout.n)
      throw new Error(`vit-wasm: internal: ${init.params.length} parameters sent, the layout has ${this.layout.n}`);
    this.mem.f32(this.layout.P, this.layout.n).set(init.params);
    this.core = new TrainCore({
      k: instantiateKernels(init.module, this.mem.memory),
      layout: this.layout,
      dims: init.dims,
      options: init.options,
      memory: this.mem.memory,
    });
    this.core.repack(true);
  }

  run(job: HostedJob): HostedResult {
    const w = this.layout.workers[0],
      L = this.init.dims.numLabels;
    if (job.kind === 'hosted-forward') {
      this.mem.f32(w.acts.pixels, job.x.length).set(job.x);
      this.core.forward(job.B);
      return { loss: 0, logits: this.mem.f32(w.acts.logits, job.B * L).slice(), params: null };
    }
    // a batch over maxBatch in micro-batches of maxBatch, gradients accumulated (Trainer.step)
    const max = this.init.options.maxBatch,
      per = job.x.length / job.B,
      logits = new Float32Array(job.B * L);
    let loss = 0;
    for (let s = 0; s < job.B; s += max) {
      const n = Math.min(max, job.B - s);
      this.mem.f32(w.acts.pixels, n * per).set(job.x.subarray(s * per, (s + n) * per));
      new Int32Array(this.mem.memory.buffer, w.bwd.labels, n).set(job.y.subarray(s, s + n));
      loss += this.core.forwardBackward(n, job.B, s === 0);
      logits.set(this.mem.f32(w.acts.logits, n * L), s * L); // before the update, as a pool step reads them
    }
    this.core.update(job.t, job.lr);
    return { loss, logits, params: this.mem.f32(this.layout.P, this.layout.n).slice() };
  }
}
