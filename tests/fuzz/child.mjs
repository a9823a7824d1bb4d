// Runs fuzz cases in this process, one JSON line per case on stdout: {"start": [kind, seed]} before
// it, then {"kind", "seed", "outcome", ...} after. The parent (tests/fuzz.test.ts) limits this
// process's memory and time and judges the outcomes; a line "start" without its result tells it
// which case crashed or hung.
//   node tests/fuzz/child.mjs '[["config", 3], ["image", 17]]'
import { loadModel } from '../../dist/index.js';
import { fixtureFiles, makeCase } from './cases.mjs';

const N = 3 * 20 * 25; // h40-hf: 3×20×25 pixels
const input = (b) => new Float32Array(b * N).map((_, i) => Math.sin(i * 0.37));
const tiny = { data: new Uint8Array(8 * 8 * 3).map((_, i) => (i * 37) % 256), width: 8, height: 8 };

const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const errorOf = (e) => ({ name: e?.constructor?.name ?? typeof e, message: String(e?.message ?? e) });
const finite = (a) => Array.from(a).every(Number.isFinite);

/** Results must be finite: NaN must never come back as an answer. */
function checkOut(what, a) {
  if (!finite(a)) throw Object.assign(new Error(`${what} returned non-finite values`), { name: 'NaNAnswer' });
}

let shared = null;
async function sharedModel() {
  shared ??= await loadModel(fixtureFiles('h40-hf'), { threads: 1 });
  return shared;
}

const reference = new Map();
async function referenceLogits(b) {
  if (!reference.has(b)) reference.set(b, Array.from(await (await sharedModel()).forward(input(b), b)));
  return reference.get(b);
}

async function runLoad(c, seed) {
  // every third case through the int8 loader (row blocks quantized in wasm), chosen by seed so the
  // cases themselves stay as they were
  const m = await loadModel(
    c.files,
    seed % 3 === 0 ? { threads: 1, ...c.options, weights: 'int8' } : { threads: 1, ...c.options },
  );
  try {
    const C = m.config.numChannels,
      [H, W] = m.config.imageSize;
    const x = () => new Float32Array(C * H * W).map((_, i) => Math.cos(i));
    // a model without a classifier gives embeddings (its forward refuses, saying so)
    if (C * H * W <= 1e6)
      checkOut(
        m.config.numLabels > 0 ? 'forward' : 'embed',
        m.config.numLabels > 0 ? await m.forward(x(), 1) : await m.embed(x()),
      );
    if (c.forward && m.config.numLabels > 0)
      checkOut(
        'classify',
        (await m.classify(tiny)).map((p) => p.score),
      );
  } finally {
    await m.dispose();
  }
}

async function runApi(c) {
  if (c.call === 'load') {
    const m = await loadModel(c.location ?? fixtureFiles('h40-hf'), c.options ?? { threads: 1 });
    await m.dispose();
    return;
  }
  const m = await sharedModel();
  if (c.call === 'forward') checkOut('forward', await m.forward(...c.args));
  else if (c.call === 'classify')
    checkOut(
      'classify',
      (await m.classify(...c.args)).map((p) => p.score),
    );
  else if (c.call === 'embed') checkOut('embed', await m.embed(...c.args));
  else if (c.call === 'trace') checkOut('trace', (await m.trace(...c.args)).logits.data);
}

const textModels = {};
/**
 * A text case on the small CLIPModel or SiglipModel: embeddings finite; CLIP's probabilities
 * finite and summing to 1, SigLIP's (a sigmoid per label) each in [0, 1].
 */
async function runText(c) {
  const dir = c.model === 'siglip' ? 'zero-shot/h40-siglip-text' : 'zero-shot/h40-clip-text';
  textModels[dir] ??= await loadModel(fixtureFiles(dir), { threads: 1 });
  const m = textModels[dir];
  if (c.call === 'embedText') return checkOut('embedText', await m.embedText(...c.args));
  const ranked = await m.zeroShot(new Float32Array(3 * 25 * 25).fill(0.5), c.labels, { template: c.template });
  const scores = ranked.map((p) => p.score);
  checkOut('zeroShot', scores);
  const wrong =
    c.model === 'siglip'
      ? scores.some((s) => !(s >= 0 && s <= 1)) && 'SigLIP scores outside [0, 1]'
      : Math.abs(scores.reduce((a, b) => a + b, 0) - 1) > 1e-5 && 'zeroShot probabilities do not sum to 1';
  if (wrong) throw Object.assign(new Error(wrong), { name: 'WrongResult' });
}

/** A text model with broken tokenizer files: loaded, its texts embedded (finite), or an Error naming what is wrong. */
async function runTokenizer(c) {
  const m = await loadModel(c.files, { threads: 1 });
  try {
    checkOut('embedText', await m.embedText(c.texts));
  } finally {
    await m.dispose();
  }
}

/** Every call either rejects with an Error or gives the serial result exactly; the pool recovers. */
async function runFaults(c) {
  const m = await loadModel(fixtureFiles('h40-hf'), { threads: c.threads });
  const calls = [];
  const wrong = [];
  // settled at once: a rejection must not sit unhandled while later steps are awaited
  const track = (p) =>
    calls.push(
      p.then(
        (value) => ({ status: 'fulfilled', value }),
        (reason) => ({ status: 'rejected', reason }),
      ),
    );
  try {
    for (const s of c.steps) {
      if (s.fault) {
        try {
          await m._injectFault(s.fault.id, s.fault.kind);
        } catch (e) {
          track(Promise.reject(e));
        }
        continue;
      }
      const b = s.batch;
      const want = await referenceLogits(b);
      const p =
        s.call === 'forward'
          ? m.forward(input(b), b).then((out) => {
              if (JSON.stringify(Array.from(out)) !== JSON.stringify(want))
                wrong.push(`forward batch ${b} differs from serial`);
            })
          : s.call === 'classify'
            ? m.classifyBatch(Array(b).fill(tiny)).then((r) =>
                checkOut(
                  'classify',
                  r.flat().map((p) => p.score),
                ),
              )
            : m.embed(Array(b).fill(input(1))).then((e) => checkOut('embed', e));
      track(p);
    }
    const settled = await Promise.all(calls);
    for (const s of settled)
      if (s.status === 'rejected') {
        const { name, message } = errorOf(s.reason);
        if (name !== 'Error' || !message.startsWith('vit-wasm: ')) wrong.push(`${name}: ${message}`);
      }
    if (!c.disposeEarly) {
      // a fault armed for a forward that never came may take one more call; the next must succeed
      let ok = false;
      const want1 = JSON.stringify(await referenceLogits(1));
      for (let i = 0; i < 2 && !ok; i++)
        ok = await m.forward(input(1), 1).then(
          (out) => JSON.stringify(Array.from(out)) === want1 || wrong.push('recovery forward differs'),
          () => false,
        );
      if (!ok) wrong.push('no call succeeded after the faults');
    }
  } finally {
    await m.dispose();
  }
  if (wrong.length) throw Object.assign(new Error(wrong.join('; ')), { name: 'WrongResult' });
}

for (const [kind, seed] of JSON.parse(process.argv[2])) {
  say({ start: [kind, seed] });
  const c = makeCase(kind, seed);
  let result;
  try {
    if (c.kind === 'load') await runLoad(c, seed);
    else if (c.kind === 'image')
      checkOut(
        'classify',
        (await (await sharedModel()).classify(c.bytes)).map((p) => p.score),
      );
    else if (c.kind === 'api') await runApi(c);
    else if (c.kind === 'text') await runText(c);
    else if (c.kind === 'tokenizer') await runTokenizer(c);
    else await runFaults(c);
    result = { outcome: 'ok' };
  } catch (e) {
    result = { outcome: 'error', ...errorOf(e) };
  }
  say({ kind, seed, ...result });
}
await shared?.dispose();
for (const m of Object.values(textModels)) await m.dispose();
