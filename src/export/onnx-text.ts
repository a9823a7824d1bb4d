/**
 * ONNX export of a text tower (CLIP's or SigLIP's): input `input_ids` [batch, T] (int64, T fixed
 * at export: pad with the end token, as the text forward does), output `text_embeds` [batch,
 * projection_dim]: token and position embeddings, the image tower's encoder blocks
 * (src/export/onnx.ts) with CLIP's causal mask as their attention bias (SigLIP's: none), the final
 * layernorm of the row a text is read at (CLIP: its end-of-text token; SigLIP: the last), the
 * projection. For running peers such as onnxruntime on exactly what vit-wasm runs.
 */
import type { TextTower } from '../nn/text.js';
import { textPlan } from '../nn/text.js';
import type { WasmMemory } from '../runtime/memory.js';
import { blockConstants, encoderBlock } from './onnx.js';
import { Graph, node, valueInfo } from './onnx-graph.js';

const INT64 = 7;

/** The text tower held in `mem` as an ONNX ModelProto for texts of `T` tokens; `int8` as exportOnnx's. */
export function exportTextOnnx(
  tower: TextTower,
  mem: WasmMemory,
  T: number,
  opts: { int8?: boolean } = {},
): Uint8Array {
  const c = tower.shape,
    D = c.hiddenSize,
    H = c.numHeads,
    P = c.projectionDim;
  if (!Number.isSafeInteger(T) || T < 2 || T > c.maxPositions)
    throw new Error(`vit-wasm: toOnnx: a text length of ${T} tokens; the model takes 2 to ${c.maxPositions}`);
  const end = mem.end;
  try {
    // CLIP's causal mask, as the text forward lays it out (H, T, T), read into the graph as a bias
    const mask = textPlan((n) => mem.alloc(n), mem.f32.bind(mem), c, 1, T).bias || undefined;
    const gr = new Graph(mem, !!opts.int8, c.layerNormEps, [H, T]);
    blockConstants(gr, D, H);
    gr.ints('shape.bd', [0, D]);
    gr.ints('shape.11d', [1, 1, D]);
    gr.ints('axes.1', [1]);
    let x = gr.op(
      'Add',
      [
        gr.op('Gather', [gr.init('tokens', [c.vocabSize, D], tower.tokens), 'input_ids'], 'x.tok', { axis: 0 }),
        gr.init('positions', [1, T, D], tower.positions.slice(0, T * D)),
      ],
      'x.embed',
    );
    tower.weights.layers.forEach((l, i) => {
      x = encoderBlock(gr, D, { ...l, relBias: mask }, `t${i}`, x, c.arch);
    });
    x = gr.norm(x, tower.weights.norm, 'final', D);
    let pooled: string;
    if (tower.endRow === 'last')
      pooled = gr.op('Gather', [x, gr.init('last', [], BigInt64Array.of(BigInt(T - 1)))], 'pooled', { axis: 1 }); // [batch, D]
    else {
      // the end-of-text row: the first highest id (eos_token_id 2), else the first eos_token_id
      const key =
        tower.endRow === 'argmax'
          ? 'input_ids'
          : gr.op(
              'Cast',
              [gr.op('Equal', ['input_ids', gr.init('eos', [], BigInt64Array.of(BigInt(tower.endRow)))], 'is.eos')],
              'is.eos.i',
              { to: 6 },
            );
      const row = gr.op('ArgMax', [key], 'eos.row', { axis: 1, keepdims: 1 }); // [batch, 1]
      const idx = gr.op('Expand', [gr.op('Unsqueeze', [row, 'axes.1'], 'eos.row3'), 'shape.11d'], 'eos.idx'); // [batch, 1, D]
      pooled = gr.op('Reshape', [gr.op('GatherElements', [x, idx], 'pooled.3', { axis: 1 }), 'shape.bd'], 'pooled');
    }
    gr.nodes.push(node('Identity', [gr.linear(pooled, tower.weights.projection, 'proj')], ['text_embeds']));
    return gr.serialise(valueInfo('input_ids', ['batch', T], INT64), valueInfo('text_embeds', ['batch', P]));
  } finally {
    mem.reset(end);
  }
}
