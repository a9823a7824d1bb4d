/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */

export { decodeImage, type ImageInput, preprocess, type RawImage, readImage, resize } from './io/image.js';
export { DEFAULT_LIMITS, type Limits } from './io/limits.js';
export type { ModelLocation } from './io/source.js';
export {
  type ClassifyOptions,
  type LoadOptions,
  loadModel,
  type Prediction,
  type RuntimeInfo,
  ViTModel,
} from './model.js';
export type { PreprocessConfig, ViTConfig, ViTShape } from './network/config.js';
export {
  attentionRollout,
  type LayerTrace,
  positionSimilarity,
  type RolloutOptions,
  softmax,
  type Tensor,
  type Trace,
} from './network/trace.js';
export { hasRelaxedSimd, type SimdFlavor } from './runtime/kernels.js';
export { createTrainer, type TrainDims, Trainer, type TrainOptions } from './train/trainer.js';
