/**
 * The vit-wasm command line: `main` reads the command and runs it. USAGE (usage.ts) lists every command
 * (demo, guide, classify, zero-shot, index, search, train, eval, init, export-onnx, quantize, bench) and its flags; train and
 * eval live in train-cli.ts, bench in bench.ts, guide in guide.ts.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { convertModel } from '../export/convert.js';
import { quantizeModel } from '../export/quantize.js';
import { PRESETS, randomModelFiles } from '../io/presets.js';
import { modelFiles } from '../io/source.js';
import { loadModel } from '../model/load.js';
import type { Prediction, ViTModel } from '../model/model.js';
import type { LoadOptions } from '../model/options.js';
import { DEFAULT_LIMITS, type Limits } from '../platform/limits.js';
import { importAllOptional, MissingPackageError } from '../platform/optional.js';
import { packageFile } from '../platform/paths.js';
import { WasmMemory } from '../runtime/memory.js';
import { benchChild, benchPrep, runBench } from './bench.js';
import { guideCommand } from './guide.js';
import { indexCommand, searchCommand } from './search.js';
import { evalCommand, trainCommand } from './train-cli.js';
import { USAGE } from './usage.js';

/** The model this package ships (trained by `vit-wasm train --dataset mnist`), and its sample digits. */
export const DEFAULT_MODEL = fileURLToPath(packageFile('assets/mnist-vit/'));
export const SAMPLE_DIGITS = fileURLToPath(packageFile('assets/digits/'));

class UsageError extends Error {}

function positiveInt(v: string | undefined, flag: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a positive integer, got '${v}'`);
  return n;
}

/** `--limit NAME=N` flags (N an integer, `1e9` or `Infinity`) as loadModel's `limits`. */
function parseLimits(flags: string[]): Partial<Limits> {
  const out: Partial<Limits> = {};
  for (const f of flags) {
    const m = /^(\w+)=(.+)$/.exec(f);
    if (!m || !(m[1] in DEFAULT_LIMITS))
      throw new UsageError(
        `--limit must be NAME=N with NAME one of ${Object.keys(DEFAULT_LIMITS).join(', ')}; got '${f}'`,
      );
    const n = Number(m[2]);
    if (!(n === Infinity || (Number.isSafeInteger(n) && n > 0)))
      throw new UsageError(`--limit ${m[1]} must be a positive integer or Infinity, got '${m[2]}'`);
    out[m[1] as keyof Limits] = n;
  }
  return out;
}

/** --image-size N or HxW, as loadModel's imageSize. */
function imageSizeFlag(v: string | undefined): number | [number, number] | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?:x(\d+))?$/.exec(v);
  if (!m) throw new UsageError(`--image-size must be N or HxW (pixels), got '${v}'`);
  return m[2] === undefined ? Number(m[1]) : [Number(m[1]), Number(m[2])];
}

/** classify's flags that are loadModel options: --threads, --simd, --weights, --limit, --image-size, --transforms. */
function loadFlags(values: {
  threads?: string;
  simd?: string;
  weights?: string;
  limit?: string[];
  'image-size'?: string;
  transforms?: string;
}): LoadOptions {
  const weights = values.weights ?? 'f32';
  if (weights !== 'f32' && weights !== 'int8') throw new UsageError(`--weights must be f32 or int8, got '${weights}'`);
  const simd = values.simd ?? 'auto';
  if (simd !== 'auto' && simd !== 'simd' && simd !== 'relaxed')
    throw new UsageError(`--simd must be auto, simd or relaxed, got '${simd}'`);
  return {
    // undefined: loadModel's default
    threads: values.threads === undefined ? undefined : positiveInt(values.threads, '--threads', 1),
    simd,
    limits: parseLimits(values.limit ?? []),
    weights,
    imageSize: imageSizeFlag(values['image-size']),
    transforms: values.transforms,
  };
}

async function classify(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      top: { type: 'string' },
      json: { type: 'boolean' },
      threads: { type: 'string' },
      simd: { type: 'string' },
      weights: { type: 'string' },
      limit: { type: 'string', multiple: true },
      'image-size': { type: 'string' },
      transforms: { type: 'string' },
    },
  });
  if (positionals.length === 0) throw new UsageError('classify needs at least one IMAGE');
  const topK = positiveInt(values.top, '--top', 5);
  const model: ViTModel = await loadModel(values.model ?? DEFAULT_MODEL, loadFlags(values));
  return predictEach(model, positionals, !!values.json, (image) => model.classify(image, { topK }));
}

/** zero-shot: each image's labels ranked by words (a CLIPModel's text tower), as classify prints them. */
async function zeroShotCmd(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      labels: { type: 'string' },
      template: { type: 'string', multiple: true },
      top: { type: 'string' },
      json: { type: 'boolean' },
      threads: { type: 'string' },
      simd: { type: 'string' },
      limit: { type: 'string', multiple: true },
    },
  });
  if (!values.model) throw new UsageError('zero-shot needs --model DIR (a CLIPModel with its tokenizer files)');
  if (!values.labels) throw new UsageError('zero-shot needs --labels "cat,dog,car"');
  if (positionals.length === 0) throw new UsageError('zero-shot needs at least one IMAGE');
  const labels = values.labels.split(',').map((l) => l.trim());
  if (labels.some((l) => l === '')) throw new UsageError(`--labels has an empty label: '${values.labels}'`);
  const topK = positiveInt(values.top, '--top', labels.length);
  const model = await loadModel(values.model, loadFlags(values));
  return predictEach(model, positionals, !!values.json, (image) =>
    model.zeroShot(image, labels, { template: values.template, topK }),
  );
}

/**
 * classify's and zero-shot's loop: each image on its own, so one unreadable file is reported and
 * the rest still ranked; each printed as it comes (its name, then a label and its probability a
 * line), or all as JSON at the end. Disposes the model; exit code 1 when any image failed.
 */
async function predictEach(
  model: ViTModel,
  images: string[],
  json: boolean,
  predict: (image: string) => Promise<Prediction[]>,
): Promise<number> {
  let failures = 0;
  const results: { image: string; predictions: Prediction[] }[] = [];
  try {
    for (const image of images) {
      let predictions: Prediction[];
      try {
        predictions = await predict(image);
      } catch (e) {
        failures++;
        console.error((e as Error).message);
        continue;
      }
      results.push({ image, predictions });
      if (json) continue;
      console.log(image);
      const width = Math.max(...predictions.map((p) => p.label.length));
      for (const p of predictions)
        console.log(`  ${p.label.padEnd(width)}  ${(100 * p.score).toFixed(2).padStart(6)}%`);
    }
  } finally {
    await model.dispose();
  }
  if (json) console.log(JSON.stringify(results, null, 2));
  return failures ? 1 : 0;
}

async function init(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { preset: { type: 'string' }, out: { type: 'string' }, seed: { type: 'string' } },
  });
  if (!values.preset || !(values.preset in PRESETS))
    throw new UsageError(
      `init needs --preset ${Object.keys(PRESETS).join('|')}${values.preset ? `, got '${values.preset}'` : ''}`,
    );
  if (!values.out) throw new UsageError('init needs --out DIR');
  const seed = values.seed === undefined ? 0 : Number(values.seed);
  if (!Number.isSafeInteger(seed)) throw new UsageError(`--seed must be an integer, got '${values.seed}'`);
  mkdirSync(values.out, { recursive: true });
  for (const [name, data] of Object.entries(randomModelFiles(PRESETS[values.preset], seed)))
    writeFileSync(path.join(values.out, name), data);
  console.log(`wrote ${values.preset} (seed ${seed}) to ${values.out}`);
  return 0;
}

async function exportOnnxCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      model: { type: 'string' },
      out: { type: 'string' },
      int8: { type: 'boolean' },
      text: { type: 'boolean' },
      'text-length': { type: 'string' },
    },
  });
  if (!values.model) throw new UsageError('export-onnx needs --model DIR');
  if (!values.out) throw new UsageError('export-onnx needs --out FILE');
  const textLength =
    values['text-length'] === undefined ? undefined : positiveInt(values['text-length'], '--text-length', 1);
  const model = await loadModel(values.model, { threads: 1 });
  try {
    const bytes = model.toOnnx({ int8: values.int8, text: values.text, textLength });
    writeFileSync(values.out, bytes);
    console.log(`wrote ${values.out} (${(bytes.length / 2 ** 20).toFixed(1)} MB${values.int8 ? ', int8' : ''})`);
  } finally {
    await model.dispose();
  }
  return 0;
}

async function quantizeCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { model: { type: 'string' }, out: { type: 'string' }, to: { type: 'string' }, keep: { type: 'string' } },
  });
  if (!values.model) throw new UsageError('quantize needs --model DIR');
  if (!values.out) throw new UsageError('quantize needs --out DIR');
  const to = values.to ?? 'int8';
  if (to !== 'int8' && to !== 'f16') throw new UsageError(`--to must be int8 or f16, got '${to}'`);
  const keep = (values.keep ?? '').split(',').filter(Boolean);
  const bad = keep.find((k) => k !== 'patch' && k !== 'head');
  if (bad) throw new UsageError(`--keep takes patch and/or head (layers left in f32), got '${bad}'`);
  const files = await quantizeModel(await modelFiles(values.model), new WasmMemory(false), to, {
    patch: !keep.includes('patch'),
    head: !keep.includes('head'),
  });
  mkdirSync(values.out, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(values.out, name), data);
  const size = (f: string) =>
    typeof files[f] === 'string' ? Buffer.byteLength(files[f] as string) : (files[f] as Uint8Array).length;
  console.log(`wrote ${values.out}: model.safetensors ${(size('model.safetensors') / 2 ** 20).toFixed(2)} MB (${to})`);
  return 0;
}

async function convertCmd(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { model: { type: 'string' }, out: { type: 'string' } } });
  if (!values.model) throw new UsageError('convert needs --model DIR');
  if (!values.out) throw new UsageError('convert needs --out DIR');
  const { files, from, tensors } = await convertModel(await modelFiles(values.model));
  mkdirSync(values.out, { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(path.join(values.out, name), data);
  console.log(`wrote ${values.out}: ${Object.keys(files).join(', ')} (${tensors} tensors from ${path.basename(from)})`);
  return 0;
}

const list = (v: string | undefined, flag: string, dflt: number[]) =>
  v === undefined ? dflt : v.split(',').map((x) => positiveInt(x.trim(), flag, 1));

async function bench(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      preset: { type: 'string' },
      model: { type: 'string' },
      threads: { type: 'string' },
      batch: { type: 'string' },
      runs: { type: 'string' },
      rounds: { type: 'string' },
      peers: { type: 'boolean' },
      relaxed: { type: 'boolean' },
      weights: { type: 'string' },
      json: { type: 'string' },
      chart: { type: 'string' },
    },
  });
  const weights = (values.weights ?? 'f32').split(',').filter(Boolean);
  const badForm = weights.find((w) => w !== 'f32' && w !== 'f16' && w !== 'int8');
  if (badForm) throw new UsageError(`--weights takes f32, f16 and/or int8, got '${badForm}'`);
  if (!values.preset === !values.model) throw new UsageError('bench needs exactly one of --preset NAME or --model DIR');
  if (values.preset && !(values.preset in PRESETS))
    throw new UsageError(`--preset must be one of ${Object.keys(PRESETS).join(', ')}, got '${values.preset}'`);
  if (values.peers) {
    // checked before any work starts, not in the rows' child processes
    await importAllOptional(['onnxruntime-web', 'onnxruntime-node'], 'bench --peers');
  }
  await runBench({
    preset: values.preset,
    model: values.model,
    threads: list(values.threads, '--threads', [1, 2]),
    batch: list(values.batch, '--batch', [1]),
    runs: positiveInt(values.runs, '--runs', 10),
    rounds: positiveInt(values.rounds, '--rounds', 1),
    peers: !!values.peers,
    relaxed: !!values.relaxed,
    forms: (['f16', 'int8'] as const).filter((f) => weights.includes(f)),
    json: values.json,
    chart: values.chart,
    log: (l) => console.log(l),
  });
  return 0;
}

async function demo(): Promise<number> {
  const files = readdirSync(SAMPLE_DIGITS)
    .filter((f) => f.endsWith('.png'))
    .sort();
  const model = await loadModel(DEFAULT_MODEL);
  try {
    console.log(
      `${DEFAULT_MODEL} on ${files.length} held-out digits (${model.threads} threads, ${model.simd} build)\n`,
    );
    console.log('image                 true  predicted  probability');
    let right = 0;
    for (const f of files) {
      const truth = /label-(\d)/.exec(f)?.[1] ?? '?';
      const [top] = await model.classify(`${SAMPLE_DIGITS}${f}`, { topK: 1 });
      right += +(top.label === truth);
      console.log(
        `${f.padEnd(20)}  ${truth.padStart(4)}  ${top.label.padStart(9)}  ${(100 * top.score).toFixed(2).padStart(10)}%  ${top.label === truth ? '' : '✗'}`,
      );
    }
    console.log(`\n${right} of ${files.length} right`);
    console.log('\nSee every step of this model live, drawing your own digit: npx vit-wasm guide');
  } finally {
    await model.dispose();
  }
  return 0;
}

/** Runs the CLI on `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      console.log(USAGE);
      return cmd ? 0 : 2;
    }
    if (cmd === '--version' || cmd === '-v') {
      console.log(JSON.parse(readFileSync(packageFile('package.json'), 'utf8')).version);
      return 0;
    }
    if (cmd === 'classify') return await classify(rest);
    if (cmd === 'zero-shot') return await zeroShotCmd(rest);
    if (cmd === 'index') return await indexCommand(rest, UsageError);
    if (cmd === 'search') return await searchCommand(rest, UsageError);
    if (cmd === 'demo') return await demo();
    if (cmd === 'guide') return await guideCommand(rest, UsageError);
    if (cmd === 'train') return await trainCommand(rest, UsageError);
    if (cmd === 'eval') return await evalCommand(rest, UsageError);
    if (cmd === 'init') return await init(rest);
    if (cmd === 'export-onnx') return await exportOnnxCmd(rest);
    if (cmd === 'quantize') return await quantizeCmd(rest);
    if (cmd === 'convert') return await convertCmd(rest);
    if (cmd === 'bench') return await bench(rest);
    if (cmd === '__bench-prep') {
      console.log(JSON.stringify(await benchPrep(JSON.parse(rest[0]))));
      return 0;
    }
    if (cmd === '__bench-child') {
      // one bench row in a fresh process; exit explicitly, as onnxruntime-web's threads would keep it alive
      console.log(JSON.stringify(await benchChild(JSON.parse(rest[0]))));
      process.exit(0);
    }
    throw new UsageError(`unknown command '${cmd}'`);
  } catch (e) {
    if (e instanceof MissingPackageError) {
      console.error(e.message);
      return 2;
    }
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`vit-wasm: ${(e as Error).message}\n\n${USAGE}`);
      return 2;
    }
    console.error(
      (e as Error).message.startsWith('vit-wasm') ? (e as Error).message : `vit-wasm: ${(e as Error).stack}`,
    );
    return 1;
  }
}
