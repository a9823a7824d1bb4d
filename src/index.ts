/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */

export type { PreprocessConfig, ViTConfig } from './io/config.js';
export { decodeImage, type ImageInput, preprocess, type RawImage, readImage, resize } from './io/image.js';
export type { ModelLocation } from './io/source.js';
export {
  type ClassifyOptions,
  type LoadOptions,
  loadModel,
  type Prediction,
  type RuntimeInfo,
  ViTModel,
} from './model/model.js';
export type { Arch } from './nn/arch.js';
export { tokens, type ViTShape } from './nn/shape.js';
export {
  attentionRollout,
  type LayerTrace,
  positionSimilarity,
  type RolloutOptions,
  softmax,
  type Tensor,
  type Trace,
} from './nn/trace.js';
export { DEFAULT_LIMITS, type Limits } from './platform/limits.js';
export { hasRelaxedSimd, type SimdFlavor } from './runtime/kernels.js';
export { createTrainer, type TrainDims, Trainer, type TrainOptions } from './train/trainer.js';
