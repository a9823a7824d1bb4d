/**
 * The shape of a ViT: every number its arithmetic depends on, and the token counts that follow
 * from it. Np patches, T tokens (the prefix tokens, e.g. cls, then the Np patch tokens), T8 = T
 * rounded up to 8 (attention's key tiles).
 */
import { type Arch, PLAIN_VIT } from './arch.js';

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
  /** The size of the embedding an image tower's projection gives (Arch.head 'projection'). */
  projectionDim?: number;
  /** The family's arithmetic (src/nn/arch.ts). Default: the plain ViT. */
  arch?: Arch;
}

/** Token and patch counts of a shape: the one place they are computed. */
export function tokens(c: ViTShape): { Np: number; T: number; T8: number } {
  const Np = (c.imageSize[0] / c.patchSize) * (c.imageSize[1] / c.patchSize),
    T = (c.arch ?? PLAIN_VIT).prefix.length + Np;
  return { Np, T, T8: Math.ceil(T / 8) * 8 };
}

/** fc1's outputs per token: the MLP size M, or 2M for a gated MLP (its gate and the half it multiplies). */
export const fc1Width = (c: ViTShape): number => ((c.arch ?? PLAIN_VIT).mlp === 'gated' ? 2 : 1) * c.intermediateSize;

/**
 * Multiply-adds × 2 of one image through the model (the matrix products: the patch embedding, Q, K
 * and V, QKᵀ and ·V, the projection, the MLP, the head; elementwise ops are noise beside them).
 */
export function forwardFlops(c: ViTShape): number {
  const D = c.hiddenSize,
    M = c.intermediateSize,
    p = c.patchSize,
    K = c.numChannels * p * p;
  const { Np, T } = tokens(c);
  const layer = T * D * 3 * D + 2 * T * T * D + T * D * D + 2 * T * D * M;
  return 2 * (Np * K * D + c.numLayers * layer + D * c.numLabels);
}

/**
 * BeitRelativePositionBias.generate_relative_position_index for a wh×ww window, (T, T) with
 * T = wh·ww + 1: patch pairs by their offset (dy + wh − 1)·(2ww − 1) + (dx + ww − 1); the cls row,
 * the cls column and the cls-to-cls entry on the table's last three rows.
 */
export function beitIndex(wh: number, ww: number): Int32Array {
  const T = wh * ww + 1,
    n = (2 * wh - 1) * (2 * ww - 1) + 3,
    idx = new Int32Array(T * T);
  for (let i = 0; i < wh * ww; i++)
    for (let j = 0; j < wh * ww; j++) {
      const dy = Math.floor(i / ww) - Math.floor(j / ww) + wh - 1,
        dx = (i % ww) - (j % ww) + ww - 1;
      idx[(i + 1) * T + j + 1] = dy * (2 * ww - 1) + dx;
    }
  for (let j = 0; j < T; j++) idx[j] = n - 3; // cls → token
  for (let i = 0; i < T; i++) idx[i * T] = n - 2; // token → cls
  idx[0] = n - 1; // cls → cls
  return idx;
}
