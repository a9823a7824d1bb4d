// How far quantized weights move a model's outputs: for each model, the f32 model and its int8 and
// f16 copies (vit-wasm quantize) run the same N random inputs (seeded normals, the scale of
// normalized pixels); prints top-1 agreement with f32 and the relative logit error (max and mean of
// max|Δ| / max|logit| per input), plus the model.safetensors sizes. Forms: int8 and f16 files
// (dequantized at load), int8 with the classifier kept f32, the int8 forward (weights: 'int8') from
// the f32 model and from the int8 file, and onnxruntime-node on the export-onnx --int8 graph.
//   node bench/quantize-accuracy.mjs [--inputs N] [--threads T] [MODEL_DIR | PRESET]...
// Defaults: the PyTorch fixtures in tests/fixtures/models and the three presets. Run `npm run build` first.
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../dist/index.js';
import { PRESETS, randomModelFiles } from '../dist/presets.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { inputs: { type: 'string', default: '200' }, threads: { type: 'string', default: '2' } },
});
const N = Number(values.inputs),
  threads = Number(values.threads);
const ROOT = new URL('..', import.meta.url).pathname;
const CLI = path.join(ROOT, 'bin/vit-wasm.js');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-qa-'));
const { execFileSync } = await import('node:child_process');

function normals(seed) {
  let s = seed >>> 0;
  const u = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

const targets = positionals.length
  ? positionals
  : [
      ...readdirSync(path.join(ROOT, 'tests/fixtures/models')).map((m) => path.join(ROOT, 'tests/fixtures/models', m)),
      ...Object.keys(PRESETS),
    ];

console.log(`${N} random inputs per model, ${threads} threads`);
console.log(
  'model'.padEnd(18),
  'form'.padEnd(14),
  'size KB'.padStart(10),
  'x f32'.padStart(6),
  'top-1 agree'.padStart(12),
  'max rel err'.padStart(12),
  'mean rel err'.padStart(13),
);
for (const t of targets) {
  let dir = t;
  if (t in PRESETS) {
    dir = path.join(tmp, t);
    for (const [name, data] of Object.entries(randomModelFiles(PRESETS[t], 0))) {
      if (name === 'config.json') execFileSync('mkdir', ['-p', dir]);
      writeFileSync(path.join(dir, name), data);
    }
  }
  const name = path.basename(dir);
  // form → [directory, loadModel options]; 'fwd' rows run the int8 forward (u7 activations too)
  const quantize = (tag, ...args) => {
    const out = path.join(tmp, `${name}-${tag}`);
    execFileSync(process.execPath, [CLI, 'quantize', '--model', dir, '--out', out, ...args]);
    return out;
  };
  const i8 = quantize('int8', '--to', 'int8'),
    i8head = quantize('int8-head', '--to', 'int8', '--keep', 'head');
  const forms = {
    int8: [i8, {}],
    'int8 keep head': [i8head, {}],
    f16: [quantize('f16', '--to', 'f16'), {}],
    'int8 fwd': [dir, { weights: 'int8' }],
    'int8 fwd file': [i8head, { weights: 'int8' }],
  };
  const size = (d) => {
    const files = readdirSync(d).filter((f) => f.endsWith('.safetensors') && !f.startsWith('trace'));
    return files.reduce((a, f) => a + statSync(path.join(d, f)).size, 0);
  };
  const ref = await loadModel(dir, { threads });
  const rnd = normals(1234),
    inputs = Array.from({ length: N }, () => Float32Array.from({ length: ref.inputSize }, rnd));
  const want = [];
  for (const x of inputs) want.push(await ref.forward(x));
  // the peer on the same weights: onnxruntime-node on the export-onnx --int8 graph (u8 activations
  // per tensor, int8 weights per channel), when it is installed
  const ort = await import('onnxruntime-node').then((m) => m.default ?? m).catch(() => null);
  const ortGraph = ort ? ref.toOnnx({ int8: true }) : null;
  const [C, H, W] = [ref.config.numChannels, ...ref.config.imageSize];
  await ref.dispose();
  const L = want[0].length;
  const argmax = (a) => a.reduce((m, v, i) => (v > a[m] ? i : m), 0);
  // how close the f32 top-1 is to its runner-up: (top1 − top2) / max |logit|, median over the inputs
  const margins = want
    .map((w) => {
      const [a, b] = [...w].sort((x, y) => y - x);
      return (a - b) / Math.max(...w.map(Math.abs));
    })
    .sort((a, b) => a - b);
  console.log(
    name.padEnd(18),
    'f32'.padEnd(14),
    (size(dir) / 1024).toFixed(0).padStart(10),
    `   top-1 margin: median ${margins[N >> 1].toExponential(2)}, 5th percentile ${margins[Math.floor(N / 20)].toExponential(2)} of the logit scale`,
  );
  const opens = Object.entries(forms).map(([to, [formDir, opts]]) => [
    to,
    formDir,
    () => loadModel(formDir, { threads, ...opts }),
  ]);
  if (ort)
    opens.push([
      'ort-node int8',
      null,
      async () => {
        const session = await ort.InferenceSession.create(ortGraph, { intraOpNumThreads: threads });
        return {
          forward: async (x) =>
            (await session.run({ pixel_values: new ort.Tensor('float32', x, [1, C, H, W]) })).logits.data,
          dispose: () => session.release(),
        };
      },
    ]);
  for (const [to, formDir, open] of opens) {
    const m = await open();
    let agree = 0,
      maxRel = 0,
      sumRel = 0;
    for (let i = 0; i < N; i++) {
      const got = await m.forward(inputs[i]);
      if (argmax(got) === argmax(want[i])) agree++;
      let d = 0,
        s = 0;
      for (let j = 0; j < L; j++) {
        d = Math.max(d, Math.abs(got[j] - want[i][j]));
        s = Math.max(s, Math.abs(want[i][j]));
      }
      maxRel = Math.max(maxRel, d / s);
      sumRel += d / s;
    }
    await m.dispose();
    console.log(
      ''.padEnd(18),
      to.padEnd(14),
      (formDir ? (size(formDir) / 1024).toFixed(0) : '').padStart(10),
      (formDir ? (size(formDir) / size(dir)).toFixed(3) : '').padStart(6),
      `${((100 * agree) / N).toFixed(1)}%`.padStart(12),
      maxRel.toExponential(2).padStart(12),
      (sumRel / N).toExponential(2).padStart(13),
    );
  }
}
rmSync(tmp, { recursive: true });
