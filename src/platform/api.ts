/**
 * The types src/platform/platform.ts (Node) and src/platform/platform.browser.ts (browsers) share:
 * each implements the same functions over them, and the build picks one.
 */
import type { Endpoint } from 'comlink';
import type { Limits } from './limits.js';

/** The two worker scripts the pools run. */
export type WorkerKind = 'worker' | 'train-worker';

/** A started worker, as the pool drives it. */
export interface WorkerHandle {
  endpoint: Endpoint;
  terminate(): void;
  /** Ends the worker as a crash would (tests): resolves once it is gone and its `onDeath` has fired. */
  kill(): Promise<void>;
  /** Node: let an idle worker not keep the process alive (browsers: nothing). */
  ref(on: boolean): void;
}

/** One file of a model, read by ranges. */
export interface ByteSource {
  /** The file's name, used in error messages. */
  readonly name: string;
  readonly size: number;
  /** Bytes [offset, offset + length); `into` (at least `length` bytes, 8-byte aligned) may be filled and returned. */
  read(offset: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** The files of one model directory, wherever it is (disk, URL, memory). */
export interface ModelFiles {
  /** A label for messages (the directory or URL). */
  readonly where: string;
  /** What may be read (JSON size and depth, header size, labels, downloads). */
  readonly limits: Limits;
  exists(file: string): Promise<boolean>;
  text(file: string): Promise<string>;
  open(file: string): Promise<ByteSource>;
}

/**
 * Why this engine cannot share a wasm memory between threads (`host` names it in the message:
 * "Node", "browser"), or null when it can: the engine-level half of each platform's
 * sharedMemoryUnavailable.
 */
export function sharedMemoryMissing(host: string): string | null {
  if (typeof SharedArrayBuffer === 'undefined') return `this ${host} has no SharedArrayBuffer`;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return `this ${host} cannot create shared WebAssembly memory`;
  }
  return null;
}

/** Strings in code-unit order, as Python's sorted() orders class folders for torchvision's ImageFolder (not locale order). */
export const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
