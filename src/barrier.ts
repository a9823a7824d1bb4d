/**
 * The barrier workers meet at between ops, in the reserved low memory of the shared wasm memory:
 * three i32 words [arrived, generation, abort]. Waiters spin briefly (an op on a 2-core machine ends
 * within microseconds of its peers) and then sleep in Atomics.wait. Setting `abort` wakes everyone
 * and makes every waiter throw, so a dead or trapped worker never leaves the others hanging.
 */
export const CTL = 1024; // byte address; asc's -O3 output assumes the low 1 KiB is unused
const ARRIVED = CTL / 4, GENERATION = ARRIVED + 1, ABORT = ARRIVED + 2;
const SPINS = 20000;

export class AbortedError extends Error {
  constructor() { super('vit-wasm: forward aborted because another worker failed'); }
}

/** Returns the barrier function for one worker of `n`. */
export function barrier(memory: WebAssembly.Memory, n: number): () => void {
  const i32 = new Int32Array(memory.buffer, 0, CTL / 4 + 16);
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

/** Wakes every waiter with an abort (from any thread, including the main thread). */
export function abortBarrier(memory: WebAssembly.Memory): void {
  const i32 = new Int32Array(memory.buffer, 0, CTL / 4 + 16);
  Atomics.store(i32, ABORT, 1);
  Atomics.add(i32, GENERATION, 1);
  Atomics.notify(i32, GENERATION);
}

/** Clears the barrier for a fresh set of workers. */
export function resetBarrier(memory: WebAssembly.Memory): void {
  const i32 = new Int32Array(memory.buffer, 0, CTL / 4 + 16);
  Atomics.store(i32, ARRIVED, 0);
  Atomics.store(i32, ABORT, 0);
}
