declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  /** A Node worker_threads Worker or MessagePort. */
  export default function nodeEndpoint(
    nep: import('node:worker_threads').Worker | import('node:worker_threads').MessagePort,
  ): Endpoint;
}

declare module 'vit-wasm:embedded-workers' {
  /** The browser pool worker (dist/worker.browser.js), as source text; empty inside the workers themselves. */
  export const WORKER_SOURCE: string;
  /** The browser training worker (dist/train-worker.browser.js), as source text. */
  export const TRAIN_WORKER_SOURCE: string;
}
