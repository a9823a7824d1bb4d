/**
 * PyTorch checkpoints (`pytorch_model.bin`, `.pth`, `.pt`: torch.save's zip format since PyTorch
 * 1.6): ARCHIVE/data.pkl, a pickled state dict whose tensors name storages ARCHIVE/data/KEY by
 * persistent id, read with the restricted unpickler (src/io/pickle.ts) — no Python, no code run.
 * Each float tensor becomes a TensorInfo over its storage's bytes, so the loader reads it as it
 * reads a safetensors tensor. The zip is read with unzipit through the ByteSource (a file, a URL
 * with Range requests, bytes), one storage at a time.
 */
import { type Reader, unzipRaw, type ZipEntry } from 'unzipit';
import { overLimit } from '../platform/limits.js';
import { type PyValue, type TensorRef, Tuple, unpickle } from './pickle.js';
import { type DType, ITEM, type TensorInfo } from './safetensors.js';
import type { ByteSource } from './source.js';

/** The storage dtypes read as weights (an I8 storage is not vit-wasm's int8 format: left out, as the integers are). */
const FLOATS = new Set<string>(['F32', 'F16', 'BF16', 'F64']);
/** Where checkpoints keep the model's state dict beside their other entries (optimizer, epoch…). */
const STATE_KEYS = ['state_dict', 'model', 'model_state_dict', 'module'];

/** unzipit's view of a ByteSource. */
function readerOf(src: ByteSource): Reader {
  return {
    getLength: async () => src.size,
    read: async (offset, size) => {
      const b = await src.read(offset, size);
      return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer);
    },
  };
}

/**
 * One storage's bytes, read from the zip when first asked for; the last storage read stays cached
 * (`cache`, shared by the file's storages) while the loader reads its rows, then makes way.
 */
function storageSource(
  name: string,
  entry: ZipEntry,
  cache: { owner: ByteSource | null; bytes: Uint8Array },
): ByteSource {
  const src: ByteSource = {
    name,
    size: entry.size,
    async read(offset, length) {
      if (cache.owner !== src) {
        cache.owner = null;
        cache.bytes = new Uint8Array(await entry.arrayBuffer());
        cache.owner = src;
      }
      return cache.bytes.subarray(offset, offset + length);
    },
    async close() {
      if (cache.owner === src) {
        cache.owner = null;
        cache.bytes = new Uint8Array(0);
      }
    },
  };
  return src;
}

/**
 * The float tensors of the PyTorch checkpoint `src` (the model's state dict: the pickle's top
 * level, or its 'state_dict', 'model', 'model_state_dict' or 'module' entry; a `module.` prefix on
 * every key dropped), or an Error naming the file and what is wrong. Integer and bool tensors
 * (buffers such as position_ids) are left out. `maxPickle` bounds data.pkl.
 */
export async function readPytorchTensors(src: ByteSource, maxPickle: number): Promise<Map<string, TensorInfo>> {
  const fail = (msg: string): never => {
    throw new Error(`vit-wasm: ${src.name}: ${msg}`);
  };
  const head = await src.read(0, Math.min(4, src.size));
  if (head[0] === 0x80)
    fail(
      'a PyTorch file in the legacy format (torch.save before PyTorch 1.6, or _use_new_zipfile_serialization=False) is not read; save it again with a current PyTorch, or convert it to safetensors',
    );
  if (head[0] !== 0x50 || head[1] !== 0x4b) fail('not a PyTorch checkpoint (torch.save writes a zip file)');
  let entries: ZipEntry[];
  try {
    entries = (await unzipRaw(readerOf(src))).entries;
  } catch (e) {
    return fail(`not a readable zip file (${(e as Error).message})`);
  }
  const pkls = entries.filter((e) => /^[^/]+\/data\.pkl$/.test(e.name));
  if (pkls.length !== 1)
    fail(
      pkls.length
        ? `${pkls.length} data.pkl entries: one archive per file`
        : 'no ARCHIVE/data.pkl entry (a TorchScript or other zip, not torch.save of a state dict)',
    );
  const archive = pkls[0].name.slice(0, -'data.pkl'.length),
    byName = new Map(entries.map((e) => [e.name, e]));
  const stored = (e: ZipEntry) => {
    if (e.compressionMethod !== 0 || e.encrypted)
      fail(`entry '${e.name}' is compressed or encrypted (torch.save stores its entries as they are)`);
    return e;
  };
  const order = byName.get(`${archive}byteorder`);
  if (order && (await stored(order).text()).trim() !== 'little')
    fail('a big-endian checkpoint (byteorder is not little): not read');
  const pkl = stored(pkls[0]);
  if (pkl.size > maxPickle) throw overLimit(`${src.name}: data.pkl of ${pkl.size} bytes`, 'maxHeaderBytes', maxPickle);
  const value = unpickle(new Uint8Array(await pkl.arrayBuffer()), `${src.name} (data.pkl)`);
  const dict = stateDict(value, fail);
  const strip = [...dict.keys()].every((k) => typeof k === 'string' && k.startsWith('module.')) ? 'module.'.length : 0;
  const cache = { owner: null as ByteSource | null, bytes: new Uint8Array(0) },
    sources = new Map<string, ByteSource>(),
    out = new Map<string, TensorInfo>();
  for (const [k, v] of dict) {
    if (typeof k !== 'string' || !isTensor(v)) continue; // a state dict's other entries (_extra_state…)
    const name = k.slice(strip),
      t = v as TensorRef;
    if (!FLOATS.has(t.storage.dtype)) continue; // integer and bool buffers: no weights
    const item = ITEM[t.storage.dtype as DType],
      count = t.shape.reduce((a, d) => a * d, 1);
    // row-major strides: the tensor is count elements from its offset (a view PyTorch made contiguous)
    let want = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      if (t.shape[i] > 1 && t.stride[i] !== want)
        fail(`tensor '${name}' is a non-contiguous view (strides ${t.stride}): save it with .contiguous()`);
      want *= t.shape[i];
    }
    if (t.offset + count > t.storage.numel)
      fail(`tensor '${name}' (${count} elements from ${t.offset}) runs past its storage of ${t.storage.numel}`);
    const entry = byName.get(`${archive}data/${t.storage.key}`);
    if (!entry) fail(`tensor '${name}' names storage ${t.storage.key}, which the zip does not hold`);
    if (stored(entry!).size !== t.storage.numel * item)
      fail(`storage ${t.storage.key} holds ${entry!.size} bytes, not the ${t.storage.numel} × ${item} its tensors say`);
    let source = sources.get(t.storage.key);
    if (!source) {
      source = storageSource(`${src.name} (storage ${t.storage.key})`, entry!, cache);
      sources.set(t.storage.key, source);
    }
    if (out.has(name)) fail(`tensor '${name}' appears twice`);
    out.set(name, {
      name,
      dtype: t.storage.dtype as DType,
      shape: t.shape,
      begin: t.offset * item,
      end: (t.offset + count) * item,
      source,
    });
  }
  if (!out.size) fail('the state dict holds no float tensors');
  return out;
}

const isTensor = (v: PyValue): boolean => typeof v === 'object' && v !== null && 'kind' in v && v.kind === 'tensor';
const hasTensors = (v: PyValue): v is Map<PyValue, PyValue> => v instanceof Map && [...v.values()].some(isTensor);

/** The state dict in a checkpoint's top-level value. */
function stateDict(v: PyValue, fail: (m: string) => never): Map<PyValue, PyValue> {
  if (hasTensors(v)) return v;
  if (v instanceof Map)
    for (const k of STATE_KEYS) {
      const s = v.get(k);
      if (s !== undefined && hasTensors(s)) return s;
    }
  const what =
    v instanceof Map
      ? `a dict with keys ${[...v.keys()]
          .slice(0, 8)
          .map((k) => JSON.stringify(typeof k === 'bigint' ? String(k) : k))
          .join(', ')}`
      : v instanceof Tuple
        ? 'a tuple'
        : Array.isArray(v)
          ? 'a list'
          : typeof v;
  return fail(
    `no state dict: the pickle holds ${what}, with no tensors at its top level nor under ${STATE_KEYS.map((k) => `'${k}'`).join(', ')}`,
  );
}
