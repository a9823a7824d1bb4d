// model.trace(): every intermediate of the forward against PyTorch float64, tensor by tensor, on
// every Hugging Face fixture; the trace runs the same forward as model.forward (the same bits);
// embeddings (cls and mean-pooled) for one image and a batch.
import { describe, expect, test } from 'vitest';
import { attentionRollout, loadModel, positionSimilarity, type Tensor, type Trace } from '../src/index.js';
import { maxDiff, modelFixtures, referenceTrace } from './helpers.js';

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

/** Our trace's tensors under the names generate.py's vit_trace writes. */
function named(t: Trace): Map<string, Tensor> {
  const m = new Map<string, Tensor>([
    ['pixels', t.pixels],
    ['patches', t.flattened],
    ['patch_embeddings', t.patchEmbeddings],
    ['tokens', t.input],
    ['cls', t.clsOutput],
    ['logits', t.logits],
    ['probabilities', t.probabilities],
  ]);
  t.layers.forEach((l, i) => {
    const parts: [string, Tensor][] = [
      ['ln1', l.layernorm1],
      ['q', l.q],
      ['k', l.k],
      ['v', l.v],
      ['scores', l.scores],
      ['probs', l.attention],
      ['heads', l.heads],
      ['concat', l.concat],
      ['proj', l.projection],
      ['residual1', l.residual],
      ['ln2', l.layernorm2],
      ['fc1', l.mlpPreActivation],
      ['gelu', l.mlpHidden],
      ['mlp', l.mlpOutput],
      ['output', l.output],
    ];
    for (const [k, v] of parts) m.set(`layers.${i}.${k}`, v);
  });
  return m;
}

describe('trace against PyTorch float64, every intermediate', () => {
  for (const f of modelFixtures().filter((x) => /^h\d+-hf$/.test(x.name))) {
    test(f.name, async () => {
      const ref = await referenceTrace(f.dir);
      const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
      const n = f.input.length / f.batch,
        image0 = f.input.slice(0, n);
      const trace = await model.trace(image0);
      const c = model.config,
        T = (c.imageSize[0] / c.patchSize) * (c.imageSize[1] / c.patchSize) + 1;
      const ours = named(trace);
      expect(new Set(ours.keys())).toEqual(
        new Set([...ref.keys()].filter((k) => !['mean_pooled', 'rollout', 'position_similarity'].includes(k))),
      );
      let worst = 0;
      for (const [name, t] of ours) {
        const want = ref.get(name)!;
        expect(t.data.length, name).toBe(t.dims.reduce((a, b) => a * b, 1));
        const { diff, scale } = maxDiff(t.data, want);
        worst = Math.max(worst, diff / Math.max(1, scale));
        expect(diff, name).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      }
      console.log(
        `${f.name}: ${ours.size} tensors, worst |ours − torch| / max(1, |torch|) = ${worst.toExponential(2)}`,
      );
      // shapes as documented
      expect(trace.patches.dims).toEqual([T - 1, c.numChannels, c.patchSize, c.patchSize]);
      expect(trace.layers[0].scores.dims).toEqual([c.numHeads, T, T]);
      expect(trace.layers[0].mlpHidden.dims).toEqual([T, c.intermediateSize]);
      // token 0 of the input is the cls token plus position embedding 0
      trace.clsToken!.data.forEach((v, d) =>
        expect(Math.fround(v + trace.positionEmbeddings.data[d])).toBe(trace.input.data[d]),
      );
      // what the guide draws besides: attention rollout and the position embeddings' similarity
      for (const [name, t] of [
        ['rollout', attentionRollout(trace.layers.map((l) => l.attention))],
        ['position_similarity', positionSimilarity(trace.positionEmbeddings)],
      ] as const) {
        const want = ref.get(name)!,
          d = maxDiff(t.data, want);
        expect(t.data.length, name).toBe(want.length);
        expect(d.diff, name).toBeLessThanOrEqual(1e-5 * Math.max(1, d.scale));
      }
      // the same forward: the trace's logits are model.forward's, bit for bit
      expect(bits(trace.logits.data)).toEqual(bits(await model.forward(image0, 1)));
      // embeddings: cls pooling is the trace's cls output; mean pooling is PyTorch's; a batch equals one by one
      expect(bits(await model.embed(image0))).toEqual(bits(trace.clsOutput.data));
      const mean = await model.embed(image0, { pooling: 'mean' }),
        m = maxDiff(mean, ref.get('mean_pooled')!);
      expect(m.diff).toBeLessThanOrEqual(1e-5 * Math.max(1, m.scale));
      const image1 = f.input.slice(n, 2 * n),
        D = c.hiddenSize;
      for (const pooling of ['cls', 'mean'] as const) {
        const both = await model.embed([image0, image1], { pooling });
        expect(both.length).toBe(2 * D);
        expect(bits(both.subarray(D))).toEqual(bits(await model.embed(image1, { pooling })));
      }
      await model.dispose();
    });
  }
});

test('attentionRollout: head fusion, discarding, and what it refuses', () => {
  // two layers of two heads over three tokens
  const map = (rows: number[][][]): Tensor => ({ data: Float32Array.from(rows.flat(2)), dims: [rows.length, 3, 3] });
  const a = map([
    [
      [1, 0, 0],
      [0.5, 0.5, 0],
      [0.2, 0.3, 0.5],
    ],
    [
      [0.6, 0.4, 0],
      [0, 1, 0],
      [0.1, 0.1, 0.8],
    ],
  ]);
  const r = attentionRollout([a, a], { headFusion: 'max' });
  expect(r.dims).toEqual([3, 3]);
  for (let i = 0; i < 3; i++) expect(r.data.subarray(i * 3, i * 3 + 3).reduce((x, y) => x + y, 0)).toBeCloseTo(1, 6);
  // max fusion then (A + I)/2, renormalised, row 0 by hand: fused row 0 = [1, 0.4, 0] → [1, 0.2, 0]/1.2 … squared
  const A0 = [1 / 1.2, 0.2 / 1.2, 0];
  const fusedRow1 = [0.5, 1, 0].map((v, j) => 0.5 * v + (j === 1 ? 0.5 : 0));
  const s1 = fusedRow1.reduce((x, y) => x + y, 0);
  const A1 = fusedRow1.map((v) => v / s1);
  expect(r.data[0]).toBeCloseTo(A0[0] * A0[0] + A0[1] * A1[0], 6);
  expect(attentionRollout([a], { discardRatio: 0.5 }).data.every(Number.isFinite)).toBe(true);
  expect(() => attentionRollout([])).toThrow('vit-wasm: attentionRollout: no layers');
  expect(() => attentionRollout([a], { discardRatio: 1 })).toThrow('discardRatio must be in [0, 1)');
  expect(() =>
    attentionRollout([
      a,
      map([
        [
          [1, 0, 0],
          [0, 1, 0],
          [0, 0, 1],
        ],
      ]),
    ]),
  ).toThrow('layer 1 has dims (1,3,3)');
});
