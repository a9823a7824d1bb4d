/**
 * The shape of a ViT: every number its arithmetic depends on, and the token counts that follow
 * from it. Np patches, T tokens (Np + the cls token), T8 = T rounded up to 8 (attention's key tiles).
 */

/** The shape of a ViT: every number the network's arithmetic depends on. */
export interface ViTShape {
  /** [height, width] in pixels. */
  imageSize: [number, number];
  patchSize: number;
  numChannels: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  numLabels: number;
  layerNormEps: number;
}

/** Token and patch counts of a shape: the one place they are computed. */
export function tokens(s: ViTShape): { Np: number; T: number; T8: number } {
  const Np = (s.imageSize[0] / s.patchSize) * (s.imageSize[1] / s.patchSize);
  return { Np, T: Np + 1, T8: Math.ceil((Np + 1) / 8) * 8 };
}
