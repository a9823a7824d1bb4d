// A user's module worker that imports vit-wasm: the model loads and runs here, off the page's thread.
import { loadModel } from '../../dist/vit-wasm.browser.js';

self.onmessage = async ({ data: { model, batch, threads } }) => {
  try {
    const input = new Float32Array(await (await fetch(`../fixtures/models/${model}/input.f32`)).arrayBuffer());
    const m = await loadModel(`../fixtures/models/${model}/`, { threads, simd: 'simd' });
    const out = await m.forward(input, batch);
    self.postMessage({ bits: Array.from(new Uint32Array(out.buffer)), runtime: m.runtime });
    await m.dispose();
  } catch (e) {
    self.postMessage({ error: String(e?.message ?? e) });
  }
};
