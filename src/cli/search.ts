/**
 * `vit-wasm index` and `vit-wasm search`: a folder of photos embedded once by a CLIPModel's image
 * tower (in batches, on the model's workers, with a progress bar), then searched by sentences
 * through its text tower. The index is a folder: index.json (the model, the embedding size, each
 * image's path relative to the indexed folder) and embeddings.f32 (the images' normalized
 * embeddings, one row each, little-endian float32).
 */
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { parseJson } from '../io/json.js';
import { loadModel } from '../model/load.js';
import { normalizeRows } from '../model/zero-shot.js';
import { imagesUnder } from '../platform/platform.js';

type UsageErrorClass = new (message: string) => Error;

/** What index.json holds. */
interface IndexFile {
  format: 'vit-wasm-index-1';
  model: string;
  dim: number;
  root: string;
  files: string[];
}

const BATCH = 16;

/** vit-wasm index DIR --model M --out INDEX [--threads N]: embeds every PNG and JPEG under DIR. */
export async function indexCommand(argv: string[], UsageError: UsageErrorClass): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { model: { type: 'string' }, out: { type: 'string' }, threads: { type: 'string' } },
  });
  if (positionals.length !== 1)
    throw new UsageError('index needs one folder of images: vit-wasm index DIR --model M --out INDEX');
  if (!values.model || !values.out) throw new UsageError('index needs --model DIR (a CLIPModel) and --out INDEX');
  const root = path.resolve(positionals[0]);
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new Error(`vit-wasm: ${positionals[0]}: no such folder`);
  const files = imagesUnder(root);
  if (files.length === 0) throw new Error(`vit-wasm: ${positionals[0]}: no PNG or JPEG images under it`);
  const threads = values.threads === undefined ? undefined : Number(values.threads);
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads > 0))
    throw new UsageError(`--threads must be a positive integer, got '${values.threads}'`);
  const model = await loadModel(values.model, { threads });
  const kept: string[] = [],
    rows: Float32Array[] = [];
  let skipped = 0;
  const bar = new cliProgress.SingleBar(
    {
      format: 'embedding |{bar}| {value}/{total} images | ETA {eta_formatted}',
      clearOnComplete: true,
      stream: process.stderr,
    },
    cliProgress.Presets.shades_classic,
  );
  try {
    if (!model.hasText)
      throw new Error(
        `vit-wasm: ${values.model}: searching by words needs a model with a text tower (a CLIPModel); this ${model.family} checkpoint has none`,
      );
    bar.start(files.length, 0);
    for (let s = 0; s < files.length; s += BATCH) {
      const batch = files.slice(s, s + BATCH);
      // one unreadable image is reported and left out; the others are embedded together
      const pixels = await Promise.all(batch.map((f) => model.pixels(f).catch((e: Error) => e)));
      const good = batch.filter((_, i) => !(pixels[i] instanceof Error));
      for (const p of pixels)
        if (p instanceof Error) {
          skipped++;
          console.error(`skipped: ${p.message}`);
        }
      if (good.length) {
        const e = await model.embed(pixels.filter((p): p is Float32Array => !(p instanceof Error)));
        rows.push(e);
        kept.push(...good.map((f) => path.relative(root, f)));
      }
      bar.update(s + batch.length);
    }
    bar.stop();
  } finally {
    await model.dispose();
  }
  if (kept.length === 0)
    throw new Error(`vit-wasm: ${positionals[0]}: none of its ${files.length} images could be read`);
  const all = new Float32Array(rows.reduce((n, r) => n + r.length, 0));
  let at = 0;
  for (const r of rows) {
    all.set(r, at);
    at += r.length;
  }
  const P = all.length / kept.length;
  mkdirSync(values.out, { recursive: true });
  const index: IndexFile = { format: 'vit-wasm-index-1', model: path.resolve(values.model), dim: P, root, files: kept };
  writeFileSync(path.join(values.out, 'index.json'), `${JSON.stringify(index, null, 1)}\n`);
  writeFileSync(path.join(values.out, 'embeddings.f32'), new Uint8Array(normalizeRows(all, P).buffer));
  console.log(`indexed ${kept.length} images${skipped ? ` (${skipped} skipped)` : ''} into ${values.out}`);
  return skipped ? 1 : 0;
}

/** Reads an index folder, checking that its parts agree. */
function readIndex(dir: string): { index: IndexFile; embeddings: Float32Array } {
  const file = path.join(dir, 'index.json');
  if (!existsSync(file))
    throw new Error(`vit-wasm: ${dir}: not an index (no index.json; make one with vit-wasm index)`);
  const index = parseJson(readFileSync(file, 'utf8'), file) as unknown as IndexFile;
  if (index.format !== 'vit-wasm-index-1' || !Array.isArray(index.files) || !Number.isSafeInteger(index.dim))
    throw new Error(`vit-wasm: ${file}: not an index vit-wasm wrote`);
  const raw = readFileSync(path.join(dir, 'embeddings.f32'));
  if (raw.length !== index.files.length * index.dim * 4)
    throw new Error(
      `vit-wasm: ${dir}/embeddings.f32 has ${raw.length} bytes, expected ${index.files.length} images × ${index.dim} floats`,
    );
  return { index, embeddings: new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length)) };
}

/** vit-wasm search INDEX "a red bicycle" [--top K] [--json] [--model M]: the best matches, best first. */
export async function searchCommand(argv: string[], UsageError: UsageErrorClass): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { top: { type: 'string' }, json: { type: 'boolean' }, model: { type: 'string' } },
  });
  if (positionals.length !== 2)
    throw new UsageError('search needs an index and a query: vit-wasm search INDEX "a red bicycle"');
  const top = values.top === undefined ? 5 : Number(values.top);
  if (!(Number.isSafeInteger(top) && top > 0))
    throw new UsageError(`--top must be a positive integer, got '${values.top}'`);
  const { index, embeddings } = readIndex(positionals[0]);
  const model = await loadModel(values.model ?? index.model, { threads: 1 });
  let q: Float32Array;
  try {
    q = normalizeRows(await model.embedText(positionals[1]), index.dim);
  } finally {
    await model.dispose();
  }
  if (q.length !== index.dim)
    throw new Error(
      `vit-wasm: the model embeds text in ${q.length} dimensions, the index holds ${index.dim}: a different model`,
    );
  const scores = index.files.map((file, i) => {
    let s = 0;
    for (let d = 0; d < index.dim; d++) s += q[d] * embeddings[i * index.dim + d];
    return { file: path.join(index.root, file), score: s };
  });
  scores.sort((a, b) => b.score - a.score);
  const best = scores.slice(0, top);
  if (values.json) console.log(JSON.stringify(best, null, 2));
  else for (const b of best) console.log(`${b.score.toFixed(4)}  ${b.file}`);
  return 0;
}
