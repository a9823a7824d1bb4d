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
import { startWorker, type WorkerHandle, type WorkerKind } from '../platform/platform.js';
import { AbortedError, abortBarrier, resetBarrier, resetCounters } from './barrier.js';

/** What a pool worker script exposes through comlink. */
export interface PoolWorkerApi<Init, Job, Result> {
  init(o: Init): void;
  /** One parallel region on every worker, or (`solo`) on worker 0 alone, the others not called. */
  run(job: Job, solo?: boolean): Result;
  /** Optional: measured on every worker at once at load (see WorkerPool.all). */
  calibrate?(scratch: number): unknown;
  /** Optional: what calibration decided, the same for every worker. */
  tune?(value: number): void;
  /** For tests: the next run traps in a kernel, or exits the worker at op N. */
  fault(kind: Exclude<Fault, 'kill'>): void;
}

interface Slot<Api> {
  api: Comlink.Remote<Api>;
  handle: WorkerHandle;
  /** Why the worker exited or failed, once it has: it will never answer again. */
  death: Error | null;
  /** Calls awaiting this worker's answer. While there are any, it keeps Node alive (see {@link hold}). */
  waiting: number;
  /** Rejecters of those calls: its death rejects them, since a dead worker never answers. */
  abandon: Set<(e: Error) => void>;
}

/**
 * Every call to a worker (init, run, fault) goes through here. The call rejects when the worker
 * dies (comlink never rejects it), with the reason. The worker keeps Node alive while someone
 * awaits its answer, and not when idle (so a process that forgot dispose() still exits). Counted,
 * because a run and a test's fault call can await the same worker at once: the first to finish must
 * not unref it under the other, or Node would exit with that call pending.
 */
function hold<T>(slot: Slot<unknown>, call: () => Promise<T>): Promise<T> {
  if (slot.death) return Promise.reject(slot.death); // its calls have been rejected; so is this one
  if (slot.waiting++ === 0) slot.handle.ref(true);
  let abandon!: (e: Error) => void;
  return new Promise<T>((resolve, reject) => {
    abandon = reject;
    slot.abandon.add(reject);
    call().then(resolve, reject);
  }).finally(() => {
    slot.abandon.delete(abandon);
    if (--slot.waiting === 0) slot.handle.ref(false);
  });
}

/** Most workers a pool may have: past the cores a worker only costs memory (~8 MB) and start-up time. */
export const MAX_WORKERS = 64;

/** `threads` checked: a positive integer, at most {@link MAX_WORKERS}. */
export function checkThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1)
    throw new Error(
      `vit-wasm: threads must be a positive integer, got ${typeof threads === 'string' ? JSON.stringify(threads) : String(threads)}`,
    );
  if (threads > MAX_WORKERS) {
    throw new Error(
      `vit-wasm: threads ${threads} is over the limit of ${MAX_WORKERS} workers (each costs memory and start-up time, and more than the cores only slows the work down)`,
    );
  }
  return threads;
}

/** A deterministic fault, for tests: kill a worker now, make it trap in its next run, or exit at op N of its next run. */
export type Fault = 'kill' | 'trap' | { exitAtOp: number };

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
  /** Resolves when the workers are up: after the first start, and after every replacement. */
  private ready: Promise<void>;
  /** The runs, one after another: a run's turn starts when the previous one has ended. */
  private queue: Promise<unknown> = Promise.resolve();
  /** Bumped on every respawn so the exit events of terminated workers are ignored. */
  private generation = 0;
  private running = false;
  private disposed = false;
  /** Which jobs are too small to share: those run on worker 0 alone (see {@link soloWhen}). */
  private solo: ((job: Job) => boolean) | null = null;

  constructor(private readonly opts: PoolOptions<Init>) {
    this.ready = this.spawn();
  }

  get size(): number {
    return this.opts.workers;
  }

  /** Resolves when every worker is up (rejects if one failed to start). */
  started(): Promise<void> {
    return this.ready;
  }

  /**
   * Resolves once no worker of an earlier, failed run can still write to the shared memory: the
   * replacement after a failure waits for every call of that run to settle (its live workers
   * unwind from the aborted barrier). A caller that writes a run's inputs into the shared memory
   * before calling {@link run} must wait for this first. Never rejects.
   */
  quiet(): Promise<void> {
    return this.ready.then(
      () => {},
      () => {},
    );
  }

  private spawnOne(id: number): Promise<Slot<PoolWorkerApi<Init, Job, Result>>> {
    type Api = PoolWorkerApi<Init, Job, Result>;
    const generation = this.generation;
    const onDeath = (why: string) => {
      // a worker of an earlier generation was terminated on purpose; only its callers need telling
      const current = generation === this.generation && !this.disposed;
      const idle = !this.running && this.slots.concat(slot).every((s) => s.waiting === 0);
      const err = new Error(
        `vit-wasm: worker ${id} ${why}${current ? '' : ' before it answered (it had been replaced after a fault)'}`,
      );
      slot.death = err;
      for (const reject of slot.abandon) reject(err);
      if (!current) return;
      // An idle worker that died is replaced now, before the next run is dispatched.
      if (idle) this.replaceAfter(this.ready.catch(() => {}));
    };
    const handle = startWorker(this.opts.kind, this.opts.workerUrl, onDeath);
    const slot: Slot<Api> = {
      api: Comlink.wrap<Api>(handle.endpoint),
      handle,
      death: null,
      waiting: 0,
      abandon: new Set(),
    };
    return hold(slot, () => slot.api.init(this.opts.init(id) as never) as Promise<void>).then(
      () => slot,
      (e) => {
        slot.handle.terminate();
        throw e;
      },
    );
  }

  private async spawn(): Promise<void> {
    resetBarrier(this.opts.memory);
    const made = await Promise.allSettled(Array.from({ length: this.opts.workers }, (_, i) => this.spawnOne(i)));
    this.slots = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const bad = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (bad) throw bad.reason;
  }

  /** Replaces every worker once `settled` resolves; runs wait for it. */
  private replaceAfter(settled: Promise<unknown>): void {
    // Asked for by every death and failure, but done once per generation: a second request made
    // before the first replacement ran (two deaths in one crash) must not terminate the new workers,
    // perhaps mid-run, and it keeps the first one's outcome (a failed start stays an error).
    const gen = this.generation,
      prior = this.ready;
    this.ready = settled.then(() => {
      if (this.disposed) return;
      if (this.generation !== gen) return prior;
      this.generation++;
      for (const s of this.slots) s.handle.terminate();
      this.slots = [];
      return this.spawn();
    });
  }

  /**
   * Runs one parallel region (a forward, a training step) on every worker. Runs never overlap: each
   * waits for its turn, so callers need no locking of their own. `job` may be a function: it is
   * called at the start of the turn (once the pool is quiet: {@link quiet}), the place to write the job's inputs into shared memory, and
   * `finish` at its end, the place to read the outputs, so no other run can come between.
   * @returns `finish(results)`, or the workers' results in worker order
   */
  run<T = Result[]>(job: Job | (() => Job), finish?: (results: Result[]) => T): Promise<T> {
    const turn = this.queue.then(async () => {
      // the job writes its inputs into the shared memory: not while a failed run's workers unwind
      await this.quiet();
      const results = await this.runNow(typeof job === 'function' ? (job as () => Job)() : job);
      return finish ? finish(results) : (results as T);
    });
    this.queue = turn.catch(() => {});
    return turn;
  }

  /**
   * Jobs for which `small` holds run on worker 0 alone (its run gets solo = true and computes
   * every op itself), the others not even called: below a size, calling the second worker costs
   * more than it brings. Results do not depend on it (an op's chunks give the same bits whoever
   * runs them).
   */
  soloWhen(small: (job: Job) => boolean): void {
    this.solo = small;
  }

  private async runNow(job: Job): Promise<Result[]> {
    const solo = this.solo?.(job) ?? false;
    return this.onEvery((s) => s.api.run(job as never, solo) as Promise<Result>, solo ? 1 : undefined);
  }

  /**
   * Calls `method` (a worker's calibrate or tune) with arg(id) on every worker at once, in the
   * runs' turn: for what needs all of them together (timing the barrier). Fails, and replaces the
   * pool, as a run does.
   */
  all<T>(method: 'calibrate' | 'tune', arg: (id: number) => number): Promise<T[]> {
    const turn = this.queue.then(async () => {
      await this.quiet();
      return this.onEvery((s, id) => {
        const fn = (s.api as unknown as Record<typeof method, ((x: number) => Promise<T>) | undefined>)[method];
        if (!fn) throw new Error(`vit-wasm: internal: this pool's workers have no ${method}`);
        return fn(arg(id));
      });
    });
    this.queue = turn.catch(() => {});
    return turn;
  }

  private async onEvery<T>(
    call: (slot: Slot<PoolWorkerApi<Init, Job, Result>>, id: number) => Promise<T>,
    first = Number.POSITIVE_INFINITY,
  ): Promise<T[]> {
    if (this.disposed) throw new Error('vit-wasm: this model has been disposed');
    // A start or replacement that failed is tried once more (its error is this run's if it fails
    // again); so is a pool with a worker that died since. One replacement at a time: each is awaited.
    try {
      await this.ready;
    } catch {
      this.replaceAfter(Promise.resolve());
      await this.ready;
    }
    if (this.slots.some((s) => s.death)) {
      this.replaceAfter(Promise.resolve());
      await this.ready;
    }
    this.running = true;
    resetCounters(this.opts.memory);
    const slots = this.slots.slice(0, first),
      calls = slots.map((s, id) => hold(s, () => call(s, id)));
    try {
      return await Promise.all(calls);
    } catch (e) {
      // Wake the live workers out of the barrier and replace the pool once they have unwound. Each
      // is held until its call settles, so Node waits for them; a dead worker never answers.
      abortBarrier(this.opts.memory);
      // each call settles: with the answer, or (hold) with the worker's death
      this.replaceAfter(Promise.allSettled(calls));
      const err = e as Error;
      throw err instanceof AbortedError || /^vit-wasm/.test(err.message)
        ? err
        : new Error(`vit-wasm: a kernel failed in a worker: ${err.message}`);
    } finally {
      this.running = false;
    }
  }

  /** For tests: a deterministic fault in worker `id` (see {@link Fault}). Resolves once it is in place (a killed worker is gone). */
  async fault(id: number, kind: Fault): Promise<void> {
    await this.ready;
    if (!Number.isInteger(id) || id < 0 || id >= this.slots.length)
      throw new Error(`vit-wasm: no worker ${id} (the pool has ${this.slots.length})`);
    const slot = this.slots[id];
    if (kind === 'kill') {
      await slot.handle.kill();
      return;
    }
    await hold(slot, () => slot.api.fault(kind) as Promise<void>);
  }

  /** Stops the workers once the runs already queued have ended. */
  async dispose(): Promise<void> {
    await this.queue;
    this.disposed = true;
    await this.ready.catch(() => {});
    for (const s of this.slots) {
      try {
        s.api[Comlink.releaseProxy]();
      } catch {
        /* the worker may already be gone */
      }
      s.handle.terminate();
    }
    this.slots = [];
  }
}
