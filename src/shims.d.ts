declare module 'comlink/dist/esm/node-adapter.mjs' {
  import type { Endpoint } from 'comlink';
  /** A Node worker_threads Worker or MessagePort. */
  export default function nodeEndpoint(nep: import('node:worker_threads').Worker | import('node:worker_threads').MessagePort): Endpoint;
}
