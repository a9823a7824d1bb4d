// A Node app bundled with esbuild (--platform=node): the library goes into out/app.mjs; its worker
// scripts are found in the installed package (node_modules/vit-wasm/dist), so nothing is copied.
import { loadModel } from 'vit-wasm';

const model = await loadModel('node_modules/vit-wasm/assets/mnist-vit', { threads: 2 });
const [top] = await model.classify('node_modules/vit-wasm/assets/digits/digit-04-label-4.png');
console.log(JSON.stringify({ label: top.label, score: top.score, runtime: model.runtime }));
await model.dispose();
