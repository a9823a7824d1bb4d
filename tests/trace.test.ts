// model.trace(): every intermediate of the forward against PyTorch float64, tensor by tensor, on
// every Hugging Face fixture; the trace runs the same forward as model.forward (the same bits);
// embeddings (cls and mean-pooled) for one image and a batch.
import { describe, expect, test } from 'vitest';
import { loadModel, type Tensor, type Trace } from '../src/index.js';
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
  for (const f of modelFixtures().filter((x) => x.name.endsWith('-hf'))) {
    test(f.name, async () => {
      const ref = await referenceTrace(f.dir);
      const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
      const n = f.input.length / f.batch,
        image0 = f.input.slice(0, n);
      const trace = await model.trace(image0);
      const c = model.config,
        T = (c.imageSize[0] / c.patchSize) * (c.imageSize[1] / c.patchSize) + 1;
      const ours = named(trace);
      expect(new Set(ours.keys())).toEqual(new Set([...ref.keys()].filter((k) => k !== 'mean_pooled')));
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
      trace.clsToken.data.forEach((v, d) =>
        expect(Math.fround(v + trace.positionEmbeddings.data[d])).toBe(trace.input.data[d]),
      );
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
