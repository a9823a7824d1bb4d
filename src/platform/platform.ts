/**
 * Everything that differs between Node and browsers, in one place: files, workers, cores, engine
 * flags. This is Node's side. The browser build (scripts/build.mjs) swaps in platform.browser.ts,
 * which exports the same names, so nothing reachable from the browser entry imports `node:`.
 */
import { constants, type Dirent, existsSync, readdirSync } from 'node:fs';
import { type FileHandle, mkdir, open, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import v8 from 'node:v8';
import { parentPort, Worker } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { byCodePoint, type ModelFiles, sharedMemoryMissing, type WorkerHandle, type WorkerKind } from './api.js';
import { type Limits, overLimit } from './limits.js';
import { packageFile } from './paths.js';

export const PLATFORM: 'node' | 'browser' = 'node';

/** The JavaScript runtime running the Node build, with its version: `Node 20.20.2`, `Deno 2.9.6`, `Bun 1.4.5`. */
export function engineName(): string {
  const g = globalThis as { Deno?: { version?: { deno?: string } }; Bun?: { version?: string } };
  if (g.Deno?.version?.deno) return `Deno ${g.Deno.version.deno}`;
  if (g.Bun?.version) return `Bun ${g.Bun.version}`;
  return `Node ${process.versions.node}`;
}

/** The cores a pool may use by default. */
export function defaultThreadCount(): number {
  return os.availableParallelism();
}

/**
 * VIT_WASM_SPLIT_EVERY_OP=1: every op split between the workers however small, and every forward
 * sent to all of them — what the test suite runs with, so its thread counts exercise the split
 * (the calibrated default would run its small fixtures on one worker).
 */
export function splitEveryOp(): boolean {
  return process.env.VIT_WASM_SPLIT_EVERY_OP === '1';
}

/** Why threads (shared memory) are unavailable, or null when they are. */
export function sharedMemoryUnavailable(): string | null {
  return sharedMemoryMissing('Node');
}

/**
 * Node 20's V8 (11.3) has relaxed SIMD behind a flag that must be set before compiling (it is not
 * accepted in NODE_OPTIONS or a Worker's execArgv); workers started later inherit it. Newer engines
 * have it on by default, and then this is never called.
 */
export function enableRelaxedSimd(): void {
  try {
    v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
  } catch {
    /* keep plain SIMD */
  }
}

/** A model or image location given as a string: a local path in Node (file: URLs too), or an http(s)/blob/data URL. */
export function locate(s: string): { url: string } | { path: string } {
  if (/^(https?|blob|data):/i.test(s)) return { url: s };
  return { path: s.startsWith('file:') ? fileURLToPath(s) : s };
}

/**
 * Opens a local file for reading, refusing anything but a regular file: a FIFO would block forever
 * and /dev/zero never ends. O_NONBLOCK keeps the open itself from waiting for a FIFO's writer.
 */
async function openRegular(file: string, what: string): Promise<{ fh: FileHandle; size: number }> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `vit-wasm: ${file}: cannot read ${what}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`,
    );
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    const kind = st.isDirectory()
      ? 'a directory'
      : st.isFIFO()
        ? 'a FIFO (named pipe)'
        : st.isCharacterDevice() || st.isBlockDevice()
          ? 'a device'
          : st.isSocket()
            ? 'a socket'
            : 'not a regular file';
    throw new Error(`vit-wasm: ${file}: cannot read ${what}: it is ${kind}, not a regular file`);
  }
  return { fh, size: st.size };
}

/** Reads a whole local regular file of at most `limit` bytes (checked before reading); `what` names it in errors. */
export async function readLocalFile(
  file: string,
  what: string,
  limit: { key: keyof Limits; max: number },
): Promise<Uint8Array> {
  const { fh, size } = await openRegular(file, what);
  try {
    if (size > limit.max)
      throw overLimit(`${file}: the ${what} is ${size.toLocaleString('en-US')} bytes, which`, limit.key, limit.max);
    const buf = new Uint8Array(size);
    let done = 0;
    while (done < size) {
      const { bytesRead } = await fh.read(buf, done, size - done, done);
      if (bytesRead === 0) break; // shrank while reading: what was there
      done += bytesRead;
    }
    return done === size ? buf : buf.subarray(0, done);
  } finally {
    await fh.close();
  }
}

const IMAGE_FILE = /\.(png|jpe?g)$/i;

/** Every PNG and JPEG under `dir`, recursively, in code-point order of each folder's entries. */
export function imagesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => byCodePoint(a.name, b.name))) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...imagesUnder(p));
    else if (IMAGE_FILE.test(e.name)) out.push(p);
  }
  return out;
}

/**
 * An ImageFolder directory (torchvision's layout): its class folders sorted by code point, and every
 * PNG/JPEG under each, found recursively in sorted order. No class folders, or a class without an
 * image, is an error naming the folder.
 */
export function listImageFolder(dir: string): { classes: string[]; files: { file: string; cls: number }[] } {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    throw new Error(`vit-wasm: ${dir}: cannot list the image folder: ${(e as Error).message}`);
  }
  const classes = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort(byCodePoint);
  if (classes.length === 0)
    throw new Error(
      `vit-wasm: ${dir}: no class folders (the layout is DIR/<class>/<image>.png|jpg, one folder per class)`,
    );
  const files: { file: string; cls: number }[] = [];
  classes.forEach((c, cls) => {
    const found = imagesUnder(path.join(dir, c));
    if (found.length === 0) throw new Error(`vit-wasm: ${path.join(dir, c)}: class '${c}' has no PNG or JPEG images`);
    for (const file of found) files.push({ file, cls });
  });
  return { classes, files };
}

/** Writes files into a directory, creating it. */
export async function writeLocalFiles(dir: string, files: Record<string, string | Uint8Array>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(path.join(dir, name), data);
}

/** A model directory on disk. Tensors are read one at a time into a caller-owned buffer. */
export async function localModelFiles(dir: string, limits: Limits): Promise<ModelFiles> {
  const full = (f: string) => path.join(dir, f);
  if (dir === '') throw new Error('vit-wasm: the model location is an empty string (give a directory path or URL)');
  const st = await stat(dir).catch(() => null);
  if (!st) throw new Error(`vit-wasm: model directory ${dir} does not exist`);
  if (!st.isDirectory())
    throw new Error(`vit-wasm: ${dir} is not a directory (give the folder holding config.json and model.safetensors)`);
  return {
    where: dir,
    limits,
    // anything by that name "exists": reading a FIFO or a directory is then refused by name
    async exists(f) {
      return stat(full(f)).then(
        () => true,
        () => false,
      );
    },
    async text(f) {
      const bytes = await readLocalFile(full(f), 'model file', { key: 'maxJsonBytes', max: limits.maxJsonBytes });
      return new TextDecoder().decode(bytes);
    },
    async open(f) {
      const name = full(f);
      const { fh, size } = await openRegular(name, 'model file');
      return {
        name,
        size,
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

export type { WorkerHandle, WorkerKind };

/**
 * Starts a pool worker: dist/worker.js or dist/train-worker.js beside this library (from src/ or
 * dist/ alike), or `override`. `onDeath` is told when it exits or fails.
 */
export function startWorker(
  kind: WorkerKind,
  override: string | URL | undefined,
  onDeath: (why: string) => void,
): WorkerHandle {
  const url =
    override === undefined
      ? workerFile(kind)
      : override instanceof URL
        ? override
        : /^(file|data):/.test(override)
          ? new URL(override)
          : pathToFileURL(override);
  // Workers inherit the parent's node flags, but --input-type (from `node --input-type=module -e …`)
  // breaks loading a worker file: start those with none (listing flags would reject per-process ones).
  const execArgv = process.execArgv.some((a) => a.startsWith('--input-type')) ? [] : undefined;
  const w = new Worker(url, { execArgv });
  w.on('error', (e) => onDeath(`failed: ${e.message}`));
  w.on('exit', (code) => onDeath(`exited (code ${code})`));
  return {
    endpoint: nodeEndpoint(w),
    terminate: () => void w.terminate(),
    // Node stays alive until the worker is gone: terminating an idle worker does not keep the event
    // loop alive by itself, so a caller awaiting it could see Node exit first (a fuzz case ended with
    // exit code 13, an unsettled await, in about one run of five); a timer holds the loop meanwhile
    kill: () => {
      const hold = setInterval(() => {}, 1000);
      return w
        .terminate()
        .finally(() => clearInterval(hold))
        .then(() => {});
    },
    ref: (on) => (on ? w.ref() : w.unref()),
  };
}

/**
 * dist/<kind>.js beside this library; or, where the library was bundled into an app (esbuild
 * --platform=node: no dist/ beside the bundle), the installed package's, found as Node finds
 * `vit-wasm` from the bundle. An Error naming both places otherwise.
 */
function workerFile(kind: WorkerKind): URL {
  const beside = packageFile(`dist/${kind}.js`);
  if (existsSync(beside)) return beside;
  let installed: string | undefined;
  try {
    installed = import.meta.resolve(`vit-wasm/dist/${kind}.js`);
  } catch {
    // not resolvable: named below
  }
  if (installed && existsSync(new URL(installed))) return new URL(installed);
  throw new Error(
    `vit-wasm: the ${kind} script is neither at ${fileURLToPath(beside)} nor found as vit-wasm/dist/${kind}.js from ${fileURLToPath(import.meta.url)}: keep the vit-wasm package installed beside a bundled app, or pass workerUrl (its dist/${kind}.js)`,
  );
}

/** Inside a worker: ends it as a crash would (fault tests). */
export function exitThisWorker(): never {
  process.exit(1);
}

/** Inside a worker: serves `api` to the thread that started it. */
export function exposeToParent(api: object): void {
  Comlink.expose(api, nodeEndpoint(parentPort!));
}
