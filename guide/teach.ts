/**
 * Step 15 of the guide: teach the model your own classes. Name two or more classes, give each
 * pictures (drawings from the pad, image files or a folder), and fine-tune the loaded model with a
 * new head in this page's workers — a linear probe, or every layer on request — with curves, a
 * held-back accuracy, a try on the pad, and the result as a zip of its model directory.
 */
import { strToU8, zipSync } from 'fflate';
import { createTrainer, type Example, loadModel, softmax, type Trainer, type ViTModel } from '../src/index.js';
import { bars } from './draw.js';
import { $, canvas, type State } from './state.js';
import { curves } from './train.js';

interface TeachClass {
  name: HTMLInputElement;
  count: HTMLElement;
  /** Model inputs from the pad, or image files. */
  pictures: (Float32Array | File)[];
}

/** The class rows, the Teach / Try / Download controls, and the training run behind them. */
export function setUpTeaching(s: State): void {
  const list = $('#teach-classes'),
    status = $('#teach-status'),
    teach = $<HTMLButtonElement>('#teach-train'),
    tryIt = $<HTMLButtonElement>('#teach-try'),
    download = $<HTMLAnchorElement>('#teach-download');
  const classes: TeachClass[] = [];
  let taught: { model: ViTModel; labels: string[]; files: Record<string, string | Uint8Array> } | null = null;
  const ready = () => {
    teach.disabled = classes.filter((c) => c.pictures.length >= 2).length < 2 || teach.textContent === 'Teaching…';
  };
  const addClass = (name: string) => {
    const row = document.createElement('p'),
      c: TeachClass = {
        name: Object.assign(document.createElement('input'), { value: name, size: 10, ariaLabel: 'class name' }),
        count: document.createElement('span'),
        pictures: [],
      };
    const fromPad = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Add the pad' });
    const files = Object.assign(document.createElement('input'), { type: 'file', multiple: true, accept: 'image/*' });
    files.setAttribute('aria-label', `pictures for class ${name}`);
    const shown = () => {
      c.count.textContent = ` ${c.pictures.length} picture${c.pictures.length === 1 ? '' : 's'}`;
      ready();
    };
    fromPad.addEventListener('click', () => {
      if (s.trace) c.pictures.push(s.trace.pixels.data.slice()); // the pad as the model sees it
      shown();
    });
    files.addEventListener('change', () => {
      c.pictures.push(...Array.from(files.files ?? []));
      files.value = '';
      shown();
    });
    row.append(c.name, ' ', fromPad, ' ', files, c.count);
    list.append(row);
    classes.push(c);
    shown();
  };
  addClass('first');
  addClass('second');
  $('#teach-add-class').addEventListener('click', () => addClass(`class ${classes.length + 1}`));

  teach.addEventListener('click', async () => {
    teach.textContent = 'Teaching…';
    ready();
    try {
      taught = await run(s, classes, $<HTMLInputElement>('#teach-full').checked, status, taught);
      const files: Record<string, Uint8Array> = {};
      for (const [k, v] of Object.entries(taught.files)) files[`my-vit/${k}`] = typeof v === 'string' ? strToU8(v) : v;
      download.href = URL.createObjectURL(
        new Blob([zipSync(files) as Uint8Array<ArrayBuffer>], { type: 'application/zip' }),
      );
      download.hidden = false;
      tryIt.disabled = false;
    } catch (e) {
      status.textContent = (e as Error).message;
    } finally {
      teach.textContent = 'Teach';
      ready();
    }
  });
  tryIt.addEventListener('click', async () => {
    if (!taught || !s.trace) return;
    const probs = softmax(await taught.model.forward(s.trace.pixels.data.slice(), 1));
    bars(canvas('teach-result'), taught.labels, probs, 300);
    const best = probs.indexOf(Math.max(...probs));
    $('#teach-result-text').textContent = `the pad, to the taught model: ${taught.labels[best]}`;
  });
}

/** Fine-tunes the guide's model on the classes; resolves to the taught model (loaded) and its files. */
async function run(
  s: State,
  classes: TeachClass[],
  full: boolean,
  status: HTMLElement,
  previous: { model: ViTModel } | null,
): Promise<{ model: ViTModel; labels: string[]; files: Record<string, string | Uint8Array> }> {
  const used = classes.filter((c) => c.pictures.length >= 2),
    labels = used.map((c, i) => c.name.value.trim() || `class ${i + 1}`);
  if (new Set(labels).size !== labels.length) throw new Error('Two classes have the same name: rename one.');
  // every fourth picture of a class is held back: the accuracy on them says how well it generalises
  const train: Example[] = [],
    held: Example[] = [];
  used.forEach((c, label) => c.pictures.forEach((image, i) => (i % 4 === 3 ? held : train).push({ image, label })));
  const epochs = 30,
    B = 8,
    steps = epochs * Math.ceil(train.length / B);
  const trainer: Trainer = await createTrainer(null, {
    from: s.modelUrl,
    newHead: true,
    labels,
    freeze: full ? 'none' : 'all',
    maxBatch: B,
    lr: full ? 3e-4 : 3e-3,
    warmupSteps: Math.round(steps * 0.1),
    totalSteps: steps,
    threads: s.model.runtime.sharedMemory ? 2 : 1,
    seed: 1,
  });
  try {
    const losses: number[] = [],
      accuracies: [number, number][] = [];
    status.textContent = `teaching ${labels.length} classes from ${train.length} pictures (${held.length} held back), ${full ? 'every layer' : 'the new head only'}, in ${trainer.runsIn === 'workers' ? `${trainer.threads} workers` : 'a worker'}…`;
    await trainer.fit(train, {
      epochs,
      batchSize: B,
      preprocessing: s.model.preprocessing,
      augment: 'none',
      validation: held.length ? held : undefined,
      onStep: (st) => {
        losses.push(st.loss);
        curves(canvas('teach-curves'), losses, accuracies, steps);
      },
      onEpoch: (e) => {
        if (e.validationAccuracy !== null) accuracies.push([losses.length, e.validationAccuracy]);
        status.textContent = `epoch ${e.epoch} of ${epochs}: loss ${e.loss.toFixed(3)}, training accuracy ${(100 * e.accuracy).toFixed(0)}%${e.validationAccuracy === null ? '' : `, held back ${(100 * e.validationAccuracy).toFixed(0)}%`}`;
        curves(canvas('teach-curves'), losses, accuracies, steps);
      },
    });
    const pre = s.model.preprocessing,
      files = trainer.files({ image_mean: pre.imageMean, image_std: pre.imageStd });
    if (previous) await previous.model.dispose();
    const model = await loadModel(files, { threads: 1 });
    (window as unknown as { __teach: unknown }).__teach = { labels, held: held.length, epochs };
    status.textContent += held.length ? ' — done' : ' — done (add 4 or more pictures to a class to hold some back)';
    return { model, labels, files };
  } finally {
    await trainer.dispose();
  }
}
