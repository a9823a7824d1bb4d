// The bundled digit model on one bundled digit, from the installed package: the same file runs in
// Node (`node classify.mjs`), Deno 2 (`deno run -A classify.mjs`) and Bun (`bun classify.mjs`).
// Prints the label, the score's float32 bits (equal in every runtime) and what the runtime gave.
import { fileURLToPath } from 'node:url';
import { loadModel } from 'vit-wasm';

const assets = fileURLToPath(new URL('./node_modules/vit-wasm/assets/', import.meta.url));
const model = await loadModel(`${assets}mnist-vit`, { threads: 2 });
const [top] = await model.classify(`${assets}digits/digit-04-label-4.png`);
const bits = new Uint32Array(Float32Array.of(top.score).buffer)[0];
console.log(JSON.stringify({ label: top.label, score: top.score, bits, runtime: model.runtime }));
await model.dispose();
