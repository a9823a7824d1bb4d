/**
 * Where model files come from: a directory on disk (Node), a base URL (browsers, fetch with Range),
 * or files already in memory. Tensors are read one at a time straight into wasm memory, so no second
 * full copy of the weights is ever held in JS.
 */
import type { ByteSource, ModelFiles } from '../platform/api.js';
import { DEFAULT_LIMITS, type Limits, overLimit } from '../platform/limits.js';
import { localModelFiles, locate } from '../platform/platform.js';
import { discard, type Fetched, fetchOk, readResponse, StallWatch } from './http.js';
import { parseJson } from './json.js';

/** Bytes a Range request fetches at least (model files over HTTP): few requests, a bounded buffer. */
const WINDOW = 8 << 20;

/** A model directory: a path (Node), a URL (fetch), or a map of file name → contents. */
export type { ByteSource, ModelFiles };

export type ModelLocation = string | URL | Record<string, Uint8Array | ArrayBuffer | string>;

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

function inMemory(files: Record<string, Uint8Array | ArrayBuffer | string>, limits: Limits): ModelFiles {
  const bytesOf = (f: string): Uint8Array => {
    const v = Object.hasOwn(files, f) ? files[f] : undefined;
    if (v === undefined) throw new Error(`vit-wasm: ${f}: no such file in the model files given`);
    return typeof v === 'string' ? new TextEncoder().encode(v) : v instanceof Uint8Array ? v : new Uint8Array(v);
  };
  return {
    where: '<in-memory model>',
    limits,
    async exists(f) {
      return Object.hasOwn(files, f);
    },
    async text(f) {
      const b = bytesOf(f);
      if (b.byteLength > limits.maxJsonBytes)
        throw overLimit(`${f}: ${b.byteLength.toLocaleString('en-US')} bytes`, 'maxJsonBytes', limits.maxJsonBytes);
      return new TextDecoder().decode(b);
    },
    async open(f) {
      return memorySource(f, bytesOf(f));
    },
  };
}

/** A server's HTML page (an error page, a directory listing, a SPA's index) where a model file should be. */
function htmlInstead({ response, url: u }: Fetched): Error | null {
  const type = response.headers.get('content-type') ?? '';
  return /^text\/html/i.test(type)
    ? new Error(
        `vit-wasm: ${u}: the server sent an HTML page (Content-Type ${type}), not the model file: a wrong URL, or a server that answers missing files with a page`,
      )
    : null;
}

function overHttp(base: string, limits: Limits): ModelFiles {
  const url = (f: string) => new URL(f, base.endsWith('/') ? base : `${base}/`).href;
  return {
    where: base,
    limits,
    async exists(f) {
      const watch = new StallWatch(url(f), limits.stallTimeoutMs);
      return fetch(url(f), { method: 'HEAD', signal: watch.controller.signal }).then(
        (r) => {
          watch.done();
          return r.ok;
        },
        () => {
          watch.done();
          if (watch.controller.signal.aborted) throw watch.controller.signal.reason;
          return false;
        },
      );
    },
    async text(f) {
      const u = url(f),
        r = await fetchOk(u, 'model file', limits.stallTimeoutMs);
      const html = htmlInstead(r);
      if (html) {
        await discard(r);
        throw html;
      }
      return new TextDecoder().decode(await readResponse(r, 'model file', 'maxJsonBytes', limits.maxJsonBytes));
    },
    async open(f) {
      // Fetched with Range requests of at least WINDOW bytes as the loader reads on, so the page
      // never holds the whole file, and the small tensors (biases, norms) and the row blocks of the
      // large ones come from one request rather than one each. A server that ignores Range sends
      // it all once, and reads come from that.
      const u = url(f);
      let whole: Uint8Array | null = null;
      let win: { at: number; bytes: Uint8Array } | null = null;
      // a server that ignores Range sends the whole file: kept (up to maxDownloadBytes) and read from
      const wholeFile = async (r: Fetched): Promise<Uint8Array> => {
        const html = htmlInstead(r);
        if (html) {
          await discard(r);
          throw html;
        }
        return readResponse(r, 'model file', 'maxDownloadBytes', limits.maxDownloadBytes);
      };
      const ranged = async (offset: number, length: number): Promise<Uint8Array> => {
        if (whole) return whole.subarray(offset, offset + length);
        if (win && offset >= win.at && offset + length <= win.at + win.bytes.length)
          return win.bytes.subarray(offset - win.at, offset - win.at + length);
        const want = Math.max(length, Math.min(WINDOW, size - offset));
        const r = await fetchOk(u, 'model file', limits.stallTimeoutMs, {
          headers: { Range: `bytes=${offset}-${offset + want - 1}` },
        });
        if (r.response.status === 200) {
          whole = await wholeFile(r);
          if (whole.byteLength !== size)
            throw new Error(
              `vit-wasm: ${u}: the file was ${size} bytes, and is now ${whole.byteLength}: it changed while loading`,
            );
          return whole.subarray(offset, offset + length);
        }
        if (r.response.status !== 206) {
          await discard(r);
          throw new Error(`vit-wasm: ${u}: a Range request got HTTP ${r.response.status}, expected 206 or 200`);
        }
        const bytes = await readResponse(r, 'model file', 'maxDownloadBytes', limits.maxDownloadBytes);
        if (bytes.length !== want)
          throw new Error(`vit-wasm: ${u}: asked for ${want} bytes at ${offset}, got ${bytes.length}`);
        win = { at: offset, bytes };
        return bytes.subarray(0, length);
      };
      const first = await fetchOk(u, 'model file', limits.stallTimeoutMs, { headers: { Range: 'bytes=0-0' } });
      let size: number;
      if (first.response.status === 206) {
        size = Number(/\/(\d+)$/.exec(first.response.headers.get('content-range') ?? '')?.[1]);
        await discard(first);
        if (!Number.isSafeInteger(size))
          throw new Error(`vit-wasm: ${u}: the server's Content-Range gives no file size`);
      } else {
        whole = await wholeFile(first);
        size = whole.byteLength;
      }
      return {
        name: u,
        size,
        read: ranged,
        async close() {
          whole = null;
          win = null;
        },
      };
    },
  };
}

/**
 * Resolves a model location into file accessors: in Node a string is a directory path (or a file:,
 * http(s): or blob: URL); in a browser it is a URL, relative ones resolved against the page.
 */
export async function modelFiles(where: ModelLocation, limits: Limits = DEFAULT_LIMITS): Promise<ModelFiles> {
  if (where === null || (typeof where !== 'object' && typeof where !== 'string'))
    throw new Error(
      `vit-wasm: the model location must be a directory path, a URL or a map of files, got ${where === null ? 'null' : typeof where}`,
    );
  if (typeof where === 'object' && !(where instanceof URL)) return inMemory(where, limits);
  const at = locate(String(where));
  return 'url' in at ? overHttp(at.url, limits) : localModelFiles(at.path, limits);
}

/** A JSON file of the model as an object, within the size and depth limits; errors name `${where}/${f}`. */
export async function readJson(files: ModelFiles, f: string): Promise<Record<string, unknown>> {
  return parseJson(await files.text(f), `${files.where}/${f}`, files.limits.maxJsonDepth);
}
