/** Serves a worker's API to the thread that started it, over comlink: Node worker_threads or a Web Worker. */
import * as Comlink from 'comlink';

export async function exposeToParent(api: object): Promise<void> {
  if (typeof process !== 'undefined' && process.versions?.node) {
    const { parentPort } = await import('node:worker_threads');
    const { default: nodeEndpoint } = await import('comlink/dist/esm/node-adapter.mjs');
    Comlink.expose(api, nodeEndpoint(parentPort!));
  } else {
    Comlink.expose(api);
  }
}
