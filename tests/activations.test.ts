// The MLP's activation as config.json names it (transformers' hidden_act, timm's act_layer):
// relu, the tanh GELUs (gelu_new, gelu_pytorch_tanh, timm's gelu_tanh), quick_gelu (CLIP) and silu,
// each against a float64 reference (tests/fixtures/generate.py activations), through the forward
// (1 and 2 threads), the trace and the ONNX export; other names are refused naming the field.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { createTrainer, loadModel } from '../src/index.js';
import { FIXTURES, fixtureDirs, maxDiff, onnxOutput, readF32 } from './helpers.js';

const DIR = path.join(FIXTURES, 'activations');
interface Expected {
  batch: number;
  logits: number[];
}

const cases = fixtureDirs<Expected>(DIR).map((c) => ({ ...c, input: readF32(path.join(c.dir, 'input.f32')) }));

test('six: every hidden_act besides the exact GELU, and timm act_layer gelu_tanh', () => {
  expect(cases.map((c) => c.name)).toEqual([
    'h40-hf-gelu_new',
    'h40-hf-gelu_pytorch_tanh',
    'h40-hf-quick_gelu',
    'h40-hf-relu',
    'h40-hf-silu',
    'h40-timm-gelu_tanh',
  ]);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test('the logits of the float64 reference, 1 and 2 threads; the trace gives the same', async () => {
    for (const threads of [1, 2]) {
      const m = await loadModel(c.dir, { threads });
      const logits = await m.forward(c.input, c.exp.batch);
      const { diff, scale } = maxDiff(logits, c.exp.logits);
      console.log(
        `${name} (${threads} threads): max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
      );
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
      const t = await m.trace(c.input.subarray(0, m.inputSize));
      expect(Array.from(t.logits.data)).toEqual(Array.from(logits.subarray(0, m.config.numLabels)));
      await m.dispose();
    }
  });

  test('the ONNX export computes the same activation (onnxruntime-node)', async () => {
    const m = await loadModel(c.dir, { threads: 1 });
    const ours = await m.forward(c.input, c.exp.batch);
    const out = await onnxOutput(m, c.input, c.exp.batch);
    const { diff, scale } = maxDiff(out.data, ours);
    expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
    await m.dispose();
  });
});

describe('activations vit-wasm does not compute are refused naming the field', () => {
  const files = (name: string, edit: (c: Record<string, unknown>) => void) => {
    const dir = path.join(DIR, name),
      out: Record<string, Uint8Array | string> = {};
    for (const f of readdirSync(dir)) out[f] = new Uint8Array(readFileSync(path.join(dir, f)));
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    edit(cfg);
    out['config.json'] = JSON.stringify(cfg);
    return out;
  };
  test.each([
    [
      'hidden_act mish',
      files('h40-hf-relu', (c) => Object.assign(c, { hidden_act: 'mish' })),
      /hidden_act "mish" is not supported; vit-wasm computes gelu, gelu_python, gelu_new/,
    ],
    [
      'hidden_act a number',
      files('h40-hf-relu', (c) => Object.assign(c, { hidden_act: 3 })),
      /hidden_act 3 is not supported/,
    ],
    [
      'hidden_act toString',
      files('h40-hf-relu', (c) => Object.assign(c, { hidden_act: 'toString' })),
      /hidden_act "toString" is not supported/,
    ],
    [
      'timm act_layer hard_swish',
      files('h40-timm-gelu_tanh', (c) => Object.assign(c.model_args as object, { act_layer: 'hard_swish' })),
      /act_layer "hard_swish" is not supported; vit-wasm computes gelu, gelu_tanh, quick_gelu/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });

  test("the plain ViT's trainer refuses another hidden_act by name (the families' activations train: tests/finetune.test.ts)", async () => {
    await expect(createTrainer(null, { from: path.join(DIR, 'h40-hf-quick_gelu'), maxBatch: 2 })).rejects.toThrow(
      /has hidden_act 'quick_gelu': training computes the exact GELU \('gelu'\) only/,
    );
  });
});
