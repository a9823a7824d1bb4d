/**
 * Each kernel op's signature, shared by its SIMD kernel and its scalar reference (pointers are byte
 * addresses into the one shared memory): the types src/runtime/kernels.ts's KernelExports is made of.
 */

export type Ptr = number;
export type Gemm = (
  a: Ptr,
  lda: number,
  wp: Ptr,
  bias: Ptr,
  c: Ptr,
  ldc: number,
  M: number,
  N: number,
  K: number,
  epi: number,
) => void;
export type Layernorm = (
  x: Ptr,
  ldx: number,
  y: Ptr,
  ldy: number,
  gamma: Ptr,
  beta: Ptr,
  rows: number,
  D: number,
  eps: number,
) => void;
export type Unary = (x: Ptr, y: Ptr, n: number) => void;
/** y = x·σ(a·(x + c·x³)) (assembly/activation.ts). */
export type Gate = (x: Ptr, y: Ptr, n: number, a: number, c: number) => void;
/** y (rows, M) = gate(x[:, :M]) ⊙ x[:, M:] for x (rows, 2M): a gated linear unit (SwiGLU) (assembly/activation.ts). */
export type Glu = (x: Ptr, y: Ptr, rows: number, M: number, a: number, c: number) => void;
export type SoftmaxRows = (x: Ptr, ld: number, rows: number, n: number) => void;
export type AttentionHead = (
  qkv: Ptr,
  kv: Ptr,
  out: Ptr,
  scratch: Ptr,
  probs: Ptr,
  bias: Ptr,
  T: number,
  D: number,
  dh: number,
  h: number,
  scale: number,
  i0: number,
  i1: number,
) => void;
export type Patchify = (img: Ptr, patches: Ptr, B: number, C: number, H: number, W: number, p: number) => void;
export type EmbedTokens = (pe: Ptr, cls: Ptr, pos: Ptr, x: Ptr, B: number, T: number, D: number) => void;
export type GemmStrided = (
  a: Ptr,
  ai: number,
  ak: number,
  b: Ptr,
  bk: number,
  c: Ptr,
  ldc: number,
  M: number,
  N: number,
  K: number,
  epi: number,
) => void;
export type Colsum = (dy: Ptr, db: Ptr, M: number, N: number) => void;
export type Transpose = (src: Ptr, ld: number, dst: Ptr, ldd: number, rows: number, cols: number) => void;
export type PackPanels = (src: Ptr, ld: number, dst: Ptr, rows: number, cols: number) => void;
/** aq is written interleaved by blocks of 4 rows: (⌈M/4⌉, Kp/4, 4, 4) bytes (assembly/gemm_i8.ts). */
export type QuantizeRows = (a: Ptr, lda: number, aq: Ptr, Kp: number, sa: Ptr, za: Ptr, M: number, K: number) => void;
export type GemmI8 = (
  aq: Ptr,
  sa: Ptr,
  za: Ptr,
  wq: Ptr,
  wsum: Ptr,
  sw: Ptr,
  bias: Ptr,
  c: Ptr,
  ldc: number,
  M: number,
  N: number,
  Kp: number,
  epi: number,
) => void;
export type LayernormBwd = (
  x: Ptr,
  ldx: number,
  dy: Ptr,
  dx: Ptr,
  gamma: Ptr,
  dgamma: Ptr,
  dbeta: Ptr,
  rows: number,
  D: number,
  eps: number,
) => void;
export type GeluBwd = (x: Ptr, dy: Ptr, dx: Ptr, n: number) => void;
export type AttentionBwd = (
  qkv: Ptr,
  probs: Ptr,
  dout: Ptr,
  dqkv: Ptr,
  scratch: Ptr,
  T: number,
  D: number,
  dh: number,
  h: number,
  scale: number,
  /** (T, T) += the scores' gradient (a bias's), or 0. */
  dbias: Ptr,
) => void;
export type SoftmaxXent = (logits: Ptr, labels: Ptr, dlogits: Ptr, B: number, L: number) => number;
export type EmbedTokensBwd = (dx: Ptr, dpe: Ptr, dcls: Ptr, dpos: Ptr, B: number, T: number, D: number) => void;
