/**
 * The one list of kernels: their wasm export names, the scalar reference each SIMD kernel is tested
 * against, and how the module is compiled and instantiated. Dispatch (src/nn/ops.ts), the kernel tests
 * and the benchmarks all read this file; assembly/kernels.ts is its wasm-side twin.
 */

import { KERNELS_WASM } from '../../build/kernels-wasm.js';
import { enableRelaxedSimd } from '../platform/platform.js';
import type {
  AttentionBwd,
  AttentionHead,
  Colsum,
  EmbedTokens,
  EmbedTokensBwd,
  Gate,
  GeluBwd,
  Gemm,
  GemmI8,
  GemmStrided,
  Glu,
  Layernorm,
  LayernormBwd,
  PackPanels,
  Patchify,
  Ptr,
  QuantizeRows,
  SoftmaxRows,
  SoftmaxXent,
  Transpose,
  Unary,
} from './kernel-signatures.js';

/** GEMM epilogues; the numbers are the `epi` argument of assembly/gemm.ts. */
export const EPI = { STORE: 0, ADD: 1, GELU: 2 } as const;
export type Epilogue = (typeof EPI)[keyof typeof EPI];

/** The kernel module's exports: each SIMD kernel and its scalar f64 reference. */
export interface KernelExports {
  gemm_4x8: Gemm;
  gemm_ref: (
    a: Ptr,
    lda: number,
    w: Ptr,
    bias: Ptr,
    c: Ptr,
    ldc: number,
    M: number,
    N: number,
    K: number,
    epi: number,
  ) => void;
  layernorm: Layernorm;
  layernorm_ref: Layernorm;
  gelu: Unary;
  gelu_ref: Unary;
  act_gate: Gate;
  act_gate_ref: Gate;
  act_glu: Glu;
  act_glu_ref: Glu;
  act_relu: Unary;
  act_relu_ref: Unary;
  softmax_rows: SoftmaxRows;
  softmax_rows_ref: SoftmaxRows;
  attention_pack_kv: (qkv: Ptr, kv: Ptr, T: number, D: number, dh: number, h: number) => void;
  attention_head: AttentionHead;
  attention_head_ref: AttentionHead;
  patchify: Patchify;
  patchify_ref: Patchify;
  embed_tokens: EmbedTokens;
  embed_tokens_ref: EmbedTokens;
  // int8 weights (inference)
  quantize_rows_u7: QuantizeRows;
  quantize_rows_u7_ref: QuantizeRows;
  quantize_pack_weights_i8: (
    w: Ptr,
    rows: number,
    K: number,
    wq: Ptr,
    Kp: number,
    wsum: Ptr,
    sw: Ptr,
    row0: number,
  ) => void;
  gemm_i8_4x8: GemmI8;
  gemm_i8_ref: (
    aq: Ptr,
    Kp: number,
    sa: Ptr,
    za: Ptr,
    w: Ptr,
    sw: Ptr,
    bias: Ptr,
    c: Ptr,
    ldc: number,
    M: number,
    N: number,
    K: number,
    epi: number,
  ) => void;
  // backward (training)
  gemm_4x8_strided: GemmStrided;
  gemm_strided_ref: GemmStrided;
  colsum: Colsum;
  colsum_ref: Colsum;
  transpose: Transpose;
  pack_panels_8: PackPanels;
  layernorm_bwd: LayernormBwd;
  layernorm_bwd_ref: LayernormBwd;
  gelu_bwd: GeluBwd;
  gelu_bwd_ref: GeluBwd;
  attention_bwd: AttentionBwd;
  attention_bwd_ref: AttentionBwd;
  softmax_xent: SoftmaxXent;
  softmax_xent_ref: SoftmaxXent;
  embed_tokens_bwd: EmbedTokensBwd;
  embed_tokens_bwd_ref: EmbedTokensBwd;
}

/**
 * Every export of the kernel module (assembly/kernels.ts) and its number of parameters. The
 * compiler holds it to {@link KernelExports} (every name, each arity); tests/kernels.test.ts holds
 * it to the compiled wasm (the same names, each function's length). So the three lists — the wasm
 * exports, KernelExports and {@link KERNELS} (whose names are typed as KernelExports' keys) —
 * cannot drift apart.
 */
export const KERNEL_ARITY = {
  gemm_4x8: 10,
  gemm_ref: 10,
  gemm_4x8_strided: 11,
  gemm_strided_ref: 11,
  colsum: 4,
  colsum_ref: 4,
  transpose: 6,
  pack_panels_8: 5,
  quantize_rows_u7: 8,
  quantize_rows_u7_ref: 8,
  quantize_pack_weights_i8: 8,
  gemm_i8_4x8: 13,
  gemm_i8_ref: 13,
  layernorm: 9,
  layernorm_ref: 9,
  layernorm_bwd: 10,
  layernorm_bwd_ref: 10,
  gelu: 3,
  gelu_ref: 3,
  act_gate: 5,
  act_gate_ref: 5,
  act_glu: 6,
  act_glu_ref: 6,
  act_relu: 3,
  act_relu_ref: 3,
  gelu_bwd: 4,
  gelu_bwd_ref: 4,
  softmax_rows: 4,
  softmax_rows_ref: 4,
  attention_pack_kv: 6,
  attention_head: 13,
  attention_head_ref: 13,
  attention_bwd: 11,
  attention_bwd_ref: 11,
  softmax_xent: 5,
  softmax_xent_ref: 5,
  patchify: 7,
  patchify_ref: 7,
  embed_tokens: 7,
  embed_tokens_ref: 7,
  embed_tokens_bwd: 7,
  embed_tokens_bwd_ref: 7,
} as const satisfies { [K in keyof KernelExports]: Parameters<KernelExports[K]>['length'] };

/**
 * The kernel registry, one entry per op: the wasm export, the scalar f64 reference tests hold it to,
 * its register tile [rows, columns] (dispatch cuts work in multiples of it; the tests probe sizes
 * around it), and whether the relaxed build computes it with fused multiply-add.
 */
export const KERNELS = {
  gemm: { kernel: 'gemm_4x8', ref: 'gemm_ref', tile: [4, 8], fma: true },
  // int8 weights (loadModel's weights: 'int8'): u7 activations per row, exact i32 sums. Its relaxed
  // build uses the i8×i7 dot product, not FMA: both builds give the same bits.
  quantizeRows: { kernel: 'quantize_rows_u7', ref: 'quantize_rows_u7_ref', tile: [1, 16], fma: false },
  gemmI8: { kernel: 'gemm_i8_4x8', ref: 'gemm_i8_ref', tile: [4, 8], fma: false },
  // int8 weights quantized as they load: tested against quantizeRows + packWeightI8 (src/runtime/pack.ts)
  quantizeWeights: { kernel: 'quantize_pack_weights_i8', ref: null, tile: [1, 4], fma: false },
  layernorm: { kernel: 'layernorm', ref: 'layernorm_ref', tile: [1, 4], fma: false },
  gelu: { kernel: 'gelu', ref: 'gelu_ref', tile: [1, 4], fma: false },
  // the MLP's other activations (quick GELU, tanh GELU, SiLU as one sigmoid gate; ReLU)
  actGate: { kernel: 'act_gate', ref: 'act_gate_ref', tile: [1, 4], fma: false },
  actGlu: { kernel: 'act_glu', ref: 'act_glu_ref', tile: [1, 4], fma: false }, // a gated MLP's gate ⊙ its other half
  actRelu: { kernel: 'act_relu', ref: 'act_relu_ref', tile: [1, 4], fma: false },
  softmax: { kernel: 'softmax_rows', ref: 'softmax_rows_ref', tile: [1, 4], fma: false },
  attention: { kernel: 'attention_head', ref: 'attention_head_ref', tile: [4, 8], fma: true }, // 4 query rows × 8 keys
  attentionPackKv: { kernel: 'attention_pack_kv', ref: null, tile: [1, 8], fma: false }, // a copy: tested against a JS transpose
  patchify: { kernel: 'patchify', ref: 'patchify_ref', tile: [1, 4], fma: false },
  embedTokens: { kernel: 'embed_tokens', ref: 'embed_tokens_ref', tile: [1, 4], fma: false },
  // backward, for training: each beside its forward in assembly/
  gemmStrided: { kernel: 'gemm_4x8_strided', ref: 'gemm_strided_ref', tile: [4, 8], fma: true }, // dX = dY·W, dW = dYᵀ·X
  colsum: { kernel: 'colsum', ref: 'colsum_ref', tile: [1, 4], fma: false }, // bias gradients
  transpose: { kernel: 'transpose', ref: null, tile: [4, 4], fma: false }, // dYᵀ for dW: a copy, tested against JS
  packPanels: { kernel: 'pack_panels_8', ref: null, tile: [1, 8], fma: false }, // X's panels for dW: a copy, tested against JS
  layernormBwd: { kernel: 'layernorm_bwd', ref: 'layernorm_bwd_ref', tile: [1, 4], fma: false },
  geluBwd: { kernel: 'gelu_bwd', ref: 'gelu_bwd_ref', tile: [1, 4], fma: false },
  attentionBwd: { kernel: 'attention_bwd', ref: 'attention_bwd_ref', tile: [1, 4], fma: true },
  softmaxXent: { kernel: 'softmax_xent', ref: 'softmax_xent_ref', tile: [1, 4], fma: false },
  embedTokensBwd: { kernel: 'embed_tokens_bwd', ref: 'embed_tokens_bwd_ref', tile: [1, 4], fma: false },
} as const satisfies Record<
  string,
  { kernel: keyof KernelExports; ref: keyof KernelExports | null; tile: readonly [number, number]; fma: boolean }
>;

export type KernelOp = keyof typeof KERNELS;

export { attentionPanelFloats, GEMM_ROW_BLOCK_BYTES, gemmBlocks, gemmRowBlock } from './blocking.js';

/**
 * What a kernel is, as it runs in a build: op and tile, then its arithmetic — `simd` (128-bit
 * SIMD, multiply then add) or `fma` (relaxed SIMD's fused multiply-add). E.g. gemm_4x8_fma.
 */
export function kernelName(op: KernelOp, flavor: SimdFlavor): string {
  const k = KERNELS[op];
  return `${k.kernel}_${flavor === 'relaxed' && k.fma ? 'fma' : 'simd'}`;
}

/** Sizes that probe a tile of t: below, at, above and not a multiple of it (tests). */
export function tileEdges(t: number): number[] {
  return [...new Set([1, t - 1, t, t + 1, 2 * t + 1, 3 * t + 1].filter((n) => n >= 1))];
}

/** Which build of the kernels to run: fixed-width SIMD, or relaxed SIMD (FMA) where the engine has it. */
export type SimdFlavor = 'simd' | 'relaxed';

// A 51-byte module using f32x4.relaxed_madd: validates only where relaxed SIMD is enabled.
const RELAXED_PROBE = new Uint8Array([
  0, 97, 115, 109, 1, 0, 0, 0, 1, 6, 1, 96, 1, 125, 1, 125, 3, 2, 1, 0, 7, 5, 1, 1, 112, 0, 0, 10, 22, 1, 20, 1, 1, 123,
  32, 0, 253, 19, 34, 1, 32, 1, 32, 1, 253, 133, 2, 253, 31, 0, 11,
]);

/** True when this engine can compile the relaxed-SIMD build. */
export function hasRelaxedSimd(): boolean {
  return WebAssembly.validate(RELAXED_PROBE);
}

const compiled = new Map<string, Promise<WebAssembly.Module>>();

/**
 * Compiles (once per build) the kernel module. `auto` picks relaxed SIMD where the engine supports
 * it. `shared` false selects the one-thread build over an unshared memory (plain SIMD only).
 * The wasm comes from inside the library (build/kernels-wasm.ts), so there is no file to locate.
 */
export async function compileKernels(
  flavor: SimdFlavor | 'auto' = 'auto',
  shared = true,
): Promise<{ module: WebAssembly.Module; flavor: SimdFlavor }> {
  if (flavor !== 'simd' && shared && !hasRelaxedSimd()) enableRelaxedSimd();
  let f: SimdFlavor = flavor === 'auto' ? (hasRelaxedSimd() ? 'relaxed' : 'simd') : flavor;
  if (f === 'relaxed' && !hasRelaxedSimd()) {
    throw new Error('vit-wasm: relaxed SIMD was requested but this engine does not support it');
  }
  if (!shared) f = 'simd';
  const build = !shared ? 'single' : f === 'relaxed' ? 'relaxed' : 'release';
  let p = compiled.get(build);
  if (!p) {
    p = WebAssembly.compile(fromBase64(KERNELS_WASM[build])).catch((e: Error) => {
      compiled.delete(build);
      throw new Error(
        `vit-wasm: cannot compile the ${build} kernels (this engine needs WebAssembly SIMD: Chrome 91+, Firefox 89+, ` +
          `Safari 16.4+, Node 16.4+): ${e.message}`,
      );
    });
    compiled.set(build, p);
  }
  return { module: await p, flavor: f };
}

/** Base64 → bytes (the wasm builds the library carries). */
export function fromBase64(b64: string): Uint8Array<ArrayBuffer> {
  const s = atob(b64),
    out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Byte address of the kernels' math constants (assembly/simd.ts, CST), in the reserved low memory. */
export const CONSTANTS = 61440;
const u = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0];
/** exp (XNNPACK rr2_p5) and erf (Abramowitz–Stegun 7.1.26) constants, in assembly/simd.ts's slot order. */
const MATH_CONSTANTS = Float32Array.of(
  u(0x3fb8aa3b),
  u(0x4b40007f),
  u(0xbf317200),
  u(0xb5bfbe8e), // log2e, magic bias, -ln2 hi/lo
  u(0x3c07cfce),
  u(0x3d2b9d0d),
  u(0x3e2aad40),
  u(0x3efffee3),
  u(0x3f7ffffb), // exp polynomial c5..c1
  u(0xc2aeac4f), // exp denormal cutoff
  0.3275911,
  1.061405429,
  -1.453152027,
  1.421413741,
  -0.284496736,
  0.254829592, // erf p, a5..a1
  1,
  0.5,
  Math.SQRT1_2,
);

/**
 * Instantiates the kernels over `memory`. Cheap: call once per worker. Writes the math constants
 * (identical bytes every time, so instances may start while others run).
 */
export function instantiateKernels(module: WebAssembly.Module, memory: WebAssembly.Memory): KernelExports {
  new Float32Array(memory.buffer, CONSTANTS, MATH_CONSTANTS.length).set(MATH_CONSTANTS);
  const instance = new WebAssembly.Instance(module, { env: { memory } });
  return instance.exports as unknown as KernelExports;
}
