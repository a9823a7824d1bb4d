/**
 * The worker pool: N workers (Node worker_threads or Web Workers) driven through comlink, each
 * running the kernels over the ONE shared memory that holds the weights. A forward is one comlink
 * call per worker; the ops inside it synchronise at a shared-memory barrier.
 *
 * comlink never rejects a call whose worker died, so the pool watches the workers itself: a worker
 * that exits or errors, or a kernel that traps, rejects the forward in flight at once, wakes the
 * other workers out of the barrier, and the whole pool is replaced before the next forward.
 */
import * as Comlink from 'comlink';
import { abortBarrier, AbortedError, resetBarrier, resetCounters } from './barrier.js';
import { startWorker, type WorkerHandle, type WorkerKind } from './platform.js';

/** What a pool worker script exposes through comlink. */
export interface PoolWorkerApi<Init, Job, Result> {
  init(o: Init): void;
  run(job: Job): Result;
  /** For tests: the next run traps in a kernel. */
  fault(): void;
}

interface Slot<Api> {
  api: Comlink.Remote<Api>;
  handle: WorkerHandle;
}

export interface PoolOptions<Init> {
  workers: number;
  memory: WebAssembly.Memory;
  /** What worker `id` receives in `init`. */
  init: (id: number) => Init;
  /** Which worker script to run, and where it is served when not the built-in one (browsers: a strict CSP). */
  kind: WorkerKind;
  workerUrl?: string | URL;
}

/**
 * `Init` is what each worker's `init` receives, `Job` what every worker's `run` receives for one
 * parallel region, `Result` what each returns.
 */
export class WorkerPool<Init = unknown, Job = unknown, Result = void> {
  private slots: Slot<PoolWorkerApi<Init, Job, Result>>[] = [];
  private ready: Promise<void>;
  /** Rejecters of the comlink calls in flight: a dying worker rejects them all. */
  private readonly inFlight = new Set<(e: Error) => void>();
  /** Bumped on every respawn so the exit events of terminated workers are ignored. */
  private generation = 0;
  private broken = false;
  private disposed = false;

  constructor(private readonly opts: PoolOptions<Init>) {
    this.ready = this.spawn();
  }

  get size(): number { return this.opts.workers; }

  /** Resolves when every worker is up (rejects if one failed to start). */
  started(): Promise<void> { return this.ready; }

  private async spawnOne(id: number): Promise<Slot<PoolWorkerApi<Init, Job, Result>>> {
    type Api = PoolWorkerApi<Init, Job, Result>;
    const generation = this.generation;
    const onDeath = (why: string) => {
      if (generation !== this.generation || this.disposed) return;
      this.broken = true;
      const err = new Error(`vit-wasm: worker ${id} ${why}`);
      for (const reject of this.inFlight) reject(err);
    };
    const handle = startWorker(this.opts.kind, this.opts.workerUrl, onDeath);
    const slot: Slot<Api> = { api: Comlink.wrap<Api>(handle.endpoint), handle };
    try {
      await this.guard(slot.api.init(this.opts.init(id) as never) as Promise<void>);
    } catch (e) {
      slot.handle.terminate();
      throw e;
    }
    slot.handle.ref(false);
    return slot;
  }

  private async spawn(): Promise<void> {
    resetBarrier(this.opts.memory);
    this.broken = false;
    const made = await Promise.allSettled(Array.from({ length: this.opts.workers }, (_, i) => this.spawnOne(i)));
    this.slots = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const bad = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) {
      this.broken = true;
      throw bad.reason;
    }
  }

  /** A comlink call that also rejects when any worker dies. */
  private guard<T>(call: Promise<T>): Promise<T> {
    let reject!: (e: Error) => void;
    const p = new Promise<T>((res, rej) => { reject = rej; call.then(res, rej); });
    this.inFlight.add(reject);
    return p.finally(() => this.inFlight.delete(reject));
  }

  /** Runs one parallel region (a forward, a training step) on every worker; their results in worker order. */
  async run(job: Job): Promise<Result[]> {
    if (this.disposed) throw new Error('vit-wasm: this model has been disposed');
    if (this.broken) this.ready = this.ready.catch(() => {}).then(() => this.restart());
    await this.ready;
    for (const s of this.slots) s.handle.ref(true);
    resetCounters(this.opts.memory);
    const calls = this.slots.map((s) => s.api.run(job as never) as Promise<Result>);
    try {
      return await this.guard(Promise.all(calls));
    } catch (e) {
      // Wake the live workers out of the barrier; once they have unwound (or after 1 s), replace the pool.
      abortBarrier(this.opts.memory);
      this.broken = false;
      const settled = Promise.race([Promise.allSettled(calls), new Promise((r) => {
        const t = setTimeout(r, 1000) as unknown as { unref?: () => void };
        t.unref?.(); // a Node process may exit meanwhile
      })]);
      this.ready = settled.then(() => this.restart());
      const err = e as Error;
      throw err instanceof AbortedError || /^vit-wasm/.test(err.message) ? err : new Error(`vit-wasm: a kernel failed in a worker: ${err.message}`);
    } finally {
      for (const s of this.slots) s.handle.ref(false);
    }
  }

  private async restart(): Promise<void> {
    this.generation++;
    for (const s of this.slots) s.handle.terminate();
    this.slots = [];
    await this.spawn();
  }

  /** For tests: kill worker `id` now (even mid-forward), or make it trap in its next forward. */
  async fault(id: number, kind: 'kill' | 'trap'): Promise<void> {
    if (kind === 'kill') { this.slots[id].handle.kill(); return; }
    await this.ready;
    await (this.slots[id].api.fault() as Promise<void>);
  }

  async dispose(): Promise<void> {
    this.disposed = true;
    await this.ready.catch(() => {});
    for (const s of this.slots) {
      try { s.api[Comlink.releaseProxy](); } catch { /* the worker may already be gone */ }
      s.handle.terminate();
    }
    this.slots = [];
  }
}
