/**
 * torchvision's weights carry no processor config: their enums name a transform instead
 * (`ViT_B_16_Weights.IMAGENET1K_V1.transforms()`, torchvision's ImageClassification preset:
 * resize the shorter side, center crop, convert_image_dtype's v / 255, Normalize with ImageNet's
 * mean and std). The recipes of torchvision's ViT weights, by name, as the settings of an image
 * processor (src/io/config.ts parses them; PreprocessConfig.transforms 'torchvision').
 */

/** [crop size, resize size, interpolation] of each torchvision ViT weights' transforms (torchvision/models/vision_transformer.py). */
export const TORCHVISION_TRANSFORMS: Readonly<Record<string, readonly [number, number, 'bilinear' | 'bicubic']>> = {
  'ViT_B_16_Weights.IMAGENET1K_V1': [224, 256, 'bilinear'],
  'ViT_B_16_Weights.IMAGENET1K_SWAG_E2E_V1': [384, 384, 'bicubic'],
  'ViT_B_16_Weights.IMAGENET1K_SWAG_LINEAR_V1': [224, 224, 'bicubic'],
  'ViT_B_32_Weights.IMAGENET1K_V1': [224, 256, 'bilinear'],
  'ViT_L_16_Weights.IMAGENET1K_V1': [224, 242, 'bilinear'],
  'ViT_L_16_Weights.IMAGENET1K_SWAG_E2E_V1': [512, 512, 'bicubic'],
  'ViT_L_16_Weights.IMAGENET1K_SWAG_LINEAR_V1': [224, 224, 'bicubic'],
  'ViT_L_32_Weights.IMAGENET1K_V1': [224, 256, 'bilinear'],
  'ViT_H_14_Weights.IMAGENET1K_SWAG_E2E_V1': [518, 518, 'bicubic'],
  'ViT_H_14_Weights.IMAGENET1K_SWAG_LINEAR_V1': [224, 224, 'bicubic'],
};

/** The image processor settings of torchvision weights `name`, or an Error listing the names known. */
export function torchvisionPreprocessor(name: unknown): Record<string, unknown> {
  const recipe =
    typeof name === 'string' && Object.hasOwn(TORCHVISION_TRANSFORMS, name) ? TORCHVISION_TRANSFORMS[name] : null;
  if (!recipe)
    throw new Error(
      `vit-wasm: transforms ${JSON.stringify(name)} is not a torchvision ViT weights name vit-wasm knows (${Object.keys(TORCHVISION_TRANSFORMS).join(', ')})`,
    );
  const [crop, resize, interpolation] = recipe;
  return {
    image_processor_type: 'torchvision',
    do_resize: true,
    size: { shortest_edge: resize },
    do_center_crop: true,
    crop_size: { height: crop, width: crop },
    resample: interpolation === 'bicubic' ? 3 : 2,
    do_rescale: true,
    rescale_factor: 1 / 255,
    do_normalize: true,
    image_mean: [0.485, 0.456, 0.406],
    image_std: [0.229, 0.224, 0.225],
  };
}
