/**
 * Where model files come from: a directory on disk (Node), a base URL (browsers, fetch with Range),
 * or files already in memory. Tensors are read one at a time straight into wasm memory, so no second
 * full copy of the weights is ever held in JS.
 */
export interface ByteSource {
  /** The file's name, used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Bytes [offset, offset + length); `into` (at least `length` bytes, 8-byte aligned) may be filled and returned. */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A model directory: a path (Node), a URL (fetch), or a map of file name → contents. */
export type ModelLocation = string | URL | Record<string, Uint8Array | ArrayBuffer | string>;

export interface ModelFiles {
  /** A label for messages (the directory or URL). */
  readonly where: string;
  exists(file: string): Promise<boolean>;
  text(file: string): Promise<string>;
  open(file: string): Promise<ByteSource>;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node;

function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name, size: bytes.byteLength,
    async read(offset, length) { return bytes.subarray(offset, offset + length); },
    async close() {},
  };
}

function inMemory(files: Record<string, Uint8Array | ArrayBuffer | string>): ModelFiles {
  const bytesOf = (f: string): Uint8Array => {
    const v = files[f];
    if (v === undefined) throw new Error(`vit-wasm: ${f}: no such file in the model files given`);
    return typeof v === 'string' ? new TextEncoder().encode(v) : v instanceof Uint8Array ? v : new Uint8Array(v);
  };
  return {
    where: '<in-memory model>',
    async exists(f) { return f in files; },
    async text(f) { return new TextDecoder().decode(bytesOf(f)); },
    async open(f) { return memorySource(f, bytesOf(f)); },
  };
}

async function onDisk(dir: string): Promise<ModelFiles> {
  const fs = await import('node:fs/promises');
  const path = await import('node:path');
  const full = (f: string) => path.join(dir, f);
  const st = await fs.stat(dir).catch(() => null);
  if (!st) throw new Error(`vit-wasm: model directory ${dir} does not exist`);
  if (!st.isDirectory()) throw new Error(`vit-wasm: ${dir} is not a directory (give the folder holding config.json and model.safetensors)`);
  return {
    where: dir,
    async exists(f) { return fs.stat(full(f)).then((s) => s.isFile(), () => false); },
    async text(f) {
      try { return await fs.readFile(full(f), 'utf8'); } catch (e) { throw new Error(`vit-wasm: cannot read ${full(f)}: ${(e as Error).message}`); }
    },
    async open(f) {
      const name = full(f);
      const fh = await fs.open(name, 'r').catch((e: Error) => { throw new Error(`vit-wasm: cannot open ${name}: ${e.message}`); });
      const { size } = await fh.stat();
      return {
        name, size,
        async read(offset, length, into) {
          // a fresh or caller-owned buffer at offset 0: f32 views need 4-byte alignment
          const buf = into && into.byteLength >= length ? into.subarray(0, length) : new Uint8Array(length);
          let done = 0;
          while (done < length) {
            const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
            if (bytesRead === 0) throw new Error(`vit-wasm: ${name}: unexpected end of file at byte ${offset + done}`);
            done += bytesRead;
          }
          return buf;
        },
        close: () => fh.close(),
      };
    },
  };
}

function overHttp(base: string): ModelFiles {
  const url = (f: string) => new URL(f, base.endsWith('/') ? base : base + '/').href;
  const get = async (f: string, init?: RequestInit) => {
    const r = await fetch(url(f), init);
    if (!r.ok) throw new Error(`vit-wasm: ${url(f)}: HTTP ${r.status}`);
    return r;
  };
  return {
    where: base,
    async exists(f) { return fetch(url(f), { method: 'HEAD' }).then((r) => r.ok, () => false); },
    async text(f) { return (await get(f)).text(); },
    async open(f) {
      // Each tensor is fetched with a Range request as the loader asks for it, so the page never
      // holds the whole file; a server that ignores Range sends it all once, and reads come from that.
      const u = url(f);
      let whole: Uint8Array | null = null;
      const ranged = async (offset: number, length: number): Promise<Uint8Array> => {
        if (whole) return whole.subarray(offset, offset + length);
        const r = await fetch(u, { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
        if (r.status === 200) { whole = new Uint8Array(await r.arrayBuffer()); return whole.subarray(offset, offset + length); }
        if (r.status !== 206) throw new Error(`vit-wasm: ${u}: HTTP ${r.status}`);
        const bytes = new Uint8Array(await r.arrayBuffer());
        if (bytes.length !== length) throw new Error(`vit-wasm: ${u}: asked for ${length} bytes at ${offset}, got ${bytes.length}`);
        return bytes;
      };
      const first = await fetch(u, { headers: { Range: 'bytes=0-0' } });
      if (!first.ok) throw new Error(`vit-wasm: ${u}: HTTP ${first.status}`);
      let size: number;
      if (first.status === 206) {
        size = Number(/\/(\d+)$/.exec(first.headers.get('content-range') ?? '')?.[1]);
        await first.body?.cancel();
        if (!Number.isFinite(size)) throw new Error(`vit-wasm: ${u}: the server's Content-Range gives no file size`);
      } else {
        whole = new Uint8Array(await first.arrayBuffer());
        size = whole.byteLength;
      }
      return { name: u, size, read: ranged, async close() { whole = null; } };
    },
  };
}

/** Resolves a model location into file accessors. */
export async function modelFiles(where: ModelLocation): Promise<ModelFiles> {
  if (typeof where === 'object' && !(where instanceof URL)) return inMemory(where);
  const s = String(where);
  if (/^(https?|blob):/.test(s) || !isNode) return overHttp(s);
  if (s.startsWith('file:')) {
    const { fileURLToPath } = await import('node:url');
    return onDisk(fileURLToPath(s));
  }
  return onDisk(s);
}
