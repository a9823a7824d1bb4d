/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */
export { loadModel, ViTModel, type LoadOptions, type ClassifyOptions, type Prediction, type RuntimeInfo } from './model.js';
export { softmax, type LayerTrace, type Tensor, type Trace } from './trace.js';
export type { ViTConfig, ViTShape, PreprocessConfig } from './config.js';
export { decodeImage, readImage, resize, preprocess, type ImageInput, type RawImage } from './image.js';
export type { ModelLocation } from './source.js';
export { hasRelaxedSimd, type SimdFlavor } from './kernels.js';
export { createTrainer, Trainer, type TrainDims, type TrainOptions } from './train.js';
