/**
 * Where model files come from: a directory on disk (Node), a base URL (browsers, fetch with Range),
 * or files already in memory. Tensors are read one at a time straight into wasm memory, so no second
 * full copy of the weights is ever held in JS.
 */
import { localModelFiles, locate } from '../runtime/platform.js';

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

function memorySource(name: string, bytes: Uint8Array): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async read(offset, length) {
      return bytes.subarray(offset, offset + length);
    },
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
    async exists(f) {
      return f in files;
    },
    async text(f) {
      return new TextDecoder().decode(bytesOf(f));
    },
    async open(f) {
      return memorySource(f, bytesOf(f));
    },
  };
}

function overHttp(base: string): ModelFiles {
  const url = (f: string) => new URL(f, base.endsWith('/') ? base : `${base}/`).href;
  return {
    where: base,
    async exists(f) {
      return fetch(url(f), { method: 'HEAD' }).then(
        (r) => r.ok,
        () => false,
      );
    },
    async text(f) {
      return (await fetchOk(url(f), 'model file')).text();
    },
    async open(f) {
      // Each tensor is fetched with a Range request as the loader asks for it, so the page never
      // holds the whole file; a server that ignores Range sends it all once, and reads come from that.
      const u = url(f);
      let whole: Uint8Array | null = null;
      const ranged = async (offset: number, length: number): Promise<Uint8Array> => {
        if (whole) return whole.subarray(offset, offset + length);
        const r = await fetchOk(u, 'model file', { headers: { Range: `bytes=${offset}-${offset + length - 1}` } });
        if (r.status === 200) {
          whole = new Uint8Array(await r.arrayBuffer());
          return whole.subarray(offset, offset + length);
        }
        if (r.status !== 206)
          throw new Error(`vit-wasm: ${u}: a Range request got HTTP ${r.status}, expected 206 or 200`);
        const bytes = new Uint8Array(await r.arrayBuffer());
        if (bytes.length !== length)
          throw new Error(`vit-wasm: ${u}: asked for ${length} bytes at ${offset}, got ${bytes.length}`);
        return bytes;
      };
      const first = await fetchOk(u, 'model file', { headers: { Range: 'bytes=0-0' } });
      let size: number;
      if (first.status === 206) {
        size = Number(/\/(\d+)$/.exec(first.headers.get('content-range') ?? '')?.[1]);
        await first.body?.cancel();
        if (!Number.isFinite(size)) throw new Error(`vit-wasm: ${u}: the server's Content-Range gives no file size`);
      } else {
        whole = new Uint8Array(await first.arrayBuffer());
        size = whole.byteLength;
      }
      return {
        name: u,
        size,
        read: ranged,
        async close() {
          whole = null;
        },
      };
    },
  };
}

/**
 * fetch, with failures that name the URL: a network error (server down, CORS, offline) or an HTTP
 * status outside 2xx. `what` says what was being fetched ("model file", "image").
 */
export async function fetchOk(url: string, what: string, init?: RequestInit): Promise<Response> {
  let r: Response;
  try {
    r = await fetch(url, init);
  } catch (e) {
    throw new Error(`vit-wasm: ${url}: cannot fetch ${what}: ${(e as Error).message}`);
  }
  if (!r.ok)
    throw new Error(
      `vit-wasm: ${url}: cannot fetch ${what}: HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`,
    );
  return r;
}

/**
 * Resolves a model location into file accessors: in Node a string is a directory path (or a file:,
 * http(s): or blob: URL); in a browser it is a URL, relative ones resolved against the page.
 */
export async function modelFiles(where: ModelLocation): Promise<ModelFiles> {
  if (typeof where === 'object' && !(where instanceof URL)) return inMemory(where);
  const at = locate(String(where));
  return 'url' in at ? overHttp(at.url) : localModelFiles(at.path);
}
