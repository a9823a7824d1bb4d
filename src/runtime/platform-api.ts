/**
 * The types src/platform.ts (Node) and src/platform.browser.ts (browsers) share: each implements
 * the same functions over them, and the build picks one.
 */
import type { Endpoint } from 'comlink';

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
