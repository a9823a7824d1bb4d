/**
 * Smaller model directories: `f16` stores every tensor as IEEE half floats (half the download,
 * f32 arithmetic after loading); `int8` stores each linear layer's weight matrix as int8 with one
 * f32 scale per output channel (symmetric: w ≈ scale[n] · q[n, k], q in −127…127), everything else
 * f32. The int8 layout in safetensors, which vit-wasm's loader reads:
 *   `<name>`        dtype I8, shape as the f32 weight ([N, K], or [D, C, p, p] for the patch embedding)
 *   `<name>_scale`  dtype F32, shape [N]
 * and config.json carries `"vit_wasm_quantization": { "weights": "int8", … }`. Both are written in
 * the Hugging Face layout, whatever scheme the source used.
 */

import { loadCheckpoint } from '../io/checkpoint.js';
import { hfConfigFiles, type ViTConfig } from '../io/config.js';
import { hfNames } from '../io/families/vit.js';
import { encodeSafetensors, type TensorOut } from '../io/safetensors.js';
import { type ModelFiles, readJson } from '../io/source.js';
import { PLAIN_VIT } from '../nn/arch.js';
import { tokens } from '../nn/shape.js';
import { type Linear, linearWeight, type Weights } from '../nn/weights.js';
import type { WasmMemory } from '../runtime/memory.js';
import { quantizeRows } from '../runtime/pack.js';

export { quantizeRows };

export type QuantizeTarget = 'int8' | 'f16';

/** Largest finite f16. */
const F16_MAX = 65504;

/** f32 → f16 bits, rounding to nearest even (as numpy and PyTorch do); subnormals kept. */
export function toF16(x: number): number {
  const f = new Float32Array(1),
    u = new Uint32Array(f.buffer);
  f[0] = x;
  const b = u[0],
    sign = (b >>> 16) & 0x8000,
    exp = (b >>> 23) & 0xff,
    man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00; // overflow: ±Infinity (callers refuse it first)
  if (e <= 0) {
    // subnormal f16 (or zero): shift the full mantissa down, round to nearest even
    if (e < -10) return sign;
    const m = man | 0x800000,
      shift = 14 - e,
      half = 1 << (shift - 1),
      rest = m & ((1 << shift) - 1);
    let h = m >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rest = man & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is still correct
  return sign | h;
}

interface Param {
  name: string;
  shape: number[];
  data: Float32Array;
  /** A linear layer's weight (rows = output channels): int8 candidates. */
  linear?: { N: number; K: number; role: 'patch' | 'encoder' | 'head' };
}

/** Every parameter of a loaded model, in Hugging Face names and shapes, read back out of wasm memory. */
function hfTensors(c: ViTConfig, w: Weights, mem: WasmMemory): Param[] {
  const D = c.hiddenSize,
    C = c.numChannels,
    p = c.patchSize,
    { T } = tokens(c),
    n = hfNames('vit.');
  const f32 = (ptr: number, len: number) => mem.f32(ptr, len).slice();
  const weight = (l: Linear) => linearWeight(mem, l);
  const out: Param[] = [];
  const lin = (name: string, shape: number[], data: Float32Array, role: 'patch' | 'encoder' | 'head') =>
    out.push({ name, shape, data, linear: { N: shape[0], K: data.length / shape[0], role } });
  lin(n.patchW, [D, C, p, p], weight(w.patch), 'patch');
  out.push({ name: n.patchB, shape: [D], data: f32(w.patch.b, D) });
  if (w.cls === undefined) throw new Error('vit-wasm: internal: quantize of a model without a class token');
  out.push({ name: n.cls, shape: [1, 1, D], data: f32(w.cls, D) });
  out.push({ name: n.pos, shape: [1, T, D], data: f32(w.pos, T * D) });
  w.layers.forEach((l, i) => {
    const names = n.layer(i);
    out.push(
      { name: names.ln1[0], shape: [D], data: f32(l.ln1.g, D) },
      { name: names.ln1[1], shape: [D], data: f32(l.ln1.b, D) },
    );
    const qkv = weight(l.qkv),
      qkvB = c.qkvBias ? f32(l.qkv.b, 3 * D) : new Float32Array(3 * D);
    names.qkvW.forEach((name, j) => lin(name, [D, D], qkv.slice(j * D * D, (j + 1) * D * D), 'encoder'));
    names.qkvB.forEach((name, j) => {
      if (name) out.push({ name, shape: [D], data: qkvB.slice(j * D, (j + 1) * D) });
    });
    lin(names.projW, [D, D], weight(l.proj), 'encoder');
    out.push({ name: names.projB, shape: [D], data: f32(l.proj.b, D) });
    out.push(
      { name: names.ln2[0], shape: [D], data: f32(l.ln2.g, D) },
      { name: names.ln2[1], shape: [D], data: f32(l.ln2.b, D) },
    );
    lin(names.fc1W, [l.fc1.N, D], weight(l.fc1), 'encoder');
    out.push({ name: names.fc1B, shape: [l.fc1.N], data: f32(l.fc1.b, l.fc1.N) });
    lin(names.fc2W, [D, l.fc2.K], weight(l.fc2), 'encoder');
    out.push({ name: names.fc2B, shape: [D], data: f32(l.fc2.b, D) });
  });
  out.push(
    { name: n.normG, shape: [D], data: f32(w.norm.g, D) },
    { name: n.normB, shape: [D], data: f32(w.norm.b, D) },
  );
  if (w.head) {
    // (a model without a classifier is written as Hugging Face's ViTModel is: without one)
    lin(n.headW, [c.numLabels, D], weight(w.head), 'head');
    out.push({ name: n.headB, shape: [c.numLabels], data: f32(w.head.b, c.numLabels) });
  }
  return out;
}

/** Which linear weights become int8: the encoder's always; the patch embedding and classifier by choice. */
export interface QuantizeOptions {
  /** Also quantize the patch embedding. Default true. */
  patch?: boolean;
  /** Also quantize the classifier. Default true. */
  head?: boolean;
}

/**
 * The files of `files`' model stored as `to`: config.json (Hugging Face, with the quantization
 * recorded), model.safetensors, and the source's preprocessor_config.json when it has one.
 */
export async function quantizeModel(
  files: ModelFiles,
  mem: WasmMemory,
  to: QuantizeTarget,
  opts: QuantizeOptions = {},
): Promise<Record<string, string | Uint8Array>> {
  if (to !== 'int8' && to !== 'f16')
    throw new Error(`vit-wasm: quantize: --to must be int8 or f16, got ${JSON.stringify(to)}`);
  const { config, weights } = await loadCheckpoint(files, mem);
  const arch = config.arch ?? PLAIN_VIT,
    unsaid = [
      arch.pooling === 'mean' && "a head on the mean of the patch tokens (timm's global_pool)",
      arch.pooling === 'clsMean' && 'a head on the cls token and the mean of the patch tokens (DINOv2)',
      arch.prefix.includes('dist') && 'a distillation token (DeiT)',
      arch.prefix.includes('reg') && 'register tokens',
      arch.prefix[0] !== 'cls' && 'no class token',
      arch.pooling === 'map' && 'an attention-pool head',
      arch.layerScale && 'LayerScale',
      // the layout quantize writes says hidden_act 'gelu' and no more: every other field of the arch too
      arch.activation !== 'gelu' && `the ${arch.activation} activation`,
      arch.mlp !== 'plain' && 'a gated MLP (SwiGLU)',
      arch.embedNorm && 'a layernorm before the first block (CLIP)',
      arch.head === 'projection' && "an image tower's projection (CLIP)",
      arch.attentionBias !== 'none' && 'a relative position bias (BEiT)',
      arch.positions !== 'all' && 'position embeddings on some tokens only',
    ].filter(Boolean);
  if (unsaid.length)
    throw new Error(
      `vit-wasm: quantize: this model has ${unsaid.join(' and ')}, which the Hugging Face ViT layout quantize writes cannot say yet; load it with { weights: 'int8' } instead`,
    );
  const params = hfTensors(config, weights, mem);
  const tensors: TensorOut[] = [];
  for (const t of params) {
    const quantize = to === 'int8' && t.linear && (t.linear.role === 'encoder' || (opts[t.linear.role] ?? true));
    if (quantize && t.linear) {
      const { q, scale } = quantizeRows(t.data, t.linear.N, t.linear.K);
      tensors.push({ name: t.name, shape: t.shape, dtype: 'I8', bytes: new Uint8Array(q.buffer) });
      tensors.push({ name: `${t.name}_scale`, shape: [t.linear.N], data: scale });
    } else if (to === 'f16') {
      const h = new Uint16Array(t.data.length);
      for (let i = 0; i < h.length; i++) {
        if (Math.abs(t.data[i]) > F16_MAX)
          throw new Error(
            `vit-wasm: quantize: tensor '${t.name}' holds ${t.data[i]} at element ${i}, beyond f16's range (±65504): keep this model in f32`,
          );
        h[i] = toF16(t.data[i]);
      }
      tensors.push({ name: t.name, shape: t.shape, dtype: 'F16', bytes: new Uint8Array(h.buffer) });
    } else tensors.push({ name: t.name, shape: t.shape, data: t.data });
  }
  const out: Record<string, string | Uint8Array> = {};
  const cfg = JSON.parse(hfConfigFiles(config, config.labels)['config.json']);
  cfg.torch_dtype = to === 'f16' ? 'float16' : 'float32';
  if (to === 'int8')
    cfg.vit_wasm_quantization = {
      weights: 'int8',
      scheme: 'symmetric, one f32 scale per output channel: w = scale[n] * q[n, k]',
      layers: [
        'encoder',
        ...((opts.patch ?? true) ? ['patch_embedding'] : []),
        ...((opts.head ?? true) ? ['classifier'] : []),
      ],
    };
  out['config.json'] = JSON.stringify(cfg, null, 2);
  if (await files.exists('preprocessor_config.json'))
    out['preprocessor_config.json'] = JSON.stringify(await readJson(files, 'preprocessor_config.json'), null, 2);
  else out['preprocessor_config.json'] = hfConfigFiles(config, config.labels)['preprocessor_config.json'];
  out['model.safetensors'] = encodeSafetensors(tensors, { format: 'pt', generator: `vit-wasm quantize --to ${to}` });
  return out;
}
