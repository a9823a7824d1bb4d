/**
 * Seeded random-weight ViTs in the Hugging Face layout, at the sizes of real checkpoints: for
 * benchmarks and for trying the runtime without downloading weights. Weights follow HF's ViT
 * initialisation scale (normal, std 0.02; layernorm γ near 1), so activations have realistic ranges.
 */
import { encodeSafetensors } from './safetensors.js';

/** Model dimensions of a preset. */
export interface ViTDims { hidden: number; layers: number; heads: number; mlp: number; image: number; patch: number; channels: number; labels: number }

/** The benchmark presets: DeiT-Tiny, DeiT-Small and ViT-B/16 shapes at 224 px, patch 16, 1000 labels. */
export const PRESETS: Record<string, ViTDims> = {
  'deit-tiny': { hidden: 192, layers: 12, heads: 3, mlp: 768, image: 224, patch: 16, channels: 3, labels: 1000 },
  'deit-small': { hidden: 384, layers: 12, heads: 6, mlp: 1536, image: 224, patch: 16, channels: 3, labels: 1000 },
  'vit-b16': { hidden: 768, layers: 12, heads: 12, mlp: 3072, image: 224, patch: 16, channels: 3, labels: 1000 },
};

/** xorshift128+ driven Box–Muller normals: fast and identical on every platform. */
function normals(seed: number) {
  let s0 = (seed ^ 0x9e3779b9) >>> 0 || 1, s1 = (seed * 0x85ebca6b) >>> 0 || 2;
  const next = () => {
    let x = s0; const y = s1;
    s0 = y; x ^= x << 23; x ^= x >>> 17; x ^= y ^ (y >>> 26); s1 = x >>> 0;
    return ((s0 + s1) >>> 0) / 4294967296;
  };
  return (n: number, std: number, mean = 0) => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(1 - next())), t = 2 * Math.PI * next();
      out[i] = mean + std * r * Math.cos(t);
      if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(t);
    }
    return out;
  };
}

/** config.json, model.safetensors and preprocessor_config.json of a random ViT. */
export function randomModelFiles(d: ViTDims, seed = 0): Record<string, Uint8Array | string> {
  const rnd = normals(seed);
  const { hidden: D, mlp: M, channels: C, patch: p, labels: L } = d;
  const T = (d.image / p) ** 2 + 1;
  const t: { name: string; shape: number[]; data: Float32Array }[] = [];
  const add = (name: string, shape: number[], std: number, mean = 0) => t.push({ name, shape, data: rnd(shape.reduce((a, b) => a * b, 1), std, mean) });
  const e = 'vit.embeddings.';
  add(`${e}cls_token`, [1, 1, D], 0.02);
  add(`${e}position_embeddings`, [1, T, D], 0.02);
  add(`${e}patch_embeddings.projection.weight`, [D, C, p, p], 0.02);
  add(`${e}patch_embeddings.projection.bias`, [D], 0.02);
  for (let i = 0; i < d.layers; i++) {
    const l = `vit.encoder.layer.${i}.`;
    add(`${l}layernorm_before.weight`, [D], 0.05, 1); add(`${l}layernorm_before.bias`, [D], 0.02);
    for (const q of ['query', 'key', 'value']) { add(`${l}attention.attention.${q}.weight`, [D, D], 0.02); add(`${l}attention.attention.${q}.bias`, [D], 0.02); }
    add(`${l}attention.output.dense.weight`, [D, D], 0.02); add(`${l}attention.output.dense.bias`, [D], 0.02);
    add(`${l}layernorm_after.weight`, [D], 0.05, 1); add(`${l}layernorm_after.bias`, [D], 0.02);
    add(`${l}intermediate.dense.weight`, [M, D], 0.02); add(`${l}intermediate.dense.bias`, [M], 0.02);
    add(`${l}output.dense.weight`, [D, M], 0.02); add(`${l}output.dense.bias`, [D], 0.02);
  }
  add('vit.layernorm.weight', [D], 0.05, 1); add('vit.layernorm.bias', [D], 0.02);
  add('classifier.weight', [L, D], 0.02); add('classifier.bias', [L], 0.02);
  const config = {
    architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_size: D, num_hidden_layers: d.layers,
    num_attention_heads: d.heads, intermediate_size: M, hidden_act: 'gelu', layer_norm_eps: 1e-12, image_size: d.image,
    patch_size: p, num_channels: C, qkv_bias: true,
    id2label: Object.fromEntries(Array.from({ length: L }, (_, i) => [String(i), `LABEL_${i}`])),
  };
  const pre = { do_normalize: true, do_rescale: true, do_resize: true, image_mean: Array(C).fill(0.5), image_std: Array(C).fill(0.5),
    resample: 2, rescale_factor: 1 / 255, size: { height: d.image, width: d.image } };
  return {
    'config.json': JSON.stringify(config, null, 2),
    'model.safetensors': encodeSafetensors(t, { format: 'pt', generator: `vit-wasm random seed ${seed}` }),
    'preprocessor_config.json': JSON.stringify(pre, null, 2),
  };
}
