/**
 * JS owns the layout of the one shared wasm memory (the kernels have no allocator by design):
 *   [0, 64 KiB)        reserved: asc assumes the low 1 KiB unused; barrier and work counters from
 *                      1 KiB (src/runtime/barrier.ts), the kernels' math constants at 60 KiB (src/runtime/kernels.ts)
 *   weights            packed once at load, never moved
 *   activations        an arena planned per batch size and reused by every layer
 */
export const PAGE = 65536;
const RESERVED = PAGE;
const ALIGN = 64; // a cache line: v128 loads never straddle one

const align = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

export class WasmMemory {
  readonly memory: WebAssembly.Memory;
  private top = RESERVED;
  /** Released scratch data may lie in [top, dirtyTo): allocations there are zeroed (see scratch). */
  private dirtyTo = 0;

  /** `shared` false is the fallback for pages without SharedArrayBuffer (one thread, the single build). */
  constructor(
    readonly shared = true,
    maximumPages = 65536,
  ) {
    this.memory = new WebAssembly.Memory({ initial: 2, maximum: maximumPages, shared });
  }

  /** Current end of the allocated region. */
  get end(): number {
    return this.top;
  }

  /**
   * Reserves `floats` f32 slots (64-byte aligned) and grows the memory if needed. Memory never
   * allocated before, or last used by a scratch block, comes zeroed (weights' padding and a missing
   * bias rely on it); memory released by `reset` holds what was there.
   */
  alloc(floats: number): number {
    const ptr = this.top;
    this.top = align(ptr + floats * 4);
    this.ensure(this.top);
    if (this.dirtyTo > ptr) {
      new Uint8Array(this.memory.buffer, ptr, Math.min(this.top, this.dirtyTo) - ptr).fill(0);
      if (this.top >= this.dirtyTo) this.dirtyTo = 0;
    }
    return ptr;
  }

  /**
   * `floats` f32 slots above everything allocated, for the duration of `use(ptr)` (which writes
   * what it reads), then released. The allocations that later reuse them are zeroed there.
   */
  scratch<T>(floats: number, use: (ptr: number) => T): T {
    const ptr = this.top,
      end = align(ptr + floats * 4);
    this.ensure(end);
    this.dirtyTo = Math.max(this.dirtyTo, end);
    return use(ptr);
  }

  /** Releases everything allocated after `mark` (an earlier `end`). */
  reset(mark: number): void {
    this.top = mark;
  }

  private ensure(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes > have) {
      const pages = Math.ceil((bytes - have) / PAGE);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new Error(
          `vit-wasm: cannot grow wasm memory to ${bytes} bytes (${(e as Error).message}); a wasm32 memory holds at most 4 GiB`,
        );
      }
    }
  }

  /** A fresh view (views go stale when the memory grows). */
  f32(ptr: number, n: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, n);
  }
}
