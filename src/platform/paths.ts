/**
 * Files of the installed package (Node only): the worker scripts, the bundled model, the bench
 * wasm. This module runs from src/runtime/ (tests run the sources) or bundled into dist/.
 */
const here = new URL('.', import.meta.url);
const root = new URL(here.pathname.endsWith('/dist/') ? '../' : '../../', here);

/** A path relative to the package root (where package.json is), as a file: URL. */
export function packageFile(rel: string): URL {
  return new URL(rel, root);
}
