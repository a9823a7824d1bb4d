/**
 * The ViT forward, as "A Visual Guide to Vision Transformers" walks through it and HF's
 * ViTForImageClassification computes it. Shapes: B images, C×H×W pixels, p patch, Np patches,
 * T = Np + 1 tokens, D hidden, H heads, M MLP size, L labels.
 */
import type { ViTConfig } from './config.js';
import type { Weights } from './checkpoint.js';
import { Exec } from './exec.js';
import { EPI } from './kernels.js';
import type { WasmMemory } from './memory.js';

/** Activation pointers for one batch size; every layer reuses them. */
export interface Activations {
  B: number;
  pixels: number;  // (B, C, H, W)  normalized input
  patches: number; // (B·Np, C·p·p) flattened patches
  pe: number;      // (B·Np, D)     patch embeddings
  x: number;       // (B·T, D)      the residual stream
  h: number;       // (B·T, D)      layernorm output
  qkv: number;     // (B·T, 3D)     [q | k | v] per token
  kt: number;      // (B, H, ⌈T/8⌉, dh, 8) Kᵀ panels per head
  att: number;     // (B·T, D)      attention output, heads concatenated
  mlp: number;     // (B·T, M)      GELU(fc1)
  cls: number;     // (B, D)        final-normed cls tokens
  logits: number;  // (B, L)
  probs: number[]; // per layer (B, H, T, T) attention maps, or 0 when not kept
  scratch: number[]; // per worker (4, T8): four rows of attention scores, T8 = T rounded up to 8
}

export function vitForward(ex: Exec, c: ViTConfig, w: Weights, a: Activations): void {
  const { B } = a, [Hpx, Wpx] = c.imageSize, p = c.patchSize, D = c.hiddenSize, eps = c.layerNormEps;
  const Np = (Hpx / p) * (Wpx / p), T = Np + 1;
  ex.patchify(a.pixels, a.patches, B, c.numChannels, Hpx, Wpx, p);   // image → p×p patches, flattened
  ex.linear(a.patches, w.patch, a.pe, B * Np);                         // linear patch embedding
  ex.embedTokens(a.pe, w.cls, w.pos, a.x, B, T, D);                    // prepend cls, add position embeddings
  w.layers.forEach((l, i) => {
    ex.layernorm(a.x, l.ln1, a.h, B * T, D, eps);                      // pre-norm
    ex.linear(a.h, l.qkv, a.qkv, B * T);                               // Q, K, V projections
    ex.attention(a.qkv, a.kt, a.att, B, T, D, c.numHeads, a.probs[i]); // softmax(QKᵀ/√dh)·V per head, concatenated
    ex.linear(a.att, l.proj, a.x, B * T, EPI.ADD);                     // output projection + residual
    ex.layernorm(a.x, l.ln2, a.h, B * T, D, eps);
    ex.linear(a.h, l.fc1, a.mlp, B * T, EPI.GELU);                     // MLP up, exact GELU
    ex.linear(a.mlp, l.fc2, a.x, B * T, EPI.ADD);                      // MLP down + residual
  });
  ex.layernorm(a.x, w.norm, a.cls, B, D, eps, T * D);                  // final layernorm of the cls tokens
  ex.linear(a.cls, w.head, a.logits, B);                               // classifier → logits
}

/** Lays out the activations for batch B after the weights; `keepAttention` keeps every map. */
export function planActivations(mem: WasmMemory, c: ViTConfig, B: number, workers: number, keepAttention: boolean): Activations {
  const [Hpx, Wpx] = c.imageSize, p = c.patchSize, D = c.hiddenSize, C = c.numChannels;
  const Np = (Hpx / p) * (Wpx / p), T = Np + 1, T8 = Math.ceil(T / 8) * 8;
  return {
    B,
    pixels: mem.alloc(B * C * Hpx * Wpx),
    patches: mem.alloc(B * Np * C * p * p),
    pe: mem.alloc(B * Np * D),
    x: mem.alloc(B * T * D),
    h: mem.alloc(B * T * D),
    qkv: mem.alloc(B * T * 3 * D),
    kt: mem.alloc(B * D * T8),
    att: mem.alloc(B * T * D),
    mlp: mem.alloc(B * T * c.intermediateSize),
    cls: mem.alloc(B * D),
    logits: mem.alloc(B * c.numLabels),
    probs: Array.from({ length: c.numLayers }, () => (keepAttention ? mem.alloc(B * c.numHeads * T * T) : 0)),
    scratch: Array.from({ length: workers }, () => mem.alloc(4 * T8)),
  };
}
