/**
 * How a forward op's work is shared: cut into chunks that the pool's workers claim from a shared
 * counter (alone, every chunk runs here), each op ended by the pool's barrier. A chunk's arithmetic
 * never depends on who runs it, so results are bit-identical for every worker count. The ops
 * themselves (src/nn/ops.ts, Exec) build on this.
 */
import { COUNTERS, MAX_OPS } from '../runtime/barrier.js';
import { gemmBlocks, type KernelExports } from '../runtime/kernels.js';

/** Chunks per worker per op: enough to even out a worker that falls behind, few enough to be cheap. */
export const CHUNKS_PER_WORKER = 4;

/**
 * Rough cost of one element of the non-GEMM ops, in GEMM flop-equivalents (a GEMM core does ~40
 * flops per ns, a JS loop ~1 element per ns, a SIMD elementwise kernel several): only their order
 * matters, to tell an op worth splitting from one that is not ({@link Work.each}).
 */
export const COST = { js: 40, kernel: 10, attention: 1.5 } as const;

/** What an {@link Exec} runs on. */
export interface ExecOptions {
  k: KernelExports;
  memory: WebAssembly.Memory;
  /** This worker's scratch: four rows of attention scores (4 × T8 floats, T8 = T rounded up to 8). */
  scratch: number;
  /** In a pool: the workers, the shared control words, the barrier. Alone (absent): every chunk runs here. */
  pool?: {
    workers: number;
    /** This worker's index: worker 0 runs the ops too small to split. */
    id: number;
    /**
     * Ops whose estimated cost (GEMM flop-equivalents, see {@link Work.each}) is below this run on
     * worker 0 alone, with no barrier after them: splitting would save less than a synchronization
     * costs (measured at load: src/model/load.ts, tuneThreads). The same on every worker. 0: none.
     */
    serialBelow: number;
    ctl: Int32Array;
    sync: () => void;
    /** Called with each op's number before its work starts (fault tests: exit at op N). */
    onOp?: (op: number) => void;
  };
}

/** The scheduling half of {@link Exec}: chunks, their claiming, and the end of each op. */
export class Work {
  private op = 0;
  /** Whether worker 0 has run ops alone since the last barrier. */
  private behind = false;
  readonly k: KernelExports;
  readonly scratch: number;
  readonly workers: number;
  protected readonly memory: WebAssembly.Memory;
  protected readonly pool: ExecOptions['pool'];

  constructor(o: ExecOptions) {
    this.k = o.k;
    this.memory = o.memory;
    this.scratch = o.scratch;
    this.pool = o.pool;
    this.workers = o.pool?.workers ?? 1;
  }

  /**
   * Runs body(c) for every chunk c < n this worker claims, then meets the others. `cost` estimates
   * the op's work in GEMM flop-equivalents (2 per multiply-add of a GEMM; other ops scaled by how
   * much slower they run per element); an op cheaper than the pool's `serialBelow` runs whole on
   * worker 0 while the others go on, and the barrier is paid once, before the next op that is split.
   */
  protected each(n: number, body: (c: number) => void, cost = Number.POSITIVE_INFINITY): void {
    const pool = this.pool;
    if (!pool) {
      for (let c = 0; c < n; c++) body(c);
      return;
    }
    if (this.op >= MAX_OPS) throw new Error(`vit-wasm: a forward has more than ${MAX_OPS} ops`);
    pool.onOp?.(this.op);
    const slot = COUNTERS + this.op++;
    if (pool.workers === 1 || cost < pool.serialBelow) {
      if (pool.id === 0) for (let c = 0; c < n; c++) body(c);
      this.behind = true;
      return;
    }
    // worker 0's serial ops wrote what this op reads: meet once it is done
    if (this.behind) pool.sync();
    this.behind = false;
    for (let c = Atomics.add(pool.ctl, slot, 1); c < n; c = Atomics.add(pool.ctl, slot, 1)) body(c);
    pool.sync();
  }

  /** Units of work per chunk, for `units` units. */
  protected per(units: number): number {
    if (!this.pool) return Math.max(1, units); // alone (training workers, the one-thread fallback): one chunk, one kernel call
    return Math.max(1, Math.floor(units / (CHUNKS_PER_WORKER * this.workers)));
  }

  /** A fresh f32 view (views go stale when the memory grows). */
  protected f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }

  /** Elementwise over n floats in chunks: body(i0, i1); `perElement` its cost per float (see {@link each}). */
  protected elementwise(n: number, body: (i0: number, i1: number) => void, perElement: number = COST.js): void {
    const per = 64 * this.per(Math.ceil(n / 64));
    this.each(Math.ceil(n / per), (c) => body(c * per, Math.min(n, (c + 1) * per)), n * perElement);
  }

  /**
   * A GEMM's R × N outputs (K inputs) in chunks of whole tiles: body(r0, r1, c0, c1) for each chunk
   * this worker claims, cut by {@link gemmBlocks}: row blocks sized for the cache, each in ranges of
   * column panels, as many as the workers need. The kernel sweeps each of its panels with all of its
   * rows, so W is read from memory once per row block and the block's rows stay in cache.
   */
  protected gemmTiles(
    R: number,
    N: number,
    K: number,
    tile: readonly [number, number],
    body: (r0: number, r1: number, c0: number, c1: number) => void,
  ): void {
    const blocks = gemmBlocks(R, N, K, this.pool ? CHUNKS_PER_WORKER * this.workers : 1, tile);
    this.each(blocks.length, (c) => body(...blocks[c]), 2 * R * N * K);
  }

  /** Whether an int8 GEMM of R rows is cut into row blocks (else column panels, its rows quantized first). */
  protected byRows(R: number, TM: number): boolean {
    return R >= TM * this.workers || this.workers === 1;
  }

  /** n rows (or columns) in chunks of whole t-wide tiles: body(i0, i1) for each chunk this worker claims. */
  protected chunks(n: number, t: number, body: (i0: number, i1: number) => void, cost?: number): void {
    const per = t * this.per(Math.ceil(n / t));
    this.each(Math.ceil(n / per), (c) => body(c * per, Math.min(n, (c + 1) * per)), cost);
  }
}
