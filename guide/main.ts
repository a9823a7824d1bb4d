/**
 * The live guide: "A Visual Guide to Vision Transformers", step by step, drawn from the real model
 * on the current image. Every picture comes from one `model.trace(pixels)`: the same forward as
 * `classify`, with every intermediate kept. This file wires the page: the model, the drawing pad
 * and the controls; render.ts draws, train.ts is step 14, threads.ts the threads panel.
 */
import { loadModel, tokens, type ViTModel } from '../src/index.js';
import { drawn } from './draw.js';
import { render } from './render.js';
import { $, canvas, type State } from './state.js';
import { setUpTeaching } from './teach.js';
import { compareThreads } from './threads.js';
import { setUpTraining } from './train.js';
import { drawZeroShot, setUpZeroShot } from './zero-shot.js';

const SAMPLES = [
  '00-label-0',
  '01-label-1',
  '02-label-2',
  '03-label-3',
  '04-label-4',
  '05-label-5',
  '06-label-6',
  '07-label-7',
  '08-label-8',
  '09-label-9',
  '10-label-0',
  '11-label-1',
];

async function main(): Promise<void> {
  // ?model=URL (relative to the page) walks another ViT through the story; the default is the bundled digit model
  const modelUrl = new URLSearchParams(location.search).get('model') || './model/';
  const model = await loadModel(modelUrl);
  const isDigitModel =
    model.config.numChannels === 1 && model.config.imageSize.join() === '28,28' && model.config.numLabels === 10;
  $('#model-name').textContent = modelUrl === './model/' ? 'the bundled digit ViT' : modelUrl;
  $<HTMLInputElement>('#model-url').value = modelUrl === './model/' ? '' : modelUrl;
  const state: State = { model, modelUrl, trace: null, layer: 0, head: 0, token: 0, truth: null };
  describeModel(state);
  const pad = setUpPad(state, isDigitModel);
  setUpPicking(state);
  (window as unknown as { __pick: (n: string) => Promise<void> }).__pick = pad.pick;
  $('#run-threads').addEventListener('click', () => compareThreads(state));
  const use = (m: ViTModel) => {
    // the pad traces with state.model from now on; the old model goes once it is no longer in use
    const old = state.model;
    state.model = m;
    pad.update(state.trace!.pixels.data.slice());
    void pad.idle().then(() => old.dispose());
  };
  if (!isDigitModel) {
    $<HTMLButtonElement>('#train').disabled = true;
    $('#train-status').textContent = 'Training in the page is for the bundled digit model (28×28 grey, 10 classes).';
  } else setUpTraining(state, use);
  setUpTeaching(state, use);
  setUpZeroShot(state);
  await pad.pick('07-label-7');
}

/** The runtime line, the shapes under the pictures in this model's sizes, and the layer/head/token lists. */
function describeModel(s: State): void {
  const c = s.model.config,
    [H, W] = c.imageSize,
    p = c.patchSize,
    { T, Np } = tokens(c);
  const r = s.model.runtime;
  $('#runtime').textContent =
    `${r.threads} thread${r.threads > 1 ? 's' : ''}, ${r.simd === 'relaxed' ? 'relaxed SIMD (FMA)' : 'SIMD'} kernels` +
    (r.fallback ? ` — threads are off: ${r.fallback}` : '');
  const sizes: Record<string, string> = {
    T: String(T),
    Np: String(Np),
    P: String(T - Np), // the prefix tokens: cls (and a DeiT's distillation token, or registers)
    D: String(c.hiddenSize),
    M: String(c.intermediateSize),
    dh: String(c.hiddenSize / c.numHeads),
    H: String(c.numHeads),
    L: String(c.numLabels),
    p: String(p),
    C: String(c.numChannels),
    HW: `${H}×${W}`,
    K: String(c.numChannels * p * p),
  };
  for (const el of document.querySelectorAll('[data-shape]')) {
    el.textContent = el.getAttribute('data-shape')!.replace(/\b([A-Za-z]+)\b/g, (m: string) => sizes[m] ?? m);
  }
  fillSelect($<HTMLSelectElement>('#layer'), c.numLayers, (i) => `layer ${i + 1} of ${c.numLayers}`);
  fillSelect($<HTMLSelectElement>('#head'), c.numHeads, (i) => `head ${i + 1} of ${c.numHeads}`);
  // the prefix tokens by what they are: cls, then a DeiT's distillation token or the registers
  const prefix = T - Np,
    kinds = c.arch?.prefix ?? ['cls'],
    names = kinds.map((k, i) =>
      k === 'cls' ? 'cls' : k === 'dist' ? 'distillation' : `register ${i - kinds.indexOf('reg') + 1}`,
    );
  fillSelect($<HTMLSelectElement>('#token'), T, (i) =>
    i < prefix ? `token ${i} (${names[i]})` : `token ${i} (patch ${i - prefix})`,
  );
}

/**
 * The input: a pad to draw on, held-out digits to pick, an image to drop. Each change traces the
 * current model (state.model: step 14 may swap in the one it trained) and redraws, one frame at a time.
 */
function setUpPad(s: State, isDigitModel: boolean) {
  const status = $('#status'),
    [H, W] = s.model.config.imageSize;
  const pad = canvas('pad'),
    ctx = pad.getContext('2d', { willReadFrequently: true })!;
  pad.width = W;
  pad.height = H;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, W, H);
  };
  clear();
  // one trace of the pad at a time; a change while one runs is traced when it ends (so the last
  // stroke is always traced)
  let pending = false,
    again = false;
  // the trace in flight: a model swapped out (step 14) is disposed only after it has finished
  let inFlight: Promise<void> = Promise.resolve();
  (window as unknown as { __padIdle: () => boolean }).__padIdle = () => !pending; // for tests
  const update = (pixels?: Float32Array) => {
    if (pending && !pixels) {
      again = true;
      return;
    }
    pending = true;
    requestAnimationFrame(() => {
      const model = s.model; // read now: after a swap, the new one
      inFlight = (async () => {
        try {
          const t0 = performance.now();
          const input = pixels ?? (await model.pixels(ctx.getImageData(0, 0, W, H)));
          s.trace = await model.trace(input);
          const t1 = performance.now();
          render(s);
          await drawZeroShot(s); // a model with a text tower: the labels typed, ranked for this picture
          const t2 = performance.now();
          status.textContent = `trace ${(t1 - t0).toFixed(1)} ms, redraw ${(t2 - t1).toFixed(1)} ms`;
          (window as unknown as { __guide: unknown }).__guide = { ...guideApi(s), traceMs: t1 - t0, drawMs: t2 - t1 };
        } catch (e) {
          status.textContent = (e as Error).message;
        } finally {
          pending = false; // a failed trace must not stop the pad
          if (again) {
            again = false;
            update();
          }
        }
      })();
    });
  };
  drawing(
    pad,
    ctx,
    () => {
      s.truth = null;
    },
    update,
  );
  $('#clear').addEventListener('click', () => {
    clear();
    s.truth = null;
    update();
  });
  async function pick(name: string): Promise<void> {
    const bytes = new Uint8Array(await (await fetch(`./digits/digit-${name}.png`)).arrayBuffer());
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    ctx.drawImage(bitmap, 0, 0, W, H);
    s.truth = isDigitModel ? name.slice(-1) : null;
    // the PNG's own bytes (vit-wasm's decoder): the same pixels, and so the same bits, as in Node
    update(await s.model.pixels(bytes));
  }
  const samples = $('#samples');
  for (const name of SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = name.slice(-1);
    b.title = `held-out digit ${name.slice(0, 2)} (a ${name.slice(-1)})`;
    b.addEventListener('click', () => pick(name));
    samples.append(b);
  }
  // drop an image: it is read as the model reads any image (resized, to grey), and shown on the pad
  pad.addEventListener('dragover', (e) => e.preventDefault());
  pad.addEventListener('drop', async (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files[0];
    if (!file) return;
    try {
      const pixels = await s.model.pixels(file);
      const bitmap = await createImageBitmap(file);
      clear();
      ctx.drawImage(bitmap, 0, 0, W, H);
      s.truth = null;
      update(pixels);
    } catch (err) {
      status.textContent = (err as Error).message;
    }
  });
  /** Resolves when the trace in flight (if any) has finished. */
  const idle = () => inFlight;
  return { update, pick, idle };
}

/** Strokes on the pad with the pointer: white, round, a pen about a digit's stroke wide. */
function drawing(pad: HTMLCanvasElement, ctx: CanvasRenderingContext2D, onStart: () => void, update: () => void): void {
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const b = pad.getBoundingClientRect();
    return [((e.clientX - b.left) / b.width) * pad.width, ((e.clientY - b.top) / b.height) * pad.height];
  };
  const stroke = (a: [number, number], b: [number, number]) => {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = pad.width / 11;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.stroke();
    update();
  };
  pad.addEventListener('pointerdown', (e) => {
    pad.setPointerCapture(e.pointerId);
    last = at(e);
    onStart();
    stroke(last, last);
  });
  pad.addEventListener('pointermove', (e) => {
    if (!last) return;
    const q = at(e);
    stroke(last, q);
    last = q;
  });
  const end = () => {
    last = null;
  };
  pad.addEventListener('pointerup', end);
  pad.addEventListener('pointercancel', end);
}

/** The layer, head and token lists, and choosing a token on the attention overlay by click or arrow keys. */
function setUpPicking(s: State): void {
  const [H, W] = s.model.config.imageSize,
    p = s.model.config.patchSize,
    gw = W / p,
    gh = H / p,
    { T, Np } = tokens(s.model.config),
    prefix = T - Np; // the cls token (and a DeiT's distillation token, or registers) before the patches
  for (const [id, key] of [
    ['layer', 'layer'],
    ['head', 'head'],
    ['token', 'token'],
  ] as const) {
    $<HTMLSelectElement>(`#${id}`).addEventListener('change', (e) => {
      s[key] = Number((e.target as HTMLSelectElement).value);
      render(s);
    });
  }
  const choose = (token: number) => {
    s.token = token;
    $<HTMLSelectElement>('#token').value = String(token);
    render(s);
  };
  // the arrow keys move the chosen patch over the grid (Home: back to the cls token)
  canvas('overlay').addEventListener('keydown', (e) => {
    const at = Math.max(0, s.token - prefix);
    let x = at % gw,
      y = Math.floor(at / gw);
    if (e.key === 'Home') {
      e.preventDefault();
      choose(0);
      return;
    }
    if (!e.key.startsWith('Arrow')) return;
    e.preventDefault();
    if (s.token < prefix) {
      choose(prefix); // from a prefix token, the first patch
      return;
    }
    if (e.key === 'ArrowLeft') x = Math.max(0, x - 1);
    if (e.key === 'ArrowRight') x = Math.min(gw - 1, x + 1);
    if (e.key === 'ArrowUp') y = Math.max(0, y - 1);
    if (e.key === 'ArrowDown') y = Math.min(gh - 1, y + 1);
    choose(prefix + y * gw + x);
  });
  canvas('overlay').addEventListener('click', (e) => {
    const b = canvas('overlay').getBoundingClientRect();
    const gx = Math.floor(((e.clientX - b.left) / b.width) * gw),
      gy = Math.floor(((e.clientY - b.top) / b.height) * gh);
    choose(prefix + gy * gw + gx);
  });
}

function fillSelect(sel: HTMLSelectElement, n: number, label: (i: number) => string): void {
  sel.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(label(i), String(i))));
}

/** What the tests read: the current probabilities' bits and whether every picture is drawn. */
function guideApi(s: State) {
  return {
    probabilities: Array.from(new Uint32Array(s.trace!.probabilities.data.buffer.slice(0))),
    logits: Array.from(s.trace!.logits.data),
    /** Which step pictures have anything drawn (read back on demand: it is slow). */
    drawn: () =>
      Object.fromEntries(
        [...document.querySelectorAll<HTMLCanvasElement>('canvas[data-step]')].map((cv) => [cv.id, drawn(cv)]),
      ),
    runtime: s.model.runtime,
  };
}

main().catch((e) => {
  $('#status').textContent = `Error: ${(e as Error).message}`;
  (window as unknown as { __guide: unknown }).__guide = { error: (e as Error).message };
});
