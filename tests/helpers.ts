import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { expect } from 'vitest';
import type { ViTModel } from '../src/index.js';

export const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
export const MODELS = path.join(FIXTURES, 'models');

export interface ModelFixture {
  name: string;
  dir: string;
  batch: number;
  input: Float32Array;
  logits: number[];
  eps: number;
  dtype: string;
}

/** Every committed PyTorch fixture model with its input and float64 logits. */
export function modelFixtures(): ModelFixture[] {
  return readdirSync(MODELS)
    .sort()
    .map((name) => {
      const dir = path.join(MODELS, name);
      const exp = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8'));
      const buf = readFileSync(path.join(dir, 'input.f32'));
      const input = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength));
      return { name, dir, batch: exp.batch, input, logits: exp.logits, eps: exp.layer_norm_eps, dtype: exp.dtype };
    });
}

/** max |a - b| and max |b|. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let diff = 0,
    scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return { diff, scale };
}

/**
 * `m.zeroShot` on each image of a zero-shot fixture (`dir`'s input.f32) with its labels, beside the
 * reference: the answer, the reference's probabilities, the answer's scores by label index (to
 * compare with them) and the reference's labels best first.
 */
export async function zeroShotImages(
  m: ViTModel,
  dir: string,
  exp: { images: number; labels: string[]; probs: number[] },
) {
  const x = readF32(path.join(dir, 'input.f32')),
    n = x.length / exp.images,
    L = exp.labels.length;
  const out = [];
  for (let i = 0; i < exp.images; i++) {
    const image = x.subarray(i * n, (i + 1) * n),
      got = await m.zeroShot(image, exp.labels),
      probs = exp.probs.slice(i * L, (i + 1) * L),
      byIndex = new Float64Array(L);
    for (const p of got) byIndex[p.index] = p.score;
    const ranking = probs
      .map((p, j) => [p, j])
      .sort((a, b) => b[0] - a[0])
      .map(([, j]) => exp.labels[j]);
    out.push({ image, got, probs, byIndex, ranking });
  }
  return out;
}

/** The PyTorch float64 trace of image 0 of an -hf fixture (tests/fixtures/generate.py, vit_trace), by name. */
export async function referenceTrace(dir: string): Promise<Map<string, Float32Array>> {
  const { modelFiles } = await import('../src/io/source.js');
  const { readSafetensorsHeader, TensorReader } = await import('../src/io/safetensors.js');
  const src = await (await modelFiles(dir)).open('trace.safetensors');
  try {
    const tensors = await readSafetensorsHeader(src),
      reader = new TensorReader(tensors.values()),
      out = new Map<string, Float32Array>();
    for (const [name, info] of tensors) out.set(name, (await reader.read(info)).slice());
    return out;
  } finally {
    await src.close();
  }
}

/** A safetensors header: tensor name → entry (and `__metadata__`). */
export type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

/** A safetensors file's JSON header and data bytes. */
export function splitSafetensors(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

/** A safetensors file from a header and data; `lengthOverride` writes a wrong header length. */
export function joinSafetensors(header: unknown, data: Uint8Array, lengthOverride?: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Rewrites a header and its data so the tensors left tile the data again (after some were deleted or added). */
export function repack(header: Header, data: Uint8Array, extra: Record<string, Uint8Array> = {}): Uint8Array {
  const out: Header = {},
    parts: Uint8Array[] = [];
  let off = 0;
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const bytes = extra[name] ?? data.subarray(t.data_offsets[0], t.data_offsets[1]);
    out[name] = { ...t, data_offsets: [off, off + bytes.length] };
    parts.push(bytes);
    off += bytes.length;
  }
  const all = new Uint8Array(off);
  let p = 0;
  for (const b of parts) {
    all.set(b, p);
    p += b.length;
  }
  return joinSafetensors(out, all);
}

/** A file of float32s (a fixture's input.f32). */
export function readF32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** A little-endian int32 file (a fixture's labels). */
export function readI32(file: string): Int32Array {
  const b = readFileSync(file);
  return new Int32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** Model files as loadModel takes them: every file of `dir`, config.json edited by `edit` when given. */
export function dirFiles(
  dir: string,
  edit?: (config: Record<string, unknown>) => void,
): Record<string, Uint8Array | string> {
  const out: Record<string, Uint8Array | string> = {};
  for (const f of readdirSync(dir)) out[f] = new Uint8Array(readFileSync(path.join(dir, f)));
  if (edit) {
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    edit(cfg);
    out['config.json'] = JSON.stringify(cfg);
  }
  return out;
}

/** `files` with tensor `name` removed (null), or replaced by zeros of `shape`, in model.safetensors. */
export function withTensor(
  files: Record<string, Uint8Array | string>,
  name: string,
  shape: number[] | null,
  file = 'model.safetensors',
): Record<string, Uint8Array | string> {
  const { header, data } = splitSafetensors(files[file] as Uint8Array);
  const extra: Record<string, Uint8Array> = {};
  if (shape === null) delete header[name];
  else {
    const n = 4 * shape.reduce((a, b) => a * b, 1);
    header[name] = { dtype: 'F32', shape, data_offsets: [0, n] };
    extra[name] = new Uint8Array(n);
  }
  return { ...files, [file]: repack(header, data, extra) };
}

/** Each fixture directory of `dir` (sorted) with its expected.json. */
export function fixtureDirs<E>(dir: string): { name: string; dir: string; exp: E }[] {
  return readdirSync(dir)
    .sort()
    .map((name) => ({
      name,
      dir: path.join(dir, name),
      exp: JSON.parse(readFileSync(path.join(dir, name, 'expected.json'), 'utf8')) as E,
    }));
}

/**
 * The ONNX export of `m` run in onnxruntime-node on `batch` images x (B, C, H, W): the name of its
 * one output (logits, image_embeds or pooler_output) and its data.
 */
export async function onnxOutput(
  m: ViTModel,
  x: Float32Array,
  batch: number,
): Promise<{ name: string; data: Float32Array }> {
  const s = await ort.InferenceSession.create(m.toOnnx());
  try {
    const out = await s.run({
      pixel_values: new ort.Tensor('float32', x, [batch, m.config.numChannels, ...m.config.imageSize]),
    });
    const [name] = s.outputNames;
    return { name, data: out[name].data as Float32Array };
  } finally {
    await s.release();
  }
}

/**
 * Every gradient of `ours` within 1e-4 of its tensor's scale in `theirs` (PyTorch's), the same names
 * on both sides. The key bias's gradient is exactly zero (a shift of every score in a row leaves
 * softmax unchanged): relative error is meaningless there, so no tensor's scale counts as below
 * 1e-3 of the largest. Returns the worst error, as a fraction of its tensor's scale.
 */
export function expectGradients(ours: Map<string, Float32Array>, theirs: Map<string, Float32Array>): number {
  expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
  const largest = Math.max(...[...theirs.values()].map((g) => g.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));
  let worst = 0;
  for (const [k, g] of theirs) {
    const o = ours.get(k)!;
    let diff = 0,
      scale = 1e-3 * largest;
    for (let i = 0; i < g.length; i++) {
      diff = Math.max(diff, Math.abs(o[i] - g[i]));
      scale = Math.max(scale, Math.abs(g[i]));
    }
    worst = Math.max(worst, diff / scale);
    expect(diff, k).toBeLessThanOrEqual(1e-4 * scale);
  }
  return worst;
}
