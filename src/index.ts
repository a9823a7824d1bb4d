/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */
export { loadModel, ViTModel, type LoadOptions, type ClassifyOptions, type Prediction, type RuntimeInfo } from './model.js';
export { softmax, type LayerTrace, type Tensor, type Trace } from './network/trace.js';
export type { ViTConfig, ViTShape, PreprocessConfig } from './network/config.js';
export { decodeImage, readImage, resize, preprocess, type ImageInput, type RawImage } from './io/image.js';
export type { ModelLocation } from './io/source.js';
export { hasRelaxedSimd, type SimdFlavor } from './runtime/kernels.js';
export { createTrainer, Trainer, type TrainDims, type TrainOptions } from './train/trainer.js';
