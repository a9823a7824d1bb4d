/**
 * Synchronisation between pool workers, in the reserved low memory of the shared wasm memory:
 *   [arrived, generation, abort]   the barrier that ends every op
 *   counters[op]                   work tickets: each op's chunks are claimed with Atomics.add, so a
 *                                  worker slowed down (a busy core) simply claims fewer chunks
 * Waiters spin briefly (peers finish an op within microseconds of each other) and then sleep in
 * Atomics.wait. Setting `abort` wakes everyone and makes every waiter throw, so a dead or trapped
 * worker never leaves the others hanging.
 */
export const CTL = 1024; // byte address; asc's -O3 output assumes the low 1 KiB is unused
const ARRIVED = CTL / 4,
  GENERATION = ARRIVED + 1,
  ABORT = ARRIVED + 2;
/** First i32 index of the per-op ticket counters, and how many ops a forward may have (they end below 60 KiB, where the kernels' constants are). */
export const COUNTERS = ARRIVED + 16,
  MAX_OPS = 8192;
const SPINS = 200000;

export class AbortedError extends Error {
  constructor() {
    super('vit-wasm: forward aborted because another worker failed');
  }
}

/** The control words as an Int32Array (the region never moves when the memory grows). */
export function controlWords(memory: WebAssembly.Memory): Int32Array {
  return new Int32Array(memory.buffer, 0, COUNTERS + MAX_OPS);
}

/** Returns the barrier function for one worker of `n`. */
export function barrier(memory: WebAssembly.Memory, n: number): () => void {
  const i32 = controlWords(memory);
  return () => {
    const gen = Atomics.load(i32, GENERATION);
    if (Atomics.load(i32, ABORT)) throw new AbortedError();
    if (Atomics.add(i32, ARRIVED, 1) === n - 1) {
      Atomics.store(i32, ARRIVED, 0);
      Atomics.add(i32, GENERATION, 1);
      Atomics.notify(i32, GENERATION);
      return;
    }
    let spins = 0;
    while (Atomics.load(i32, GENERATION) === gen) {
      if (++spins > SPINS) Atomics.wait(i32, GENERATION, gen, 100);
    }
    if (Atomics.load(i32, ABORT)) throw new AbortedError();
  };
}

/** Zeroes the op counters before a forward (main thread, while no worker runs). */
export function resetCounters(memory: WebAssembly.Memory): void {
  controlWords(memory).fill(0, COUNTERS);
}

/** Wakes every waiter with an abort (from any thread, including the main thread). */
export function abortBarrier(memory: WebAssembly.Memory): void {
  const i32 = controlWords(memory);
  Atomics.store(i32, ABORT, 1);
  Atomics.add(i32, GENERATION, 1);
  Atomics.notify(i32, GENERATION);
}

/** Clears the barrier for a fresh set of workers. */
export function resetBarrier(memory: WebAssembly.Memory): void {
  const i32 = controlWords(memory);
  Atomics.store(i32, ARRIVED, 0);
  Atomics.store(i32, ABORT, 0);
}
