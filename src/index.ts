/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */

export type { PreprocessConfig, ViTConfig } from './io/config.js';
export { decodeImage, type RawImage } from './io/image/decode.js';
export { PILLOW_FILTERS, type PillowFilter, type ResampleFilter, resize } from './io/image/pillow.js';
export { preprocess } from './io/image/preprocess.js';
export { type BrowserImage, type ImageInput, readImage } from './io/image/read.js';
export type { ModelLocation } from './io/source.js';
export { loadModel } from './model/load.js';
export { type ClassifyOptions, type Prediction, ViTModel } from './model/model.js';
export type { LoadOptions, RuntimeInfo } from './model/options.js';
export { linearProbe, type ProbeOptions, type ProbeResult } from './model/probe.js';
export { DEFAULT_TEMPLATE, similarity, type TextTrace, type ZeroShotOptions } from './model/zero-shot.js';
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
export type { AugmentMode } from './train/augment.js';
export { createTrainer } from './train/create.js';
export {
  type Dataset,
  defaultPreprocessing,
  type Example,
  type FitEpoch,
  type FitOptions,
  type FitResult,
  type FitStep,
  filesDataset,
  imageFolder,
  type LabelledImages,
} from './train/fit.js';
export { type TrainDims, Trainer, type TrainOptions } from './train/trainer.js';
