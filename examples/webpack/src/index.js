// Classify the digit on the page with the MNIST ViT served beside the bundle, and say how
// vit-wasm runs. window.__result is what the tests read.
import { loadModel } from 'vit-wasm';

async function classifyDigit() {
  const out = document.querySelector('#result');
  try {
    const model = await loadModel('./mnist-vit/');
    const [top] = await model.classify(document.querySelector('#digit'), { topK: 1 });
    const { threads, simd, fallback } = model.runtime;
    out.textContent =
      `It is a ${top.label} (${(100 * top.score).toFixed(1)}%), on ${threads} thread(s), ${simd} build` +
      (fallback ? `; threads are off because ${fallback}.` : '.');
    window.__result = { label: top.label, score: top.score, runtime: model.runtime };
  } catch (e) {
    out.textContent = `Error: ${e.message}`;
    window.__result = { error: e.message };
  }
}
classifyDigit();
