/**
 * Image datasets on disk for `vit-wasm train --data` and `eval --data`: torchvision's ImageFolder
 * layout (one subfolder per class, sorted names → class indices, PNG/JPEG found recursively) or a
 * manifest (`.csv` with a `path,label` header, or `.jsonl` of `{"path", "label"}`; paths relative
 * to it). Images are read and decoded per batch, through a cache bounded in bytes; a bad file is an
 * error naming it, or (skipBad) is counted and left out.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { decodeImage, type RawImage } from '../io/image/decode.js';
import { byCodePoint } from '../platform/api.js';
import { listImageFolder } from '../platform/platform.js';
import { permutation, streamRandom } from '../train/augment.js';

export interface Sample {
  file: string;
  label: number;
}

/** Samples with their class names (index = label). */
export interface ImageSet {
  where: string;
  classes: string[];
  samples: Sample[];
}

/** Maps names to indices: the given classes (a validation set must use the training set's), or these sorted. */
function classIndex(
  names: string[],
  where: string,
  classes?: string[],
): { classes: string[]; index: Map<string, number> } {
  const list = classes ?? [...new Set(names)].sort(byCodePoint);
  const index = new Map(list.map((c, i) => [c, i]));
  for (const n of names)
    if (!index.has(n))
      throw new Error(`vit-wasm: ${where}: class '${n}' is not one of the training classes (${list.join(', ')})`);
  return { classes: list, index };
}

/** An ImageFolder directory (src/platform's listImageFolder), its classes mapped to `classes` when given. */
export function imageFolder(dir: string, classes?: string[]): ImageSet {
  const f = listImageFolder(dir);
  const { classes: list, index } = classIndex(f.classes, dir, classes);
  return {
    where: dir,
    classes: list,
    samples: f.files.map((s) => ({ file: s.file, label: index.get(f.classes[s.cls])! })),
  };
}

/** One CSV line's fields (RFC 4180: quoted fields may hold commas and doubled quotes). */
function csvFields(line: string): string[] {
  const out: string[] = [];
  let f = '',
    q = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (q && ch === '"' && line[i + 1] === '"') {
      f += '"';
      i++;
    } else if (ch === '"') q = !q;
    else if (ch === ',' && !q) {
      out.push(f);
      f = '';
    } else f += ch;
  }
  out.push(f);
  return out;
}

/** A `.csv` (header `path,label`) or `.jsonl` manifest. */
export function readManifest(file: string, classes?: string[]): ImageSet {
  const dir = path.dirname(file),
    jsonl = /\.jsonl$/i.test(file);
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  const rows: { file: string; name: string }[] = [];
  let cols: [number, number] = [0, 1];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    const at = `${file}:${i + 1}`;
    let p: unknown, l: unknown;
    if (jsonl) {
      let o: Record<string, unknown>;
      try {
        o = JSON.parse(line);
      } catch (e) {
        throw new Error(`vit-wasm: ${at}: not JSON (${(e as Error).message})`);
      }
      [p, l] = [o?.path, o?.label];
    } else {
      const f = csvFields(line);
      if (i === 0) {
        const h = f.map((s) => s.trim().toLowerCase());
        cols = [h.indexOf('path'), h.indexOf('label')];
        if (cols[0] < 0 || cols[1] < 0)
          throw new Error(`vit-wasm: ${at}: the first line must be the header path,label`);
        return;
      }
      [p, l] = [f[cols[0]], f[cols[1]]];
    }
    if (typeof p !== 'string' || !p) throw new Error(`vit-wasm: ${at}: no path`);
    if ((typeof l !== 'string' && typeof l !== 'number') || String(l) === '')
      throw new Error(`vit-wasm: ${at}: no label`);
    rows.push({ file: path.resolve(dir, p), name: String(l) });
  });
  if (rows.length === 0) throw new Error(`vit-wasm: ${file}: no images listed`);
  const { classes: list, index } = classIndex(
    rows.map((r) => r.name),
    file,
    classes,
  );
  return { where: file, classes: list, samples: rows.map((r) => ({ file: r.file, label: index.get(r.name)! })) };
}

/** A directory (ImageFolder) or a manifest file; a training set must have two classes or more. */
export function openImageSet(where: string, classes?: string[]): ImageSet {
  if (!existsSync(where)) throw new Error(`vit-wasm: ${where}: no such file or directory`);
  const set = statSync(where).isDirectory()
    ? imageFolder(where, classes)
    : /\.(csv|jsonl)$/i.test(where)
      ? readManifest(where, classes)
      : (() => {
          throw new Error(`vit-wasm: ${where}: a dataset is a directory of class folders, a .csv or a .jsonl manifest`);
        })();
  if (!classes && set.classes.length < 2)
    throw new Error(`vit-wasm: ${where}: only one class ('${set.classes[0]}'): a classifier needs two or more`);
  return set;
}

/** A seeded, stratified split: `fraction` of each class (at least one image of a class with two) held out. */
export function stratifiedSplit(set: ImageSet, fraction: number, seed: number): { train: ImageSet; val: ImageSet } {
  const train: Sample[] = [],
    val: Sample[] = [];
  set.classes.forEach((_, c) => {
    const of = set.samples.filter((s) => s.label === c),
      order = permutation(of.length, streamRandom(seed, 0x5eed, c));
    const k = of.length < 2 ? 0 : Math.max(1, Math.round(of.length * fraction));
    order.forEach((j, r) => (r < k ? val : train).push(of[j]));
  });
  return { train: { ...set, samples: train }, val: { ...set, where: `${set.where} (held out)`, samples: val } };
}

/** Decoded images by file, up to a byte budget: the first ones read stay, so a budget smaller than the set still saves that much. */
export class ImageCache {
  private readonly map = new Map<string, RawImage>();
  private bytes = 0;
  constructor(private readonly budget: number) {}

  /** The decoded image, or an error naming the file. */
  read(file: string): RawImage {
    const hit = this.map.get(file);
    if (hit) return hit;
    let bytes: Uint8Array;
    try {
      bytes = readFileSync(file);
    } catch (e) {
      throw new Error(`vit-wasm: ${file}: cannot read: ${(e as Error).message}`);
    }
    const img = decodeImage(bytes, file);
    if (this.bytes + img.data.length <= this.budget) {
      this.map.set(file, img);
      this.bytes += img.data.length;
    }
    return img;
  }

  get usedBytes(): number {
    return this.bytes;
  }
}
