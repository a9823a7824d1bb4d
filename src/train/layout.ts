/**
 * Where a training run's every buffer lives: the parameters (each placed by its role), gradients,
 * Adam's moments, packed weights, the derived tables (BEiT's relative position biases, DINOv2's
 * positions around its registers) and each worker's activations and backward buffers. One layout,
 * a pure function of its arguments, computed alike by every worker (src/train/core.ts runs on it).
 */
import { PLAIN_VIT, positionedPrefix } from '../nn/arch.js';
import { backwardBuffers, headInput, trainingPlan } from '../nn/plan.js';
import { tokens, type ViTShape } from '../nn/shape.js';
import type { Gradients, LinearGrad, Norm, TrainableLinear, Weights } from '../nn/weights.js';
import { packedSize } from '../runtime/pack.js';
import type { TrainParam } from './spec.js';

export interface Param extends TrainParam {
  offset: number;
  size: number;
}

/** The trainer's parameters (src/train/spec.ts) with each one's offset (in floats) in the parameter buffer. */
function placed(list: TrainParam[]): Param[] {
  let offset = 0;
  return list.map((p) => {
    const size = p.shape.reduce((a, b) => a * b, 1);
    offset += size;
    return { ...p, offset: offset - size, size };
  });
}

/**
 * Every parameter's place in a buffer at `base` laid out as `params`, in the model's terms by each
 * one's role: `lin` makes each linear layer from its W's and b's pointers.
 */
function paramsAt<L>(
  c: ViTShape,
  params: Param[],
  base: number,
  lin: (w: number, b: number, N: number, K: number) => L,
): Weights<L> {
  const offset = new Map(params.map((p) => [p.role, base + p.offset * 4]));
  const at = (role: string) => {
    const ptr = offset.get(role);
    if (ptr === undefined) throw new Error(`vit-wasm: internal: a trainer layout without its ${role}`);
    return ptr;
  };
  const D = c.hiddenSize,
    M = c.intermediateSize;
  const linear = (r: string, N: number, K: number) => lin(at(`${r}.w`), at(`${r}.b`), N, K);
  const norm = (r: string): Norm => ({ g: at(`${r}.g`), b: at(`${r}.b`) });
  return {
    patch: linear('patch', D, c.numChannels * c.patchSize ** 2),
    cls: offset.get('cls'),
    dist: offset.get('dist'),
    registers: offset.get('registers'),
    pos: at('pos'),
    embedNorm: offset.has('embedNorm.g') ? norm('embedNorm') : undefined,
    layers: Array.from({ length: c.numLayers }, (_, i) => ({
      ln1: norm(`${i}.ln1`),
      // query, key and value back to back: one (3D, D) matrix and its (3D) bias
      qkv: lin(at(`${i}.qkv.w.0`), at(`${i}.qkv.b.0`), 3 * D, D),
      proj: linear(`${i}.proj`, D, D),
      ls1: offset.get(`${i}.ls1`),
      ln2: norm(`${i}.ln2`),
      fc1: linear(`${i}.fc1`, M, D),
      fc2: linear(`${i}.fc2`, D, M),
      ls2: offset.get(`${i}.ls2`),
    })),
    norm: norm('norm'),
    head: linear('head', c.numLabels, headInput(c)),
  };
}

/** The forward's weights over the parameters at `base`: each W unpacked there, and packed in a copy from `pack`. */
function trainableAt(
  c: ViTShape,
  params: Param[],
  base: number,
  pack: (N: number, K: number) => number,
): Weights<TrainableLinear> {
  return paramsAt(c, params, base, (raw, b, N, K) => ({ kind: 'trainable', w: pack(N, K), raw, b, N, K }));
}

/** The gradients over a buffer at `base` laid out as the parameters. */
function gradientsAt(c: ViTShape, params: Param[], base: number): Gradients {
  return paramsAt(c, params, base, (dw, db, N, K): LinearGrad => ({ dw, db, N, K }));
}

/**
 * Every pointer of a training run, from a bump allocator at `base`. A pure function of its
 * arguments, so each pool worker computes the same layout as the main thread.
 * Shared: parameters P, gradients G, Adam's moments adamM and adamV, packed linear weights, per-worker norm
 * partials. Per worker: its gradient buffer (G itself when there is one worker), the activations
 * of src/nn/plan.ts's training plan, and the backward's buffers.
 */
export function trainLayout(
  c: ViTShape,
  list: TrainParam[],
  perWorker: number,
  workers: number,
  base: number,
  recompute = false,
) {
  let top = base;
  // 8 floats of slack after every buffer: the backward GEMM reads B rows 8 at a time
  const alloc = (floats: number) => {
    const p = top;
    top = Math.ceil((top + (floats + 8) * 4) / 64) * 64;
    return p;
  };
  const params = placed(list),
    n = params.reduce((s, p) => s + p.size, 0);
  const P = alloc(n),
    G = alloc(n),
    adamM = alloc(n),
    adamV = alloc(n),
    sq = alloc(workers);
  const weights = trainableAt(c, params, P, (N, K) => alloc(packedSize(N, K)));
  // BEiT: each relative position table's (H, T, T) bias, rebuilt from the table after every update
  const tables = params.filter((p) => p.role.endsWith('relTable')),
    TT = c.numHeads * tokens(c).T ** 2,
    biasOf = relBiasAt(c, tables, alloc, TT);
  biasOf.attach(weights);
  // DINOv2 with registers: the positions (no rows for the registers) laid out as the (T, D) table
  // the forward adds, rebuilt after every update; per worker its gradient, gathered back
  const posParam = params.find((p) => p.role === 'pos')!,
    TD = tokens(c).T * c.hiddenSize,
    posTable = posParam.size === TD ? null : alloc(TD);
  if (posTable !== null) weights.pos = posTable;
  const perWorkerBuffers = Array.from({ length: workers }, () => {
    const g = workers === 1 ? G : alloc(n);
    const grads = gradientsAt(c, params, g),
      dbias = relBiasAt(c, tables, alloc, TT); // the tables' biases' gradients, scattered into g's tables
    dbias.attach(grads);
    const dposTable = posTable === null ? null : alloc(TD);
    if (dposTable !== null) grads.pos = dposTable;
    return {
      G: g,
      grads,
      dbias: dbias.list,
      dposTable,
      acts: trainingPlan(alloc, c, { B: perWorker, recompute }),
      bwd: backwardBuffers(alloc, c, perWorker),
    };
  });
  return {
    params,
    n,
    P,
    G,
    adamM,
    adamV,
    sq,
    weights,
    relBias: biasOf.list,
    posTable: posTable === null ? null : { ptr: posTable, param: posParam, rows: positionRows(c) },
    workers: perWorkerBuffers,
    perWorker,
    end: top,
  };
}
export type TrainLayout = ReturnType<typeof trainLayout>;

/** For each row of the positions tensor, its token (its row in the (T, D) table): every token but the registers. */
function positionRows(c: ViTShape): Int32Array {
  const arch = c.arch ?? PLAIN_VIT,
    Pp = positionedPrefix(arch),
    R = arch.prefix.length - Pp;
  return Int32Array.from({ length: tokens(c).T - R }, (_, r) => (r < Pp ? r : r + R));
}

/**
 * An (H, T, T) buffer for each relative position table (BEiT's: per layer, or one shared), and
 * `attach`, which points each layer of a Weights (or Gradients) at its table's.
 */
function relBiasAt(c: ViTShape, tables: Param[], alloc: (floats: number) => number, TT: number) {
  const list = tables.map((table) => ({ table, ptr: alloc(TT) }));
  const attach = <L>(w: Weights<L>) => {
    w.layers.forEach((l, i) => {
      const own = list.find((b) => b.table.role === `${i}.relTable` || b.table.role === 'relTable');
      if (own) l.relBias = own.ptr;
    });
  };
  if (list.length && (c.arch ?? PLAIN_VIT).attentionBias !== 'relative')
    throw new Error('vit-wasm: internal: relative position tables for an arch without their bias');
  return { list, attach };
}
