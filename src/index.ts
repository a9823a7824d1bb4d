/**
 * vit-wasm: Vision Transformer inference in WebAssembly SIMD.
 * @packageDocumentation
 */
export { loadModel, ViTModel, softmax, type LoadOptions, type ClassifyOptions, type Prediction } from './model.js';
export type { ViTConfig, PreprocessConfig } from './config.js';
export { decodeImage, readImage, resize, preprocess, type ImageInput, type RawImage } from './image.js';
export type { ModelLocation } from './source.js';
export { hasRelaxedSimd, type SimdFlavor } from './kernels.js';
export { createTrainer, Trainer, type TrainDims, type TrainOptions } from './train.js';
