/**
 * The browser's side of src/platform/platform.ts (same exports): the browser build swaps this file in.
 * Workers start from their own source, carried inside the library as a string and handed to the
 * Worker as a Blob URL, so a bundler has no worker or wasm file to find; `workerUrl` overrides that
 * for pages whose Content-Security-Policy forbids blob: workers.
 */

// Filled in by scripts/build.mjs: the minified browser worker bundles (empty inside the workers themselves).
import { TRAIN_WORKER_SOURCE, WORKER_SOURCE } from 'vit-wasm:embedded-workers';
import * as Comlink from 'comlink';
import { type ModelFiles, sharedMemoryMissing, type WorkerHandle, type WorkerKind } from './api.js';

export const PLATFORM: 'node' | 'browser' = 'browser';

/**
 * The browser by its user-agent string's product token, with its major version (`Chrome 131`,
 * `Firefox 140`, `Safari 18`, `WebKitGTK`, `WebKit` where no Safari version is given), for logs and bug reports.
 */
export function engineName(): string {
  const ua = (globalThis.navigator as Navigator | undefined)?.userAgent ?? '';
  const m = /(Firefox|Edg|OPR|Chrome)\/(\d+)/.exec(ua);
  if (m) return `${{ Edg: 'Edge', OPR: 'Opera' }[m[1]] ?? m[1]} ${m[2]}`;
  if (!/AppleWebKit/.test(ua)) return 'an unknown browser';
  // WebKitGTK (Epiphany, MiniBrowser) claims a Safari version too; Safari itself never runs on Linux
  if (/Linux/.test(ua) && !/Android/.test(ua)) return 'WebKitGTK';
  const safari = /Version\/(\d+)[.\d]* (?:Mobile\/\S+ )?Safari\//.exec(ua);
  return safari ? `Safari ${safari[1]}` : 'WebKit';
}

/** `navigator.hardwareConcurrency`, at most 8: more rarely pays on a phone or laptop. */
export function defaultThreadCount(): number {
  const hc = (globalThis.navigator as Navigator | undefined)?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(8, hc));
}

/** Node's test switch (platform.ts); pages always calibrate. */
export function splitEveryOp(): boolean {
  return false;
}

/** Why threads (shared memory) are unavailable, or null when they are. */
export function sharedMemoryUnavailable(): string | null {
  if ((globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated !== true) {
    return (
      'the page is not cross-origin isolated: serve it with the headers "Cross-Origin-Opener-Policy: same-origin" and ' +
      '"Cross-Origin-Embedder-Policy: require-corp" (or credentialless), or, on a static host that cannot set headers, ' +
      "load vit-wasm's coi-serviceworker.js (see the README)"
    );
  }
  return sharedMemoryMissing('browser');
}

/** Browsers have relaxed SIMD on where they have it at all. */
export function enableRelaxedSimd(): void {}

/** Where relative URLs are resolved: the page's base URL, or a worker's own location. */
function baseUrl(): string | undefined {
  const g = globalThis as { document?: { baseURI?: string }; location?: { href?: string } };
  return g.document?.baseURI ?? g.location?.href;
}

/** Every string is a URL in a browser, relative ones resolved against the page (document.baseURI). */
export function locate(s: string): { url: string } | { path: string } {
  try {
    return { url: new URL(s, baseUrl()).href };
  } catch {
    throw new Error(`vit-wasm: '${s}' is not a URL, and there is no page URL to resolve it against`);
  }
}

export async function readLocalFile(file: string, _what?: string, _limit?: unknown): Promise<Uint8Array> {
  throw new Error(`vit-wasm: ${file}: local files can be read only in Node; in a browser give a URL, a Blob or bytes`);
}

export async function writeLocalFiles(dir: string): Promise<void> {
  throw new Error(
    `vit-wasm: cannot write ${dir}: writing files needs Node; in a browser use trainer.files() and offer the bytes as downloads`,
  );
}

export function imagesUnder(dir: string): never {
  throw new Error(`vit-wasm: cannot list ${dir}: folders on disk need Node; in a browser pass the files`);
}

export function listImageFolder(dir: string): never {
  throw new Error(
    `vit-wasm: cannot list ${dir}: image folders on disk need Node; in a browser pass the files (filesDataset: an <input webkitdirectory> or dropped folder)`,
  );
}

export async function localModelFiles(dir: string, _limits?: unknown): Promise<ModelFiles> {
  throw new Error(`vit-wasm: ${dir}: local directories can be read only in Node; in a browser give the model's URL`);
}

export type { WorkerHandle, WorkerKind };

const blobUrls = new Map<WorkerKind, string>();

function embeddedWorkerUrl(kind: WorkerKind): string {
  let url = blobUrls.get(kind);
  if (!url) {
    const source = kind === 'worker' ? WORKER_SOURCE : TRAIN_WORKER_SOURCE;
    if (!source) throw new Error(`vit-wasm: this build carries no ${kind} source; pass workerUrl`);
    url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    blobUrls.set(kind, url);
  }
  return url;
}

/**
 * Starts a pool worker (a classic script): from the source carried in this library, or from
 * `override` (the package's dist/worker.browser.js or dist/train-worker.browser.js, served by the app).
 */
export function startWorker(
  kind: WorkerKind,
  override: string | URL | undefined,
  onDeath: (why: string) => void,
): WorkerHandle {
  const url = override === undefined ? embeddedWorkerUrl(kind) : (locate(String(override)) as { url: string }).url;
  const where = override === undefined ? `its embedded ${kind} script` : url;
  let w: Worker;
  try {
    w = new Worker(url);
  } catch (e) {
    throw new Error(
      `vit-wasm: cannot start a worker from ${where}: ${(e as Error).message}` +
        (override === undefined
          ? ' (a Content-Security-Policy without worker-src blob: forbids it; serve dist/worker.browser.js and pass workerUrl)'
          : ''),
    );
  }
  w.addEventListener('error', (e) => {
    e.preventDefault();
    onDeath(
      `failed: ${
        e.message ||
        `could not load or run ${where}` +
          (
            override === undefined
              ? ' (blocked by a Content-Security-Policy? then serve dist/worker.browser.js and pass workerUrl)'
              : ' (is the URL right, and served as JavaScript?)'
          )
      }`,
    );
  });
  return {
    endpoint: w,
    terminate: () => w.terminate(),
    kill: async () => {
      w.terminate();
      onDeath('was terminated');
    },
    ref: () => {},
  };
}

export function exitThisWorker(): never {
  (globalThis as unknown as { close(): void }).close();
  throw new Error('vit-wasm: worker closed');
}

export function exposeToParent(api: object): void {
  Comlink.expose(api);
}
