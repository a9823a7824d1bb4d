// The example app, the same in every example folder: classify the digit on the page with the MNIST
// ViT served beside it, and say how vit-wasm runs (threads, kernel build, and why threads are off
// when they are). window.__result is what the tests read.
import { loadModel } from 'vit-wasm';

async function main() {
  const out = document.querySelector('#result');
  try {
    const model = await loadModel('./mnist-vit/'); // relative to the page
    const [top] = await model.classify(document.querySelector('#digit'), { topK: 1 });
    const r = model.runtime;
    out.textContent =
      `It is a ${top.label} (${(100 * top.score).toFixed(1)}%). ` +
      `vit-wasm ran on ${r.threads} thread${r.threads > 1 ? 's' : ''}, ${r.simd} build` +
      (r.fallback ? `; threads are off because ${r.fallback}.` : '.');
    window.__result = { label: top.label, score: top.score, runtime: r };
  } catch (e) {
    out.textContent = `Error: ${e.message}`;
    window.__result = { error: e.message };
  }
}
main();
