/**
 * Seeded random-weight ViTs in the Hugging Face layout, at the sizes of real checkpoints: for
 * benchmarks and for trying the runtime without downloading weights. Weights follow HF's ViT
 * initialisation scale (normal, std 0.02; layernorm γ near 1), so activations have realistic ranges.
 */
import { hfConfigFiles, type ViTShape } from '../io/config.js';
import { hfParameters } from './families/vit.js';
import { encodeSafetensors } from './safetensors.js';

const shape = (hiddenSize: number, numHeads: number): ViTShape => ({
  imageSize: [224, 224],
  patchSize: 16,
  numChannels: 3,
  hiddenSize,
  numLayers: 12,
  numHeads,
  intermediateSize: 4 * hiddenSize,
  numLabels: 1000,
  layerNormEps: 1e-12,
});

/**
 * The benchmark presets: DeiT-Tiny, DeiT-Small and ViT-B/16 shapes at 224 px, patch 16, 1000
 * labels; and two long sequences: ViT-B/16 at 384 px (577 tokens) and ViT-S/14 at 518 px (1,370
 * tokens: DINOv2-small's arithmetic, its LayerScale folded into the weights as vit-wasm loads it).
 */
export const PRESETS: Record<string, ViTShape> = {
  'deit-tiny': shape(192, 3),
  'deit-small': shape(384, 6),
  'vit-b16': shape(768, 12),
  'vit-b16-384': { ...shape(768, 12), imageSize: [384, 384] },
  'vit-s14-518': { ...shape(384, 6), imageSize: [518, 518], patchSize: 14 },
};

/** xorshift128+ driven Box–Muller normals: fast and identical on every platform. */
function normals(seed: number) {
  let s0 = (seed ^ 0x9e3779b9) >>> 0 || 1,
    s1 = (seed * 0x85ebca6b) >>> 0 || 2;
  const next = () => {
    let x = s0;
    const y = s1;
    s0 = y;
    x ^= x << 23;
    x ^= x >>> 17;
    x ^= y ^ (y >>> 26);
    s1 = x >>> 0;
    return ((s0 + s1) >>> 0) / 4294967296;
  };
  return (n: number, std: number, mean = 0) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - next())),
        t = 2 * Math.PI * next();
      out[i] = mean + std * r * Math.cos(t);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(t);
    }
    return out;
  };
}

/** config.json, model.safetensors and preprocessor_config.json of a random ViT in the Hugging Face layout. */
export function randomModelFiles(c: ViTShape, seed = 0): Record<string, Uint8Array | string> {
  const rnd = normals(seed);
  // HF's initialisation scale: N(0, 0.02) everywhere, layernorm γ around 1
  const t = hfParameters(c).map(({ name, shape, init }) => ({
    name,
    shape,
    data: rnd(
      shape.reduce((a, b) => a * b, 1),
      init === 'one' ? 0.05 : 0.02,
      init === 'one' ? 1 : 0,
    ),
  }));
  return {
    ...hfConfigFiles(
      c,
      Array.from({ length: c.numLabels }, (_, i) => `LABEL_${i}`),
    ),
    'model.safetensors': encodeSafetensors(t, { format: 'pt', generator: `vit-wasm random seed ${seed}` }),
  };
}
