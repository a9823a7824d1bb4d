/**
 * Training: the ViT's forward with every activation kept, its backward in reverse (each op's
 * backward kernel beside its forward in assembly/), softmax cross-entropy, gradient-norm clipping
 * and AdamW with decoupled weight decay under a warmup + cosine schedule. Parameters live once, in
 * Hugging Face's layout and names, in wasm memory; linear weights are re-packed for the forward
 * GEMM after every step. One thread for now.
 *
 * Shapes: B images, C×H×W pixels, p patch, Np patches, T = Np + 1 tokens, D hidden, H heads,
 * dh = D/H, M MLP size, L labels.
 */
import { EPI, compileKernels, instantiateKernels, type KernelExports } from './kernels.js';
import { WasmMemory } from './memory.js';
import { packRows, packedSize } from './pack.js';
import { encodeSafetensors, readSafetensorsHeader, TensorReader } from './safetensors.js';
import { modelFiles, type ModelLocation } from './source.js';
import { parseJson } from './config.js';

/** The shape of a ViT to train. */
export interface TrainDims {
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

/** Optimiser and schedule settings for {@link createTrainer}. */
export interface TrainOptions {
  /** Largest batch `step` and `evaluate` will see (activations are planned for it). Default 64. */
  maxBatch?: number;
  /** Peak learning rate. Default 1e-3. */
  lr?: number;
  /** Decoupled weight decay on the weight matrices (not biases, norms, cls or positions). Default 0.05. */
  weightDecay?: number;
  beta1?: number;
  beta2?: number;
  adamEps?: number;
  /** Linear warmup steps from 0 to `lr`. Default 0. */
  warmupSteps?: number;
  /** Cosine decay to 0 at this step; 0 keeps `lr` after the warmup. Default 0. */
  totalSteps?: number;
  /** Clip the global gradient norm to this; 0 turns clipping off. Default 1. */
  clipNorm?: number;
  /** Seed of the initial weights (when not loaded from a checkpoint). Default 0. */
  seed?: number;
  /** Class labels for the saved config's id2label. Default "0", "1", … */
  labels?: string[];
  /** Start from this checkpoint (Hugging Face names) instead of random weights. */
  from?: ModelLocation;
}

interface Param { name: string; shape: number[]; offset: number; size: number; decay: boolean }
interface Lin { w: number; b: number; N: number; K: number; packed: number }

/** The parameters in Hugging Face's names; query, key and value lie back to back so they form one (3D, D) matrix. */
function parameterList(d: TrainDims): Param[] {
  const D = d.hiddenSize, M = d.intermediateSize, C = d.numChannels, p = d.patchSize, L = d.numLabels;
  const T = (d.imageSize[0] / p) * (d.imageSize[1] / p) + 1;
  const list: Param[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], decay = false) => {
    const size = shape.reduce((a, b) => a * b, 1);
    list.push({ name, shape, offset, size, decay });
    offset += size;
  };
  const e = 'vit.embeddings.';
  add(`${e}patch_embeddings.projection.weight`, [D, C, p, p], true); add(`${e}patch_embeddings.projection.bias`, [D]);
  add(`${e}cls_token`, [1, 1, D]); add(`${e}position_embeddings`, [1, T, D]);
  for (let i = 0; i < d.numLayers; i++) {
    const l = `vit.encoder.layer.${i}.`, a = `${l}attention.attention.`;
    add(`${l}layernorm_before.weight`, [D]); add(`${l}layernorm_before.bias`, [D]);
    for (const q of ['query', 'key', 'value']) add(`${a}${q}.weight`, [D, D], true);
    for (const q of ['query', 'key', 'value']) add(`${a}${q}.bias`, [D]);
    add(`${l}attention.output.dense.weight`, [D, D], true); add(`${l}attention.output.dense.bias`, [D]);
    add(`${l}layernorm_after.weight`, [D]); add(`${l}layernorm_after.bias`, [D]);
    add(`${l}intermediate.dense.weight`, [M, D], true); add(`${l}intermediate.dense.bias`, [M]);
    add(`${l}output.dense.weight`, [D, M], true); add(`${l}output.dense.bias`, [D]);
  }
  add('vit.layernorm.weight', [D]); add('vit.layernorm.bias', [D]);
  add('classifier.weight', [L, D], true); add('classifier.bias', [L]);
  return list;
}

/** A ViT being trained. Create with {@link createTrainer}. */
export class Trainer {
  /** Optimiser steps taken. */
  stepCount = 0;
  private lastBatch = 0;
  private readonly params: Param[];
  private readonly byName: Map<string, Param>;
  private readonly n: number;          // parameter count
  private readonly P: number;          // parameters (n), then gradients, Adam m and v at the same offsets
  private readonly G: number;
  private readonly Mo: number;
  private readonly Vo: number;
  private readonly a: ReturnType<Trainer['plan']>;
  private readonly T: number;
  private readonly Np: number;

  /** @internal use {@link createTrainer} */
  constructor(readonly dims: TrainDims, readonly options: Required<Omit<TrainOptions, 'from' | 'labels'>> & { labels: string[] },
    private readonly k: KernelExports, private readonly mem: WasmMemory) {
    this.params = parameterList(dims);
    this.byName = new Map(this.params.map((p) => [p.name, p]));
    this.n = this.params.reduce((s, p) => s + p.size, 0);
    // 8 floats of slack after each buffer: the backward GEMM reads B rows 8 at a time
    this.P = mem.alloc(this.n + 8); this.G = mem.alloc(this.n + 8); this.Mo = mem.alloc(this.n); this.Vo = mem.alloc(this.n);
    const p = dims.patchSize;
    this.Np = (dims.imageSize[0] / p) * (dims.imageSize[1] / p);
    this.T = this.Np + 1;
    this.a = this.plan(options.maxBatch);
  }

  private ptr(name: string, base = this.P): number { return base + this.byName.get(name)!.offset * 4; }

  private plan(Bmax: number) {
    const { hiddenSize: D, intermediateSize: M, numHeads: H, numLabels: L, numChannels: C, patchSize: p } = this.dims;
    const m = this.mem, T = this.T, BT = Bmax * T, K = C * p * p;
    const lin = (w: string, b: string, N: number, Kin: number): Lin => ({ w: this.ptr(w), b: this.ptr(b), N, K: Kin, packed: m.alloc(packedSize(N, Kin)) });
    const layers = Array.from({ length: this.dims.numLayers }, (_, i) => {
      const l = `vit.encoder.layer.${i}.`, at = `${l}attention.attention.`;
      return {
        qkv: lin(`${at}query.weight`, `${at}query.bias`, 3 * D, D), proj: lin(`${l}attention.output.dense.weight`, `${l}attention.output.dense.bias`, D, D),
        fc1: lin(`${l}intermediate.dense.weight`, `${l}intermediate.dense.bias`, M, D), fc2: lin(`${l}output.dense.weight`, `${l}output.dense.bias`, D, M),
        ln1: `${l}layernorm_before`, ln2: `${l}layernorm_after`,
        // kept activations
        xin: m.alloc(BT * D), h1: m.alloc(BT * D), qkvOut: m.alloc(BT * 3 * D), probs: m.alloc(Bmax * H * T * T), att: m.alloc(BT * D),
        xmid: m.alloc(BT * D), h2: m.alloc(BT * D), u: m.alloc(BT * M), act: m.alloc(BT * M),
      };
    });
    const e = 'vit.embeddings.';
    return {
      layers,
      patch: lin(`${e}patch_embeddings.projection.weight`, `${e}patch_embeddings.projection.bias`, D, K),
      head: lin('classifier.weight', 'classifier.bias', L, D),
      pixels: m.alloc(Bmax * C * this.dims.imageSize[0] * this.dims.imageSize[1]), patches: m.alloc(Bmax * this.Np * K + 8),
      pe: m.alloc(Bmax * this.Np * D), xout: m.alloc(BT * D), clsn: m.alloc(Bmax * D + 8), logits: m.alloc(Bmax * L), labels: m.alloc(Bmax),
      kt: m.alloc(D * Math.ceil(T / 8) * 8), scratch: m.alloc(4 * Math.ceil(T / 8) * 8),
      // gradients of activations
      dx: m.alloc(BT * D), dh: m.alloc(BT * D), dact: m.alloc(BT * M), du: m.alloc(BT * M + 8), datt: m.alloc(BT * D),
      dqkv: m.alloc(BT * 3 * D + 8), dclsn: m.alloc(Bmax * D), dlogits: m.alloc(Bmax * L + 8), dpe: m.alloc(Bmax * this.Np * D + 8),
    };
  }

  /** Re-packs every linear weight for the forward GEMM (after the parameters changed). */
  private repack(): void {
    const all = [this.a.patch, this.a.head, ...this.a.layers.flatMap((l) => [l.qkv, l.proj, l.fc1, l.fc2])];
    for (const l of all) packRows(this.mem.f32(l.packed, packedSize(l.N, l.K)), this.mem.f32(l.w, l.N * l.K), 0, l.N, l.K);
  }

  private gemm(x: number, l: Lin, y: number, rows: number, epi: number, lda = l.K): void {
    this.k.gemm_4x8_simd(x, lda, l.packed, l.b, y, l.N, rows, l.N, l.K, epi);
  }

  /** Forward over B images already in `pixels`, keeping what the backward needs. */
  private forward(B: number): void {
    const k = this.k, a = this.a, d = this.dims, D = d.hiddenSize, T = this.T, H = d.numHeads, dh = D / H, eps = d.layerNormEps;
    const [Hpx, Wpx] = d.imageSize, BT = B * T, T8 = Math.ceil(T / 8) * 8;
    k.patchify_simd(a.pixels, a.patches, B, d.numChannels, Hpx, Wpx, d.patchSize);
    this.gemm(a.patches, a.patch, a.pe, B * this.Np, EPI.STORE);
    k.embed_tokens_simd(a.pe, this.ptr('vit.embeddings.cls_token'), this.ptr('vit.embeddings.position_embeddings'), a.layers[0]?.xin ?? a.xout, B, T, D);
    a.layers.forEach((l, i) => {
      const next = a.layers[i + 1]?.xin ?? a.xout;
      k.layernorm_simd(l.xin, D, l.h1, D, this.ptr(`${l.ln1}.weight`), this.ptr(`${l.ln1}.bias`), BT, D, eps);
      this.gemm(l.h1, l.qkv, l.qkvOut, BT, EPI.STORE);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
        const qkv = l.qkvOut + b * T * 3 * D * 4;
        k.attention_pack_kt(qkv, a.kt, T, D, dh, h);
        k.attention_head_simd(qkv, a.kt, l.att + b * T * D * 4, a.scratch, l.probs + (b * H + h) * T * T * 4, T, D, dh, h, 1 / Math.sqrt(dh), 0, T);
      }
      this.mem.f32(l.xmid, BT * D).set(this.mem.f32(l.xin, BT * D));
      this.gemm(l.att, l.proj, l.xmid, BT, EPI.ADD);
      k.layernorm_simd(l.xmid, D, l.h2, D, this.ptr(`${l.ln2}.weight`), this.ptr(`${l.ln2}.bias`), BT, D, eps);
      this.gemm(l.h2, l.fc1, l.u, BT, EPI.STORE);
      k.gelu_simd(l.u, l.act, BT * d.intermediateSize);
      this.mem.f32(next, BT * D).set(this.mem.f32(l.xmid, BT * D));
      this.gemm(l.act, l.fc2, next, BT, EPI.ADD);
    });
    k.layernorm_simd(a.xout, T * D, a.clsn, D, this.ptr('vit.layernorm.weight'), this.ptr('vit.layernorm.bias'), B, D, eps);
    this.gemm(a.clsn, a.head, a.logits, B, EPI.STORE);
  }

  /** dX (R, Kin) = dY (R, N) · W (N, Kin); dW += dYᵀ · X; db += Σ dY. */
  private linearBackward(l: Lin, x: number, dy: number, dx: number, R: number, ldx = l.K): void {
    const k = this.k, gw = this.G + (l.w - this.P), gb = this.G + (l.b - this.P);
    if (dx) k.gemm_4x8_strided_simd(dy, l.N * 4, 4, l.w, l.K * 4, dx, l.K, R, l.K, l.N, EPI.STORE);
    k.gemm_4x8_strided_simd(dy, 4, l.N * 4, x, ldx * 4, gw, l.K, l.N, l.K, R, EPI.ADD);
    k.colsum_simd(dy, gb, R, l.N);
  }

  /** Backward from the loss, after `forward`; gradients accumulate into G. Returns the loss. */
  private backward(B: number): number {
    const k = this.k, a = this.a, d = this.dims, D = d.hiddenSize, T = this.T, H = d.numHeads, dh = D / H, eps = d.layerNormEps;
    const BT = B * T, g = (name: string) => this.ptr(name, this.G);
    const loss = k.softmax_xent_simd(a.logits, a.labels, a.dlogits, B, d.numLabels);
    this.linearBackward(a.head, a.clsn, a.dlogits, a.dclsn, B);
    this.mem.f32(a.dx, BT * D).fill(0);
    // the final norm saw only the cls rows (row stride T·D)
    k.layernorm_bwd_simd(a.xout, T * D, a.dclsn, a.dx, this.ptr('vit.layernorm.weight'), g('vit.layernorm.weight'), g('vit.layernorm.bias'), B, D, eps);
    for (let i = a.layers.length - 1; i >= 0; i--) {
      const l = a.layers[i];
      // in the forward: next = xmid + fc2(gelu(fc1(ln2(xmid))))
      this.linearBackward(l.fc2, l.act, a.dx, a.dact, BT);
      k.gelu_bwd_simd(l.u, a.dact, a.du, BT * d.intermediateSize);
      this.linearBackward(l.fc1, l.h2, a.du, a.dh, BT);
      k.layernorm_bwd_simd(l.xmid, D, a.dh, a.dx, this.ptr(`${l.ln2}.weight`), g(`${l.ln2}.weight`), g(`${l.ln2}.bias`), BT, D, eps);
      // in the forward: xmid = xin + proj(attention(qkv(ln1(xin))))
      this.linearBackward(l.proj, l.att, a.dx, a.datt, BT);
      for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) {
        k.attention_bwd_simd(l.qkvOut + b * T * 3 * D * 4, l.probs + (b * H + h) * T * T * 4, a.datt + b * T * D * 4, a.dqkv + b * T * 3 * D * 4,
          a.scratch, T, D, dh, h, 1 / Math.sqrt(dh));
      }
      this.linearBackward(l.qkv, l.h1, a.dqkv, a.dh, BT);
      k.layernorm_bwd_simd(l.xin, D, a.dh, a.dx, this.ptr(`${l.ln1}.weight`), g(`${l.ln1}.weight`), g(`${l.ln1}.bias`), BT, D, eps);
    }
    k.embed_tokens_bwd_simd(a.dx, a.dpe, g('vit.embeddings.cls_token'), g('vit.embeddings.position_embeddings'), B, T, D);
    this.linearBackward(a.patch, a.patches, a.dpe, 0, B * this.Np);
    return loss;
  }

  private load(images: Float32Array, labels: ArrayLike<number> | null, B: number): void {
    const d = this.dims, per = d.numChannels * d.imageSize[0] * d.imageSize[1];
    if (!Number.isInteger(B) || B < 1 || B > this.options.maxBatch) throw new Error(`vit-wasm: batch ${B} is outside 1…${this.options.maxBatch} (maxBatch)`);
    if (images.length !== B * per) throw new Error(`vit-wasm: got ${images.length} floats, expected ${B} × ${per}`);
    this.mem.f32(this.a.pixels, B * per).set(images);
    if (labels) {
      const lab = new Int32Array(this.mem.memory.buffer, this.a.labels, B);
      for (let i = 0; i < B; i++) {
        const y = labels[i];
        if (!Number.isInteger(y) || y < 0 || y >= d.numLabels) throw new Error(`vit-wasm: label ${i} is ${y}, not a class 0…${d.numLabels - 1}`);
        lab[i] = y;
      }
    }
  }

  /** Loss and gradients of one batch (gradients replace the previous ones); no update. */
  lossAndGradients(images: Float32Array, labels: ArrayLike<number>): number {
    const B = labels.length;
    this.lastBatch = B;
    this.load(images, labels, B);
    this.mem.f32(this.G, this.n).fill(0);
    this.forward(B);
    return this.backward(B);
  }

  /** Predicted classes of the batch the last `step`/`lossAndGradients` saw (before its update). */
  lastPredictions(): Int32Array {
    const L = this.dims.numLabels, z = this.mem.f32(this.a.logits, this.lastBatch * L), out = new Int32Array(this.lastBatch);
    for (let b = 0; b < this.lastBatch; b++) {
      let best = 0;
      for (let j = 1; j < L; j++) if (z[b * L + j] > z[b * L + best]) best = j;
      out[b] = best;
    }
    return out;
  }

  /** Gradients of the last `lossAndGradients`/`step`, by Hugging Face parameter name. */
  gradients(): Map<string, Float32Array> {
    return new Map(this.params.map((p) => [p.name, this.mem.f32(this.G + p.offset * 4, p.size).slice()]));
  }

  /** Current parameters, by Hugging Face name. */
  parameters(): Map<string, Float32Array> {
    return new Map(this.params.map((p) => [p.name, this.mem.f32(this.P + p.offset * 4, p.size).slice()]));
  }

  /** Learning rate at step `t` (1-based): linear warmup, then cosine decay to 0 at totalSteps. */
  learningRate(t: number): number {
    const { lr, warmupSteps: w, totalSteps: total } = this.options;
    if (w > 0 && t <= w) return (lr * t) / w;
    if (!total || total <= w) return lr;
    const f = Math.min(1, (t - w) / (total - w));
    return lr * 0.5 * (1 + Math.cos(Math.PI * f));
  }

  /** One optimiser step on a batch: forward, backward, clip, AdamW. Returns the batch's loss. */
  step(images: Float32Array, labels: ArrayLike<number>): number {
    const loss = this.lossAndGradients(images, labels);
    const o = this.options, t = ++this.stepCount, lr = this.learningRate(t);
    const P = this.mem.f32(this.P, this.n), G = this.mem.f32(this.G, this.n), M = this.mem.f32(this.Mo, this.n), V = this.mem.f32(this.Vo, this.n);
    let sq = 0;
    for (let i = 0; i < this.n; i++) sq += G[i] * G[i];
    const norm = Math.sqrt(sq), scale = o.clipNorm > 0 && norm > o.clipNorm ? o.clipNorm / norm : 1;
    const c1 = 1 - o.beta1 ** t, c2 = 1 - o.beta2 ** t;
    for (const p of this.params) {
      const decay = p.decay ? lr * o.weightDecay : 0;
      for (let i = p.offset; i < p.offset + p.size; i++) {
        const gi = G[i] * scale;
        M[i] = o.beta1 * M[i] + (1 - o.beta1) * gi;
        V[i] = o.beta2 * V[i] + (1 - o.beta2) * gi * gi;
        P[i] -= decay * P[i] + (lr * (M[i] / c1)) / (Math.sqrt(V[i] / c2) + o.adamEps);
      }
    }
    this.repack();
    return loss;
  }

  /** Logits of B images, (B, L). */
  logits(images: Float32Array, B: number): Float32Array {
    this.load(images, null, B);
    this.forward(B);
    return this.mem.f32(this.a.logits, B * this.dims.numLabels).slice();
  }

  /** Accuracy, mean loss and predicted classes over a set, in batches of maxBatch. */
  evaluate(images: Float32Array, labels: ArrayLike<number>): { accuracy: number; loss: number; predictions: Int32Array } {
    const per = images.length / labels.length, L = this.dims.numLabels, n = labels.length, pred = new Int32Array(n);
    let correct = 0, loss = 0;
    for (let s = 0; s < n; s += this.options.maxBatch) {
      const B = Math.min(this.options.maxBatch, n - s);
      const z = this.logits(images.subarray(s * per, (s + B) * per), B);
      for (let b = 0; b < B; b++) {
        const row = z.subarray(b * L, (b + 1) * L);
        let best = 0, m = -Infinity;
        for (let j = 0; j < L; j++) if (row[j] > m) { m = row[j]; best = j; }
        let se = 0;
        for (let j = 0; j < L; j++) se += Math.exp(row[j] - m);
        loss += Math.log(se) - (row[labels[s + b]] - m);
        pred[s + b] = best;
        correct += +(best === labels[s + b]);
      }
    }
    return { accuracy: correct / n, loss: loss / n, predictions: pred };
  }

  /** The model in the Hugging Face layout: config.json, model.safetensors, preprocessor_config.json. */
  files(preprocessing: Record<string, unknown> = {}): Record<string, Uint8Array | string> {
    const d = this.dims;
    const tensors = this.params.map((p) => ({ name: p.name, shape: p.shape, data: this.mem.f32(this.P + p.offset * 4, p.size) }));
    const config = {
      architectures: ['ViTForImageClassification'], model_type: 'vit', hidden_size: d.hiddenSize, num_hidden_layers: d.numLayers,
      num_attention_heads: d.numHeads, intermediate_size: d.intermediateSize, hidden_act: 'gelu', layer_norm_eps: d.layerNormEps,
      image_size: d.imageSize[0] === d.imageSize[1] ? d.imageSize[0] : d.imageSize, patch_size: d.patchSize, num_channels: d.numChannels,
      qkv_bias: true, id2label: Object.fromEntries(this.options.labels.map((l, i) => [String(i), l])),
      label2id: Object.fromEntries(this.options.labels.map((l, i) => [l, i])),
    };
    const C = d.numChannels;
    const pre = { do_resize: true, size: { height: d.imageSize[0], width: d.imageSize[1] }, resample: 2, do_rescale: true,
      rescale_factor: 1 / 255, do_normalize: true, image_mean: Array(C).fill(0.5), image_std: Array(C).fill(0.5), ...preprocessing };
    return {
      'config.json': JSON.stringify(config, null, 2),
      'model.safetensors': encodeSafetensors(tensors, { format: 'pt', trainer: 'vit-wasm', steps: String(this.stepCount) }),
      'preprocessor_config.json': JSON.stringify(pre, null, 2),
    };
  }

  /** Writes {@link files} into a directory (Node). */
  async save(dir: string, preprocessing?: Record<string, unknown>): Promise<void> {
    const fs = await import('node:fs/promises'), path = await import('node:path');
    await fs.mkdir(dir, { recursive: true });
    for (const [name, data] of Object.entries(this.files(preprocessing))) await fs.writeFile(path.join(dir, name), data);
  }

  /** @internal initial weights */
  async initialise(from: ModelLocation | undefined, seed: number): Promise<void> {
    const P = this.mem.f32(this.P, this.n);
    if (from) {
      const files = await modelFiles(from);
      const src = await files.open('model.safetensors');
      try {
        const tensors = await readSafetensorsHeader(src);
        const reader = new TensorReader(tensors.values());
        for (const p of this.params) {
          const t = tensors.get(p.name);
          if (!t) throw new Error(`vit-wasm: ${src.name}: missing tensor '${p.name}' (training starts from Hugging Face names)`);
          if (t.shape.reduce((a, b) => a * b, 1) !== p.size) throw new Error(`vit-wasm: ${src.name}: tensor '${p.name}' has shape [${t.shape}], expected [${p.shape}]`);
          P.set(await reader.read(t), p.offset);
        }
      } finally {
        await src.close();
      }
    } else {
      // HF's ViT initialisation: weights, cls and positions N(0, 0.02); biases 0; norms γ = 1, β = 0
      let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
      const uniform = () => { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; return (s + 0.5) / 4294967296; };
      const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
      for (const p of this.params) {
        const v = P.subarray(p.offset, p.offset + p.size);
        if (p.name.endsWith('layernorm_before.weight') || p.name.endsWith('layernorm_after.weight') || p.name === 'vit.layernorm.weight') v.fill(1);
        else if (p.decay || p.name.endsWith('cls_token') || p.name.endsWith('position_embeddings')) for (let i = 0; i < v.length; i++) v[i] = 0.02 * normal();
        else v.fill(0);
      }
    }
    this.repack();
  }
}

/** Reads the dimensions of a checkpoint's config.json for training. */
async function dimsFrom(where: ModelLocation): Promise<TrainDims> {
  const files = await modelFiles(where);
  const c = parseJson(await files.text('config.json'), `${files.where}/config.json`) as Record<string, number | number[]>;
  const size = c.image_size;
  return {
    imageSize: Array.isArray(size) ? [size[0], size[1]] : [size as number, size as number], patchSize: c.patch_size as number,
    numChannels: (c.num_channels as number) ?? 3, hiddenSize: c.hidden_size as number, numLayers: c.num_hidden_layers as number,
    numHeads: c.num_attention_heads as number, intermediateSize: c.intermediate_size as number,
    numLabels: (c.num_labels as number) ?? Object.keys(c.id2label ?? {}).length, layerNormEps: (c.layer_norm_eps as number) ?? 1e-12,
  };
}

/**
 * A trainer for a ViT of the given dimensions (or of a checkpoint's, with `options.from`).
 * @example
 * const t = await createTrainer(dims, { lr: 1e-3, maxBatch: 64 });
 * const loss = t.step(images, labels);   // images (B, C, H, W) normalized, labels (B)
 * const { accuracy } = t.evaluate(testImages, testLabels);
 * await t.save('my-model');              // loadModel('my-model') classifies with it
 */
export async function createTrainer(dims: TrainDims | null, options: TrainOptions = {}): Promise<Trainer> {
  const d = dims ?? (options.from ? await dimsFrom(options.from) : null);
  if (!d) throw new Error('vit-wasm: createTrainer needs dimensions or options.from');
  for (const [k, v] of Object.entries({ patchSize: d.patchSize, numChannels: d.numChannels, hiddenSize: d.hiddenSize, numLayers: d.numLayers,
    numHeads: d.numHeads, intermediateSize: d.intermediateSize, numLabels: d.numLabels, height: d.imageSize[0], width: d.imageSize[1] })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`vit-wasm: ${k} must be a positive integer, got ${v}`);
  }
  if (d.hiddenSize % d.numHeads) throw new Error(`vit-wasm: hiddenSize ${d.hiddenSize} is not divisible by numHeads ${d.numHeads}`);
  if (d.imageSize[0] % d.patchSize || d.imageSize[1] % d.patchSize) throw new Error(`vit-wasm: image size ${d.imageSize} is not divisible by patchSize ${d.patchSize}`);
  const o = {
    maxBatch: options.maxBatch ?? 64, lr: options.lr ?? 1e-3, weightDecay: options.weightDecay ?? 0.05, beta1: options.beta1 ?? 0.9,
    beta2: options.beta2 ?? 0.999, adamEps: options.adamEps ?? 1e-8, warmupSteps: options.warmupSteps ?? 0, totalSteps: options.totalSteps ?? 0,
    clipNorm: options.clipNorm ?? 1, seed: options.seed ?? 0,
    labels: options.labels ?? Array.from({ length: d.numLabels }, (_, i) => String(i)),
  };
  const { module } = await compileKernels('simd', false);
  const mem = new WasmMemory(false);
  const t = new Trainer(d, o, instantiateKernels(module, mem.memory), mem);
  await t.initialise(options.from, o.seed);
  return t;
}
