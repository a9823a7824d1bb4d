/**
 * The weights of a recognised checkpoint in wasm memory (src/io/checkpoint.ts decides which
 * tensors and at what size): every tensor copied once, converted to f32; linear weights packed,
 * or quantized to int8; LayerScale folded into the layers it scales; positions laid out (T, D) and
 * resized as the checkpoint's library does; BEiT's bias tables and the attention pool's query
 * built once.
 */
import { PLAIN_VIT, positionedPrefix, registerCount } from '../nn/arch.js';
import { beitIndex, fc1Width, tokens } from '../nn/shape.js';
import type { Int8Linear, Layer, MapHead, Norm, PackedLinear, Weights } from '../nn/weights.js';
import type { KernelExports } from '../runtime/kernels.js';
import type { WasmMemory } from '../runtime/memory.js';
import { packedSize, packedSizeI8, packRows, packRowsI8, packRowsScaled, paddedSize } from '../runtime/pack.js';
import type { ViTConfig } from './config.js';
import type { Names } from './families/index.js';
import { interpolatePositions, type PositionResize } from './positions.js';
import type { CheckpointTensors } from './tensors.js';

/** A tensor name a family's names must give for its arch (a family description's bug otherwise). */
function part<V>(name: V | undefined, what: string): V {
  if (name === undefined) throw new Error(`vit-wasm: internal: the family's names give no ${what}`);
  return name;
}

/** Builds {@link Weights} in wasm memory from a checkpoint's tensors. */
export class WeightLoader {
  constructor(
    private readonly t: CheckpointTensors,
    private readonly mem: WasmMemory,
    /** With kernels here, the encoder's linear layers are held in int8 only. */
    private readonly int8: KernelExports | undefined,
  ) {}

  /** Every parameter, in the order the model uses them. */
  async weights(
    cfg: ViTConfig,
    n: Names,
    own: [number, number] = cfg.imageSize,
    resize: PositionResize = 'bicubic',
  ): Promise<Weights> {
    const { hiddenSize: D, intermediateSize: M, numLabels: NL, numChannels: C, patchSize: p } = cfg;
    const arch = cfg.arch ?? PLAIN_VIT;
    const patch = await this.linear([n.patchW], n.patchB ? [n.patchB] : null, D, C * p * p, [D, C, p, p]);
    const cls = arch.prefix[0] === 'cls' ? await this.vector(part(n.cls, 'class token'), D) : undefined;
    const pos = await this.positions(cfg, n.pos, own, resize);
    const layers: Layer[] = [],
      biases = new Map<string, number>(); // a shared table is built once
    for (let i = 0; i < cfg.numLayers; i++) {
      const l = n.layer(i);
      let relBias: number | undefined;
      if (arch.attentionBias === 'relative') {
        const table = part(l.relBias, 'relative position bias table');
        relBias = biases.get(table) ?? (await this.relativeBias(table, cfg, own));
        biases.set(table, relBias);
      }
      // LayerScale folded into the branch's last layer (src/nn/arch.ts)
      const [ls1, ls2] = arch.layerScale
        ? [await this.gamma(part(l.ls1, 'LayerScale'), D), await this.gamma(part(l.ls2, 'LayerScale'), D)]
        : [undefined, undefined];
      layers.push({
        ln1: await this.norm(l.ln1, D),
        qkv: await this.encoderLinear(l.qkvW, cfg.qkvBias ? l.qkvB : null, 3 * D, D),
        proj: await this.encoderLinear([l.projW], [l.projB], D, D, ls1),
        ln2: await this.norm(l.ln2, D),
        fc1: await this.encoderLinear([l.fc1W], [l.fc1B], fc1Width(cfg), D), // 2M for a gated MLP
        fc2: await this.encoderLinear([l.fc2W], [l.fc2B], D, M, ls2),
        ...(relBias === undefined ? {} : { relBias }),
      });
    }
    const weights: Weights = {
      patch,
      cls,
      pos,
      layers,
      norm: await this.norm([n.normG, n.normB], D),
    };
    const headK = arch.pooling === 'clsMean' ? 2 * D : D;
    if (arch.head === 'linear' || arch.head === 'distilled')
      weights.head = await this.linear([n.headW], [n.headB], NL, headK);
    // DeiT: the distillation token, and the head on it where the arch has one
    if (arch.prefix.includes('dist')) weights.dist = await this.vector(part(n.dist, 'distillation token'), D);
    const regs = registerCount(arch);
    if (regs) weights.registers = await this.vector(part(n.registers, 'register tokens'), regs * D, [regs, D]);
    if (arch.pooling === 'map') weights.mapHead = await this.mapHead(part(n.mapHead, 'attention-pool head'), cfg);
    // Hugging Face's pooler, where the checkpoint has one: embed({ pooling: 'pooler' }) computes it
    if (n.pooler && this.t.tensors.has(n.pooler[0]) && arch.prefix[0] === 'cls')
      weights.pooler = await this.linear([n.pooler[0]], [n.pooler[1]], D, D);
    if (arch.embedNorm) weights.embedNorm = await this.norm(part(n.embedNorm, 'pre-norm'), D);
    if (arch.head === 'projection')
      weights.projection = n.projectionTransposed
        ? await this.columns(part(n.projection, 'projection'), part(cfg.projectionDim, 'projection size'), D)
        : await this.linear([part(n.projection, 'projection')], null, part(cfg.projectionDim, 'projection size'), D);
    if (arch.head === 'distilled')
      weights.headDist = await this.linear(
        [part(n.headDistW, 'distillation head')],
        [part(n.headDistB, 'distillation head')],
        NL,
        D,
      );
    return weights;
  }

  /**
   * The position table (T, D) at cfg's size from the checkpoint's (its own image size `own`):
   * a zero row for each prefix token without a position embedding (Arch.positions), the patch
   * grid resized as its library does (`resize`) unless the library keeps it (the same patch count
   * from a square image, as Hugging Face and timm decide).
   */
  private async positions(cfg: ViTConfig, name: string, own: [number, number], resize: PositionResize) {
    const D = cfg.hiddenSize,
      p = cfg.patchSize,
      arch = cfg.arch ?? PLAIN_VIT,
      { T, Np } = tokens(cfg),
      P = arch.prefix.length,
      Pp = positionedPrefix(arch),
      grid: [number, number] = [own[0] / p, own[1] / p],
      T0 = Pp + grid[0] * grid[1];
    const pos = this.mem.alloc(T * D);
    if (arch.positions === 'none') return pos; // no absolute positions (BEiT): a zero table
    await this.t.take(name, [T0, D], (d) => {
      const keep =
        (own[0] === cfg.imageSize[0] && own[1] === cfg.imageSize[1]) ||
        (grid[0] * grid[1] === Np && cfg.imageSize[0] === cfg.imageSize[1]);
      const table = keep
        ? d
        : interpolatePositions(d, Pp, grid, D, [cfg.imageSize[0] / p, cfg.imageSize[1] / p], resize);
      const out = this.mem.f32(pos, T * D);
      out.fill(0);
      // the positioned prefix tokens come first among the prefix (cls, then dist; registers have none)
      out.set(table.subarray(0, Pp * D), 0);
      out.set(table.subarray(Pp * D), P * D);
    });
    return pos;
  }

  /**
   * The attention-pool head: its query computed once here, probe · Wqᵀ + bq in float64 (rounded
   * to f32), as every image's is the same; K and V packed as one (2D, D) layer.
   */
  private async mapHead(m: NonNullable<Names['mapHead']>, cfg: ViTConfig): Promise<MapHead> {
    const D = cfg.hiddenSize,
      M = cfg.intermediateSize,
      mem = this.mem;
    let probe = new Float32Array(D);
    await this.t.take(m.probe, [D], (d) => {
      probe = d.slice();
    });
    // Wq (D, D), bq (D) and the kv rows (2D, D), bkv (2D): from torch's in_proj, or timm's q and kv
    let wq = new Float32Array(0),
      bq = new Float32Array(0),
      wkv = new Float32Array(0),
      bkv = new Float32Array(0);
    if ('inProj' in m.qkv) {
      const [w, b] = m.qkv.inProj;
      await this.t.take(w, [3 * D, D], (d) => {
        wq = d.slice(0, D * D);
        wkv = d.slice(D * D);
      });
      await this.t.take(b, [3 * D], (d) => {
        bq = d.slice(0, D);
        bkv = d.slice(D);
      });
    } else {
      const { q, kv } = m.qkv;
      await this.t.take(q[0], [D, D], (d) => (wq = d.slice()));
      await this.t.take(q[1], [D], (d) => (bq = d.slice()));
      await this.t.take(kv[0], [2 * D, D], (d) => (wkv = d.slice()));
      await this.t.take(kv[1], [2 * D], (d) => (bkv = d.slice()));
    }
    const q = mem.alloc(D),
      qv = mem.f32(q, D);
    for (let n = 0; n < D; n++) {
      let s = bq[n];
      for (let k = 0; k < D; k++) s += probe[k] * wq[n * D + k];
      qv[n] = s;
    }
    const kv: PackedLinear = {
      kind: 'packed',
      w: mem.alloc(packedSize(2 * D, D)),
      b: mem.alloc(paddedSize(2 * D)),
      N: 2 * D,
      K: D,
    };
    packRows(mem.f32(kv.w, packedSize(2 * D, D)), wkv, 0, 2 * D, D);
    mem.f32(kv.b, 2 * D).set(bkv);
    return {
      q,
      kv,
      proj: await this.linear([m.proj[0]], [m.proj[1]], D, D),
      norm: await this.norm(m.norm, D),
      fc1: await this.linear([m.fc1[0]], [m.fc1[1]], M, D),
      fc2: await this.linear([m.fc2[0]], [m.fc2[1]], D, M),
    };
  }

  /**
   * BEiT's relative position bias (H, T, T) from its table ((2Wh−1)(2Ww−1) + 3, H): bias[h, i, j] =
   * table[index[i, j], h], the index as BeitRelativePositionBias builds it for the Wh×Ww window.
   * At another size than the checkpoint's own (`own`), the table's (2Wh−1)×(2Ww−1) grid is first
   * resized bilinearly to the new window's, its last 3 rows (the cls token's) kept, as
   * BeitRelativePositionBias.forward does for every resolution.
   */
  private async relativeBias(name: string, cfg: ViTConfig, own: [number, number]): Promise<number> {
    const H = cfg.numHeads,
      p = cfg.patchSize,
      wh = cfg.imageSize[0] / p,
      ww = cfg.imageSize[1] / p,
      [oh, ow] = [own[0] / p, own[1] / p],
      { T } = tokens(cfg),
      idx = beitIndex(wh, ww),
      ptr = this.mem.alloc(H * T * T);
    const oldGrid: [number, number] = [2 * oh - 1, 2 * ow - 1],
      newGrid: [number, number] = [2 * wh - 1, 2 * ww - 1];
    await this.t.take(name, [oldGrid[0] * oldGrid[1] + 3, H], (stored) => {
      let table = stored;
      if (oh !== wh || ow !== ww) {
        // HF reads the old grid as (2Ww−1, 2Wh−1): the same as ours only for a square window
        if (oh !== ow)
          throw new Error(
            `vit-wasm: imageSize ${cfg.imageSize.join('x')}: BEiT resizes its relative position bias from a square window only; the checkpoint's is ${oh}x${ow}`,
          );
        const n = oldGrid[0] * oldGrid[1];
        table = interpolatePositions(stored.subarray(0, n * H), 0, oldGrid, H, newGrid, 'bilinear');
        const full = new Float32Array((newGrid[0] * newGrid[1] + 3) * H);
        full.set(table);
        full.set(stored.subarray(n * H), newGrid[0] * newGrid[1] * H);
        table = full;
      }
      const out = this.mem.f32(ptr, H * T * T);
      for (let h = 0; h < H; h++) for (let k = 0; k < T * T; k++) out[h * T * T + k] = table[idx[k] * H + h];
    });
    return ptr;
  }

  /** A linear layer without bias stored as its transpose, (K, N), applied as x · W (open_clip's visual.proj). */
  /** A linear layer stored as its transpose, a (K, N) matrix used as x · W (open_clip's projections). */
  async columns(name: string, N: number, K: number): Promise<PackedLinear> {
    const w = this.mem.alloc(packedSize(N, K)),
      b = this.mem.alloc(paddedSize(N)),
      rows = new Float32Array(N * K);
    await this.t.take(name, [K, N], (d) => {
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) rows[n * K + k] = d[k * N + n];
    });
    packRows(this.mem.f32(w, packedSize(N, K)), rows, 0, N, K);
    return { kind: 'packed', w, b, N, K };
  }

  /** LayerScale's γ (D), to fold into a linear layer's rows. */
  private async gamma(name: string, D: number): Promise<Float32Array> {
    let g = new Float32Array(D);
    await this.t.take(name, [D], (d) => {
      g = d.slice();
    });
    return g;
  }

  /** A tensor of `len` floats into the wasm memory (`shape` checked). */
  async vector(name: string, len: number, shape = [len]): Promise<number> {
    const ptr = this.mem.alloc(len);
    await this.t.take(name, shape, (d) => this.mem.f32(ptr, len).set(d));
    return ptr;
  }

  /** A layernorm's γ and β (D each). */
  async norm([g, b]: [string, string], D: number): Promise<Norm> {
    return { g: await this.vector(g, D), b: await this.vector(b, D) };
  }

  /** Biases `bs` (one per stacked part; none, or a null part: zeros) into b (N), each times γ[n] when given. */
  private async biases(bs: (string | null)[] | null, b: number, N: number, gamma?: Float32Array): Promise<void> {
    if (!bs) return;
    const part = N / bs.length;
    for (let i = 0; i < bs.length; i++) {
      const name = bs[i];
      if (name !== null) await this.t.take(name, [part], (d) => this.mem.f32(b + i * part * 4, part).set(d));
    }
    if (gamma) scaleRows(this.mem.f32(b, N), gamma, 0, N, 1);
  }

  /**
   * A linear layer whose W is stacked from `ws` (each [N/ws.length, K]), e.g. HF's query|key|value;
   * with `gamma` (N), LayerScale folded in: row n of W and b[n] times γ[n].
   */
  async linear(
    ws: string[],
    bs: (string | null)[] | null,
    N: number,
    K: number,
    wShape?: number[],
    gamma?: Float32Array,
  ): Promise<PackedLinear> {
    const mem = this.mem,
      w = mem.alloc(packedSize(N, K)),
      b = mem.alloc(paddedSize(N));
    const part = N / ws.length;
    for (let i = 0; i < ws.length; i++)
      await this.t.weightRows(ws[i], wShape ?? [part, K], (d, scale, r0, n) => {
        const dst = mem.f32(w, packedSize(N, K)),
          row0 = i * part + r0;
        if (scale) packRowsScaled(dst, d, gamma ? scaleRows(scale.slice(), gamma, row0, n, 1) : scale, row0, n, K);
        else
          packRows(
            dst,
            gamma ? scaleRows((d as Float32Array).slice(), gamma, row0, n, K) : (d as Float32Array),
            row0,
            n,
            K,
          );
      });
    await this.biases(bs, b, N, gamma);
    return { kind: 'packed', w, b, N, K };
  }

  /**
   * An encoder linear layer. With `int8` it holds int8 weights only (no f32 copy: a quarter of the
   * memory): an I8 tensor's own integers and scales, or f32/f16/bf16 quantized here per channel,
   * symmetric, as `vit-wasm quantize` writes them, so its files give back the same integers.
   * With `gamma` (N), LayerScale folded in (an I8 tensor's row scales times γ).
   */
  async encoderLinear(
    ws: string[],
    bs: (string | null)[] | null,
    N: number,
    K: number,
    gamma?: Float32Array,
  ): Promise<PackedLinear | Int8Linear> {
    const k = this.int8;
    if (!k) return this.linear(ws, bs, N, K, undefined, gamma);
    const mem = this.mem,
      part = N / ws.length,
      { bytes, Kp } = packedSizeI8(N, K),
      pad = paddedSize(N),
      wq = mem.alloc(bytes / 4),
      wsum = mem.alloc(pad),
      sw = mem.alloc(pad),
      b = mem.alloc(pad);
    for (let i = 0; i < ws.length; i++)
      await this.t.weightRows(ws[i], [part, K], (d, scale, r0, n) => {
        const row0 = i * part + r0;
        if (scale) {
          // an I8 tensor (rows as they are): its own integers and scales, packed
          packRowsI8(
            new Int8Array(mem.memory.buffer, wq, bytes),
            new Int32Array(mem.memory.buffer, wsum, pad),
            d,
            row0,
            n,
            K,
          );
          mem.f32(sw + row0 * 4, n).set(gamma ? scaleRows(scale.slice(), gamma, row0, n, 1) : scale);
          return;
        }
        // f32 rows: quantized and packed in wasm (quantizeRows' rule) from a scratch block above the weights
        mem.scratch(n * K, (tmp) => {
          mem.f32(tmp, n * K).set(d as Float32Array);
          if (gamma) scaleRows(mem.f32(tmp, n * K), gamma, row0, n, K);
          k.quantize_pack_weights_i8(tmp, n, K, wq, Kp, wsum, sw, row0);
        });
      });
    await this.biases(bs, b, N, gamma);
    return { kind: 'int8', wq, wsum, sw, Kp, b, N, K };
  }
}

/** rows (n, K) of a matrix starting at row `row0`, in place: row r times γ[row0 + r] (as f32). Returns `rows`. */
function scaleRows(rows: Float32Array, gamma: Float32Array, row0: number, n: number, K: number): Float32Array {
  for (let r = 0; r < n; r++) {
    const g = gamma[row0 + r];
    for (let k = 0; k < K; k++) rows[r * K + k] *= g;
  }
  return rows;
}
