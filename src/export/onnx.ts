/**
 * ONNX export of a loaded ViT: the same weights as an ONNX graph (opset 17; input `pixel_values`
 * [batch, C, H, W], output `logits` [batch, labels]) for running peers such as onnxruntime on
 * exactly what vit-wasm runs. The protobuf writer and graph builder are src/export/onnx-graph.ts.
 */

import type { ViTConfig } from '../io/config.js';
import { type Arch, PLAIN_VIT, registerCount } from '../nn/arch.js';
import { GATES } from '../nn/ops.js';
import { tokens } from '../nn/shape.js';
import { type Layer, linearWeight, type MapHead, type Weights } from '../nn/weights.js';
import type { WasmMemory } from '../runtime/memory.js';
import { Graph, node, valueInfo } from './onnx-graph.js';

/** Image → patch embeddings (a stride-p convolution, as the checkpoints define it) → [cls; pe] + pos. */
function embeddings(gr: Graph, c: ViTConfig, w: Weights): string {
  const D = c.hiddenSize,
    p = c.patchSize,
    { T } = tokens(c);
  const pw = linearWeight(gr.mem, w.patch);
  gr.op(
    'Conv',
    ['pixel_values', gr.init('patch.w', [D, c.numChannels, p, p], pw), gr.init('patch.b', [D], gr.f32(w.patch.b, D))],
    'pe.conv',
    { kernel_shape: [p, p], strides: [p, p] },
  );
  gr.op('Transpose', [gr.op('Reshape', ['pe.conv', 'shape.bdn'], 'pe.flat')], 'pe', { perm: [0, 2, 1] });
  // cls token for every image: Expand to [batch, 1, D]
  gr.op('Shape', ['pixel_values'], 'batch', { start: 0, end: 1 });
  gr.op('Concat', ['batch', 'const.1', 'const.D'], 'shape.cls', { axis: 0 });
  // DeiT: the distillation token after the cls token; DINOv2 and timm: the registers (their position rows are zero)
  const prefix: string[] = [];
  if (w.cls !== undefined)
    prefix.push(gr.op('Expand', [gr.init('cls', [1, 1, D], gr.f32(w.cls, D)), 'shape.cls'], 'cls.b'));
  if (w.dist !== undefined)
    prefix.push(gr.op('Expand', [gr.init('dist', [1, 1, D], gr.f32(w.dist, D)), 'shape.cls'], 'dist.b'));
  const R = registerCount(c.arch ?? PLAIN_VIT);
  if (w.registers !== undefined && R > 0) {
    gr.op('Concat', ['batch', gr.ints('const.R', [R]), 'const.D'], 'shape.regs', { axis: 0 });
    prefix.push(gr.op('Expand', [gr.init('reg', [1, R, D], gr.f32(w.registers, R * D)), 'shape.regs'], 'reg.b'));
  }
  return gr.op(
    'Add',
    [gr.op('Concat', [...prefix, 'pe'], 'tokens', { axis: 1 }), gr.init('pos', [1, T, D], gr.f32(w.pos, T * D))],
    'x.embed',
  );
}

/**
 * One pre-norm encoder block: x + attention(ln1(x)), then + MLP(ln2(·)) with the arch's activation
 * (a gated MLP: fc1's output as (B, T, 2, M), act of the first ⊙ the second).
 */
export function encoderBlock(gr: Graph, D: number, l: Layer, L: string, x: string, arch: Arch): string {
  const qkv = gr.op(
    'Transpose',
    [gr.op('Reshape', [gr.linear(gr.norm(x, l.ln1, `${L}.ln1`, D), l.qkv, `${L}.qkv`), 'shape.qkv'], `${L}.qkv5`)],
    `${L}.qkv.t`,
    { perm: [2, 0, 3, 1, 4] },
  );
  const [q, k, v] = ['q', 'k', 'v'].map((n, j) => gr.op('Gather', [qkv, `idx.${j}`], `${L}.${n}`, { axis: 0 }));
  let s = gr.op(
    'Mul',
    [gr.op('MatMul', [q, gr.op('Transpose', [k], `${L}.kt`, { perm: [0, 1, 3, 2] })], `${L}.qk`), 'scale'],
    `${L}.scores`,
  );
  if (l.relBias !== undefined) {
    // BEiT's relative position bias (1, H, T, T), one initializer per table the layers share
    const H = gr.hw[0],
      T = gr.hw[1],
      name = `relbias.${l.relBias}`;
    if (!gr.has(name)) gr.init(name, [1, H, T, T], gr.f32(l.relBias, H * T * T));
    s = gr.op('Add', [s, name], `${L}.scores.b`);
  }
  const a = gr.op('MatMul', [gr.op('Softmax', [s], `${L}.probs`, { axis: -1 }), v], `${L}.av`);
  const heads = gr.op(
    'Reshape',
    [gr.op('Transpose', [a], `${L}.av.t`, { perm: [0, 2, 1, 3] }), 'shape.btd'],
    `${L}.heads`,
  );
  x = gr.op('Add', [x, gr.linear(heads, l.proj, `${L}.proj`)], `${L}.x1`);
  const u = gr.linear(gr.norm(x, l.ln2, `${L}.ln2`, D), l.fc1, `${L}.fc1`);
  let h: string;
  if (arch.mlp === 'gated') {
    const halves = gr.op('Reshape', [u, 'shape.glu'], `${L}.fc1.2`);
    const [g, m] = [0, 1].map((j) => gr.op('Gather', [halves, `idx.${j}`], `${L}.glu${j}`, { axis: 2 }));
    h = gr.op('Mul', [activation(gr, g, L, arch.activation), m], `${L}.glu`);
  } else h = activation(gr, u, L, arch.activation);
  return gr.op('Add', [x, gr.linear(h, l.fc2, `${L}.fc2`)], `${L}.x2`);
}

/**
 * The MLP's activation of u: the exact GELU as ½u(1 + erf(u/√2)); ReLU; the others as the sigmoid
 * gate the kernels compute, u·σ(a·(u + c·u³)) (src/nn/ops.ts, GATES).
 */
function activation(gr: Graph, u: string, L: string, act: Arch['activation']): string {
  if (act === 'gelu') {
    const erf1 = gr.op('Add', [gr.op('Erf', [gr.op('Div', [u, 'sqrt2'], `${L}.u2`)], `${L}.erf`), 'one'], `${L}.erf1`);
    return gr.op('Mul', [gr.op('Mul', [u, erf1], `${L}.ue`), 'half'], `${L}.gelu`);
  }
  if (act === 'relu') return gr.op('Relu', [u], `${L}.relu`);
  const [a, c] = GATES[act];
  let z = u;
  if (c !== 0) {
    const cube = gr.op('Mul', [gr.op('Mul', [u, u], `${L}.u2`), u], `${L}.u3`);
    z = gr.op('Add', [u, gr.op('Mul', [cube, gr.scalar(`gate.c.${L}`, c)], `${L}.cu3`)], `${L}.inner`);
  }
  const s = gr.op('Sigmoid', [gr.op('Mul', [z, gr.scalar(`gate.a.${L}`, a)], `${L}.z`)], `${L}.sig`);
  return gr.op('Mul', [u, s], `${L}.act`);
}

/**
 * What the head reads (src/nn/vit.ts, pool): the final-normed cls token, or the mean of the patch
 * tokens normed before (every token) or after (the mean: timm's fc_norm).
 */
function pooled(gr: Graph, c: ViTConfig, w: Weights, x: string): string {
  const arch = c.arch ?? PLAIN_VIT,
    D = c.hiddenSize;
  if (arch.pooling === 'cls') return gr.op('Gather', [gr.norm(x, w.norm, 'norm', D), 'idx.0'], 'cls.out', { axis: 1 });
  if (arch.pooling === 'map' && w.mapHead) return mapPool(gr, c, w.mapHead, gr.norm(x, w.norm, 'norm', D));
  const P = arch.prefix.length;
  const mean = (t: string, name: string) =>
    gr.op(
      'ReduceMean',
      [
        gr.op(
          'Slice',
          [t, gr.ints('pool.start', [P]), gr.ints('pool.end', [2 ** 31 - 1]), gr.ints('pool.axis', [1])],
          'pool.patches',
        ),
      ],
      name,
      { axes: [1], keepdims: 0 },
    );
  if (arch.pooling === 'clsMean') {
    // DINOv2's head input: the final-normed cls token and the mean of the final-normed patch tokens
    const normed = gr.norm(x, w.norm, 'norm', D);
    const cls = gr.op('Gather', [normed, 'idx.0'], 'pool.cls', { axis: 1 });
    return gr.op('Concat', [cls, mean(normed, 'pool.mean')], 'cls.out', { axis: 1 });
  }
  if (arch.finalNorm === 'none') return mean(x, 'cls.out'); // CLIPForImageClassification: no norm before the head
  return arch.finalNorm === 'tokens'
    ? mean(gr.norm(x, w.norm, 'norm', D), 'cls.out')
    : gr.norm(mean(x, 'pool.mean'), w.norm, 'cls.out', D);
}

/** The attention pool (src/nn/vit.ts): the probe's constant query over K, V of the normed tokens; o + MLP(layernorm(o)). */
function mapPool(gr: Graph, c: ViTConfig, m: MapHead, normed: string): string {
  const D = c.hiddenSize,
    H = c.numHeads,
    dh = D / H;
  gr.ints('shape.kv', [0, 0, 2, H, dh]);
  gr.ints('shape.bd', [0, D]);
  const kv = gr.op(
    'Transpose',
    [gr.op('Reshape', [gr.linear(normed, m.kv, 'map.kv'), 'shape.kv'], 'map.kv5')],
    'map.kv.t',
    {
      perm: [2, 0, 3, 1, 4],
    },
  );
  const k = gr.op('Gather', [kv, 'idx.0'], 'map.k', { axis: 0 }),
    v = gr.op('Gather', [kv, 'idx.1'], 'map.v', { axis: 0 });
  const q = gr.init('map.q', [1, H, 1, dh], gr.f32(m.q, D));
  const s = gr.op(
    'Mul',
    [gr.op('MatMul', [q, gr.op('Transpose', [k], 'map.kt', { perm: [0, 1, 3, 2] })], 'map.qk'), 'scale'],
    'map.scores',
  );
  const a = gr.op('MatMul', [gr.op('Softmax', [s], 'map.probs', { axis: -1 }), v], 'map.av');
  const heads = gr.op(
    'Reshape',
    [gr.op('Transpose', [a], 'map.av.t', { perm: [0, 2, 1, 3] }), 'shape.bd'],
    'map.heads',
  );
  const o = gr.linear(heads, m.proj, 'map.proj');
  const u = gr.linear(gr.norm(o, m.norm, 'map.norm', D), m.fc1, 'map.fc1');
  return gr.op(
    'Add',
    [o, gr.linear(activation(gr, u, 'map', (c.arch ?? PLAIN_VIT).activation), m.fc2, 'map.fc2')],
    'cls.out',
  );
}

/** The output, its name and size: `logits`, an image tower's `image_embeds`, or else `pooler_output` (embed()'s). */
function head(gr: Graph, c: ViTConfig, w: Weights, pooledOut: string): [string, string, number] {
  if (w.projection) return [gr.linear(pooledOut, w.projection, 'head.proj'), 'image_embeds', c.projectionDim ?? 0];
  // HF's pooler_output: a ViTModel's pooler where it has one (tanh(dense(cls))), else what embed() gives
  if (!w.head && w.pooler)
    return [
      gr.op('Tanh', [gr.linear(pooledOut, w.pooler, 'pooler.dense')], 'pooler.tanh'),
      'pooler_output',
      c.hiddenSize,
    ];
  if (!w.head) return [pooledOut, 'pooler_output', c.hiddenSize];
  let logits = gr.linear(pooledOut, w.head, 'head.logits');
  if (w.headDist) {
    // DeiT's distilled head: the final-normed distillation token through its own head, the two averaged
    const dist = gr.op('Gather', ['norm', 'idx.1'], 'dist.out', { axis: 1 }); // the final norm's output (cls pooling)
    const both = gr.op('Add', [logits, gr.linear(dist, w.headDist, 'head.dist')], 'head.sum');
    logits = gr.op('Mul', [both, 'half'], 'head.mean');
  }
  return [logits, 'logits', c.numLabels];
}

/** The constants every encoder block reads (encoderBlock): shapes, Gather indices, the softmax scale, GELU's. */
export function blockConstants(gr: Graph, D: number, H: number): void {
  gr.ints('shape.btd', [0, 0, D]);
  gr.ints('shape.qkv', [0, 0, 3, H, D / H]);
  gr.scalarInt('idx.0', 0);
  gr.scalarInt('idx.1', 1);
  gr.scalarInt('idx.2', 2);
  gr.scalar('scale', 1 / Math.sqrt(D / H));
  gr.scalar('sqrt2', Math.SQRT2);
  gr.scalar('one', 1);
  gr.scalar('half', 0.5);
}

/**
 * Serialises the model held in `mem` as an ONNX ModelProto. With `int8`, every linear layer but the
 * patch embedding (a Conv) is dynamically quantized as onnxruntime's quantize_dynamic and
 * transformers.js's q8 models do it: DynamicQuantizeLinear on the activations (u8, per tensor),
 * MatMulInteger against int8 weights (symmetric, one scale per output channel, as `vit-wasm
 * quantize` stores them), then Cast, scale and bias in f32. Its output is `logits`, or for a model
 * without a classifier what its embed() gives: `image_embeds` (an image tower) or `pooler_output`.
 */
export function exportOnnx(c: ViTConfig, w: Weights, mem: WasmMemory, opts: { int8?: boolean } = {}): Uint8Array {
  const D = c.hiddenSize,
    H = c.numHeads;
  const gr = new Graph(mem, !!opts.int8, c.layerNormEps, [H, tokens(c).T]);
  gr.ints('shape.bdn', [0, D, -1]);
  blockConstants(gr, D, H);
  gr.ints('const.1', [1]);
  gr.ints('const.D', [D]);

  const arch = c.arch ?? PLAIN_VIT;
  if (arch.mlp === 'gated') gr.ints('shape.glu', [0, 0, 2, c.intermediateSize]);
  let x = embeddings(gr, c, w);
  if (arch.embedNorm && w.embedNorm) x = gr.norm(x, w.embedNorm, 'prenorm', D); // CLIP's pre_layrnorm
  w.layers.forEach((l, i) => {
    x = encoderBlock(gr, D, l, `l${i}`, x, arch);
  });
  const [out, name, size] = head(gr, c, w, pooled(gr, c, w, x));
  gr.nodes.push(node('Identity', [out], [name]));

  return gr.serialise(
    valueInfo('pixel_values', ['batch', c.numChannels, ...c.imageSize]),
    valueInfo(name, ['batch', size]),
  );
}
