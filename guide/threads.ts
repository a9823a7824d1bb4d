/** The threads panel: the same forward on 1, 2, … workers, timed, and its bits compared. */
import { loadModel } from '../src/index.js';
import { prepare } from './draw.js';
import { $, canvas, type State } from './state.js';

/**
 * The current digit's forward on 1, 2, … workers (up to the reported cores, at most 8): median time
 * per forward, and whether every count gave the same logits, bit for bit.
 */
export async function compareThreads(s: State): Promise<void> {
  const out = $('#thread-result'),
    button = $<HTMLButtonElement>('#run-threads');
  const pixels = s.trace!.pixels.data.slice();
  const max = Math.max(1, Math.min(8, navigator.hardwareConcurrency || 1));
  if (!s.model.runtime.workers) {
    out.textContent = `Threads are off in this page: ${s.model.runtime.fallback}`;
    return;
  }
  button.disabled = true;
  const rows: { threads: number; ms: number; bits: string }[] = [];
  try {
    for (let n = 1; n <= max; n++) {
      out.textContent = `running on ${n} thread${n > 1 ? 's' : ''}…`;
      const m = await loadModel(s.modelUrl, { threads: n });
      for (let k = 0; k < 5; k++) await m.forward(pixels, 1); // warm-up
      const times: number[] = [];
      let logits: Float32Array = new Float32Array(0);
      for (let k = 0; k < 30; k++) {
        const t0 = performance.now();
        logits = await m.forward(pixels, 1);
        times.push(performance.now() - t0);
      }
      await m.dispose();
      times.sort((a, b) => a - b);
      rows.push({ threads: n, ms: times[times.length >> 1], bits: Array.from(new Uint32Array(logits.buffer)).join() });
    }
  } finally {
    button.disabled = false;
  }
  const same = rows.every((r) => r.bits === rows[0].bits);
  const cv = canvas('thread-chart'),
    w = 300,
    rowH = 22,
    ctx = prepare(cv, w, rowH * rows.length);
  const top = Math.max(...rows.map((r) => r.ms));
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  rows.forEach((r, k) => {
    const y = k * rowH,
      len = ((w - 110) * r.ms) / top;
    ctx.fillStyle = '#333';
    ctx.fillText(`${r.threads} thr`, 0, y + rowH / 2);
    ctx.fillStyle = '#6a1b9a';
    ctx.fillRect(44, y + 4, len, rowH - 8);
    ctx.fillStyle = '#333';
    ctx.fillText(`${r.ms.toFixed(2)} ms`, 48 + len, y + rowH / 2);
  });
  out.textContent = `median time per forward; ${same ? 'every thread count gave the same logits, bit for bit' : 'the logits DIFFER between thread counts'}`;
  (window as unknown as { __threads: unknown }).__threads = {
    same,
    rows: rows.map(({ threads, ms }) => ({ threads, ms })),
  };
}
