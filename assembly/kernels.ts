// The kernel module's entry: every export here is a kernel (SIMD) or its scalar reference.
// src/runtime/kernels.ts types them (KernelExports, KERNEL_ARITY) for dispatch, tests and benchmarks;
// tests/kernels.test.ts fails when the two lists differ.
export { gemm_4x8, gemm_ref, gemm_4x8_strided, gemm_strided_ref, colsum, colsum_ref, transpose, pack_panels_8 } from './gemm';
export { quantize_rows_u7, quantize_rows_u7_ref, quantize_pack_weights_i8, gemm_i8_4x8, gemm_i8_ref } from './gemm_i8';
export { layernorm, layernorm_ref, layernorm_bwd, layernorm_bwd_ref } from './layernorm';
export { gelu, gelu_ref, gelu_bwd, gelu_bwd_ref } from './gelu';
export { act_gate, act_gate_ref, act_glu, act_glu_ref, act_relu, act_relu_ref } from './activation';
export {
  softmax_rows, softmax_rows_ref, attention_pack_kv, attention_head, attention_head_ref,
  attention_bwd, attention_bwd_ref, softmax_xent, softmax_xent_ref,
} from './attention';
export { patchify, patchify_ref, embed_tokens, embed_tokens_ref, embed_tokens_bwd, embed_tokens_bwd_ref } from './embed';
