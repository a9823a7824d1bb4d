/**
 * How the kernels' work is cut for the memory hierarchy: the row blocks of a GEMM (the rows that
 * sweep each panel of W together) and the size of attention's per-head panels. Shared by dispatch
 * (src/nn/work.ts, src/nn/ops.ts, src/nn/plan.ts), the tests and bench/kernels.mjs.
 */

/** Floats of one (image, head)'s attention panels (attention_pack_kv): K_hᵀ (⌈T/8⌉·8 · dh), then V_h (⌊dh/8⌋·8 · T). */
export function attentionPanelFloats(T: number, dh: number): number {
  return Math.ceil(T / 8) * 8 * dh + Math.floor(dh / 8) * 8 * T;
}

/**
 * The most input a GEMM's row block may hold (rows × K floats): the rows that sweep each panel of
 * W together (src/nn/work.ts, gemmTiles). Larger blocks read W fewer times; this bound keeps a
 * block within one core's share of a last-level cache on common CPUs. Measured (bench/NOTES.md,
 * 2026-12-02): vit-b16's GEMMs 6–14% faster than with 8-row blocks; 1 and 4 MiB tie.
 */
export const GEMM_ROW_BLOCK_BYTES = 2 ** 20;

/** Rows of a GEMM's row block for K inputs: whole tiles of TM rows, within {@link GEMM_ROW_BLOCK_BYTES}. */
export function gemmRowBlock(K: number, TM: number): number {
  return Math.max(TM, Math.floor(GEMM_ROW_BLOCK_BYTES / (4 * K) / TM) * TM);
}

/**
 * How a GEMM of R rows × N outputs × K inputs is cut for `chunks` chunks at least (as the workers
 * need): rows into blocks of whole tiles whose input fits {@link GEMM_ROW_BLOCK_BYTES}, each block
 * into ranges of whole column panels. Returns [r0, r1, c0, c1] per chunk, row block by row block.
 */
export function gemmBlocks(
  R: number,
  N: number,
  K: number,
  chunks: number,
  [TM, TN]: readonly [number, number],
): [number, number, number, number][] {
  const blocks = Math.ceil(R / gemmRowBlock(K, TM)),
    rb = Math.ceil(R / blocks / TM) * TM; // balanced blocks, whole tiles
  const panels = Math.ceil(N / TN),
    perCol = Math.ceil(panels / Math.min(panels, Math.ceil(chunks / blocks))) * TN,
    cols = Math.ceil(N / perCol),
    out: [number, number, number, number][] = [];
  for (let c = 0; c < blocks * cols; c++) {
    const r0 = Math.floor(c / cols) * rb,
      c0 = (c % cols) * perCol;
    out.push([r0, Math.min(R, r0 + rb), c0, Math.min(N, c0 + perCol)]);
  }
  return out;
}
