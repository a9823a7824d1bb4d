/**
 * JS owns the layout of the one shared wasm memory (the kernels have no allocator by design):
 *   [0, 64 KiB)        reserved: asc assumes the low 1 KiB unused; barrier and work counters from
 *                      1 KiB (src/barrier.ts), the kernels' math constants at 60 KiB (src/kernels.ts)
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

  /** Reserves `floats` f32 slots (64-byte aligned) and grows the memory if needed. */
  alloc(floats: number): number {
    const ptr = this.top;
    this.top = align(ptr + floats * 4);
    this.ensure(this.top);
    return ptr;
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
