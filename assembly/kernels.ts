// The kernel module's entry: every export here is a kernel (SIMD) or its scalar reference.
// src/kernels.ts lists them for dispatch, tests and benchmarks; keep the two in step.
export { gemm_4x8_simd, gemm_ref, gemm_4x8_strided_simd, gemm_strided_ref, colsum_simd, colsum_ref } from './gemm';
export { layernorm_simd, layernorm_ref, layernorm_bwd_simd, layernorm_bwd_ref } from './layernorm';
export { gelu_simd, gelu_ref, gelu_bwd_simd, gelu_bwd_ref } from './gelu';
export {
  softmax_rows_simd, softmax_rows_ref, attention_pack_kt, attention_head_simd, attention_head_ref,
  attention_bwd_simd, attention_bwd_ref, softmax_xent_simd, softmax_xent_ref,
} from './attention';
export { patchify_simd, patchify_ref, embed_tokens_simd, embed_tokens_ref, embed_tokens_bwd_simd, embed_tokens_bwd_ref } from './embed';
