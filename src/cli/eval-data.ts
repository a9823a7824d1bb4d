/**
 * `vit-wasm eval --model M --data DIR|MANIFEST`: accuracy, top-k accuracy, per-class accuracy and
 * the confusion matrix of a model on a labelled image set, as a table or `--json`. The set's class
 * names are matched to the model's labels by name; images are preprocessed as the model says.
 */
import { parseArgs } from 'node:util';
import { prepareJpegDecoder } from '../io/image/jpeg.js';
import { preprocess } from '../io/image/preprocess.js';
import { loadModel } from '../model/load.js';
import { ImageCache, openImageSet } from './dataset.js';
import { positiveFlag } from './train-args.js';

type UsageErrorCtor = new (m: string) => Error;

/** What the evaluation found; `confusion[t][p]` counts images of class t predicted as p (model label order). */
export interface EvalReport {
  model: string;
  data: string;
  images: number;
  skipped: string[];
  accuracy: number;
  topK: number;
  topKAccuracy: number;
  perClass: { label: string; images: number; accuracy: number | null }[];
  labels: string[];
  confusion: number[][];
}

/** Runs the model over the set in batches; returns the report. */
async function evaluateSet(
  modelDir: string,
  data: string,
  o: { threads?: number; weights: 'f32' | 'int8'; batch: number; top: number; skipBad: boolean },
): Promise<EvalReport> {
  await prepareJpegDecoder();
  const model = await loadModel(modelDir, { weights: o.weights, ...(o.threads ? { threads: o.threads } : {}) });
  try {
    const labels = model.config.labels,
      L = labels.length,
      C = model.config.numChannels as 1 | 3,
      per = model.inputSize;
    const set = openImageSet(data, labels); // names → the model's label indices
    const cache = new ImageCache(0),
      x = new Float32Array(o.batch * per),
      confusion = labels.map(() => new Array<number>(L).fill(0)),
      skipped: string[] = [];
    let right = 0,
      rightK = 0,
      seen = 0;
    for (let s = 0; s < set.samples.length; s += o.batch) {
      const batch = set.samples.slice(s, s + o.batch),
        ys: number[] = [];
      for (const smp of batch) {
        try {
          preprocess(cache.read(smp.file), model.preprocessing, C, x.subarray(ys.length * per, (ys.length + 1) * per));
          ys.push(smp.label);
        } catch (e) {
          if (!o.skipBad) throw new Error(`${(e as Error).message} (--skip-bad leaves bad images out and counts them)`);
          skipped.push(`${smp.file}: ${(e as Error).message.replace(/^vit-wasm: /, '')}`);
        }
      }
      if (!ys.length) continue;
      const z = await model.forward(x.subarray(0, ys.length * per), ys.length);
      ys.forEach((y, b) => {
        const row = Array.from(z.subarray(b * L, (b + 1) * L)),
          ranked = row.map((v, j) => [v, j]).sort((p, q) => q[0] - p[0] || p[1] - q[1]);
        confusion[y][ranked[0][1]]++;
        right += +(ranked[0][1] === y);
        rightK += +ranked.slice(0, o.top).some(([, j]) => j === y);
      });
      seen += ys.length;
    }
    if (seen === 0) throw new Error(`vit-wasm: ${data}: no image could be read`);
    return {
      model: modelDir,
      data,
      images: seen,
      skipped,
      accuracy: right / seen,
      topK: o.top,
      topKAccuracy: rightK / seen,
      perClass: labels.map((label, t) => {
        const n = confusion[t].reduce((a, b) => a + b, 0);
        return { label, images: n, accuracy: n ? confusion[t][t] / n : null };
      }),
      labels,
      confusion,
    };
  } finally {
    await model.dispose();
  }
}

/** The report as a table: accuracy, top-k, per class, and the confusion matrix (rows true, columns predicted). */
function printReport(r: EvalReport): void {
  const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
  console.log(
    `${r.model} on ${r.data}: accuracy ${pct(r.accuracy)} (${Math.round(r.accuracy * r.images)} of ${r.images})` +
      `, top-${r.topK} ${pct(r.topKAccuracy)}${r.skipped.length ? `; ${r.skipped.length} bad images skipped` : ''}\n`,
  );
  const w = Math.max(5, ...r.labels.map((l, i) => `${i} ${l}`.length)) + 1;
  console.log('per class');
  for (const c of r.perClass)
    if (c.images) console.log(`  ${c.label.padEnd(w)} ${pct(c.accuracy!).padStart(8)} of ${c.images}`);
  console.log('\nconfusion matrix (rows: true class, columns: predicted, in label order)');
  const cw = Math.max(5, String(r.images).length + 1);
  console.log(`${''.padEnd(w + 2)}${r.labels.map((_, j) => String(j).padStart(cw)).join('')}`);
  r.confusion.forEach((row, i) => {
    if (r.perClass[i].images)
      console.log(`  ${`${i} ${r.labels[i]}`.padEnd(w)}${row.map((v) => String(v).padStart(cw)).join('')}`);
  });
}

/** `vit-wasm eval --model M --data DIR|MANIFEST [--top K] [--json] [--threads N] [--weights int8] [--batch B] [--skip-bad]`. */
export async function evalDataCommand(argv: string[], Usage: UsageErrorCtor): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      data: { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean' },
      threads: { type: 'string' },
      weights: { type: 'string' },
      batch: { type: 'string' },
      'skip-bad': { type: 'boolean' },
    },
  });
  if (!v.model) throw new Usage('eval needs --model DIR');
  const weights = v.weights ?? 'f32';
  if (weights !== 'f32' && weights !== 'int8') throw new Usage(`--weights must be f32 or int8, got '${weights}'`);
  const r = await evaluateSet(v.model, v.data!, {
    threads: v.threads === undefined ? undefined : positiveFlag(v.threads, '--threads', 1, Usage, true),
    weights,
    batch: positiveFlag(v.batch, '--batch', 32, Usage, true),
    top: positiveFlag(v.top, '--top', 5, Usage, true),
    skipBad: v['skip-bad'] === true,
  });
  if (v.json) console.log(JSON.stringify(r, null, 1));
  else printReport(r);
  return 0;
}
