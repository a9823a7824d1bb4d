/**
 * Step 15 of the guide: teach the model your own classes. Name two or more classes, give each
 * pictures (drawings from the pad, image files, a folder, files dropped on its row, photos from the
 * camera; or a folder of class folders at once), and fine-tune the loaded model — or a model
 * folder chosen here — with a new head in this page's workers: a linear probe, or every layer on
 * request; with curves, a held-back accuracy, a try on the pad or a picture, and the result as a
 * zip of its model directory.
 */
import { strToU8, zipSync } from 'fflate';
import {
  createTrainer,
  type Example,
  filesDataset,
  type ImageInput,
  loadModel,
  type ModelLocation,
  softmax,
  type Trainer,
  type ViTModel,
} from '../src/index.js';
import { bars } from './draw.js';
import { $, canvas, type State } from './state.js';
import { curves } from './train.js';

interface TeachClass {
  name: HTMLInputElement;
  count: HTMLElement;
  /** Model inputs from the pad, image files, or camera photos (canvases). */
  pictures: (Float32Array | File | HTMLCanvasElement)[];
  /** Shows the count again after pictures were added. */
  shown: () => void;
}

/** What is taught: the guide's model, or a model folder chosen in this step (its files, loaded once for its preprocessing). */
interface Backbone {
  from: ModelLocation;
  model: ViTModel;
  name: string;
}

/** What the parts of step 15 share. */
interface Teach {
  s: State;
  classes: TeachClass[];
  status: HTMLElement;
  camera: HTMLVideoElement;
  /** The model taught when not the guide's. */
  backbone: Backbone | null;
  taught: { model: ViTModel; labels: string[]; files: Record<string, string | Uint8Array> } | null;
  /** Enables Teach when two classes have two pictures each and no run is on. */
  ready: () => void;
  addClass: (name: string) => TeachClass;
}

/** The class rows, the Teach / Try / Download controls, and the training run behind them. */
export function setUpTeaching(s: State, use: (m: ViTModel) => void): void {
  const teach = $<HTMLButtonElement>('#teach-train'),
    tryIt = $<HTMLButtonElement>('#teach-try'),
    useIt = $<HTMLButtonElement>('#teach-use'),
    download = $<HTMLAnchorElement>('#teach-download');
  const t: Teach = {
    s,
    classes: [],
    status: $('#teach-status'),
    camera: $<HTMLVideoElement>('#teach-camera'),
    backbone: null,
    taught: null,
    ready: () => {
      teach.disabled = t.classes.filter((c) => c.pictures.length >= 2).length < 2 || teach.textContent === 'Teaching…';
    },
    addClass: (name) => addClassRow(t, name),
  };
  t.addClass('first');
  t.addClass('second');
  $('#teach-add-class').addEventListener('click', () => t.addClass(`class ${t.classes.length + 1}`));
  picturesFromFolderAndCamera(t);
  modelFromFolder(t);
  teach.addEventListener('click', async () => {
    teach.textContent = 'Teaching…';
    t.ready();
    try {
      t.taught = await run(s, t.backbone, t.classes, $<HTMLInputElement>('#teach-full').checked, t.status, t.taught);
      const files: Record<string, Uint8Array> = {};
      for (const [k, v] of Object.entries(t.taught.files))
        files[`my-vit/${k}`] = typeof v === 'string' ? strToU8(v) : v;
      download.href = URL.createObjectURL(
        new Blob([zipSync(files) as Uint8Array<ArrayBuffer>], { type: 'application/zip' }),
      );
      download.hidden = false;
      tryIt.disabled = false;
      // the story above can run it where it reads the pad's pictures
      useIt.disabled = !s.trace || t.taught.model.inputSize !== s.trace.pixels.data.length;
    } catch (e) {
      t.status.textContent = (e as Error).message;
    } finally {
      teach.textContent = 'Teach';
      t.ready();
    }
  });
  tryControls(t, tryIt);
  useIt.addEventListener('click', async () => {
    if (!t.taught) return;
    use(await loadModel(t.taught.files, { threads: s.model.runtime.threads })); // its own copy: Try keeps the taught one
    t.status.textContent += ' — the story above now runs the taught model';
  });
}

/** A class's row: its name, the pad, a camera photo, files, and files or folders dropped on it. */
function addClassRow(t: Teach, name: string): TeachClass {
  const { s } = t,
    row = document.createElement('p'),
    c: TeachClass = {
      name: Object.assign(document.createElement('input'), { value: name, size: 10, ariaLabel: 'class name' }),
      count: document.createElement('span'),
      pictures: [],
      shown: () => {
        c.count.textContent = ` ${c.pictures.length} picture${c.pictures.length === 1 ? '' : 's'}`;
        t.ready();
      },
    };
  const fromPad = Object.assign(document.createElement('button'), { type: 'button', textContent: 'Add the pad' });
  const photo = Object.assign(document.createElement('button'), {
    type: 'button',
    textContent: 'Add a photo',
    hidden: !t.camera.srcObject,
  });
  photo.classList.add('teach-photo');
  const files = Object.assign(document.createElement('input'), { type: 'file', multiple: true, accept: 'image/*' });
  files.setAttribute('aria-label', `pictures for class ${name}`);
  fromPad.addEventListener('click', () => {
    if (!s.trace) return;
    if (t.backbone && t.backbone.model.inputSize !== s.trace.pixels.data.length)
      t.status.textContent = `The pad draws ${s.model.config.imageSize.join('×')} pictures for the model above; ${t.backbone.name} reads other sizes: give it image files or photos.`;
    else c.pictures.push(s.trace.pixels.data.slice()); // the pad as the model sees it
    c.shown();
  });
  photo.addEventListener('click', () => {
    c.pictures.push(snapshot(t.camera));
    c.shown();
  });
  files.addEventListener('change', () => {
    c.pictures.push(...Array.from(files.files ?? []));
    files.value = '';
    c.shown();
  });
  row.addEventListener('dragover', (e) => e.preventDefault());
  row.addEventListener('drop', async (e) => {
    e.preventDefault();
    c.pictures.push(...(await droppedImages(e.dataTransfer)));
    c.shown();
  });
  row.append(c.name, ' ', fromPad, ' ', photo, ' ', files, c.count);
  $('#teach-classes').append(row);
  t.classes.push(c);
  c.shown();
  return c;
}

/** A folder of class folders (ImageFolder: a class per folder), and the camera's photos. */
function picturesFromFolderAndCamera(t: Teach): void {
  const folder = $<HTMLInputElement>('#teach-folder');
  folder.addEventListener('change', () => {
    try {
      const { classes: names, examples } = filesDataset(folder.files ?? []);
      for (const [i, n] of names.entries()) {
        // a class of that name, else an empty row with its default name, else a new row
        const c =
          t.classes.find((k) => k.name.value === n) ??
          t.classes.find((k) => !k.pictures.length && /^(first|second|class \d+)$/.test(k.name.value)) ??
          t.addClass(n);
        c.name.value = n;
        c.pictures.push(...examples.filter((e) => e.label === i).map((e) => e.image as File));
        c.shown();
      }
      t.status.textContent = `${examples.length} pictures in ${names.length} classes from the folder`;
    } catch (e) {
      t.status.textContent = (e as Error).message;
    }
    folder.value = '';
  });
  $('#teach-camera-on').addEventListener('click', async () => {
    try {
      t.camera.srcObject = await navigator.mediaDevices.getUserMedia({ video: true });
      t.camera.hidden = false;
      await t.camera.play();
      for (const b of document.querySelectorAll<HTMLButtonElement>('.teach-photo')) b.hidden = false;
    } catch (e) {
      t.status.textContent = `No camera: ${(e as Error).message}`;
    }
  });
}

/** Another model to teach: a model folder (config.json, model.safetensors, preprocessor_config.json). */
function modelFromFolder(t: Teach): void {
  const input = $<HTMLInputElement>('#teach-model');
  input.addEventListener('change', async () => {
    try {
      const files: Record<string, Uint8Array> = {};
      for (const f of Array.from(input.files ?? [])) files[f.name] = new Uint8Array(await f.arrayBuffer());
      const model = await loadModel(files, { threads: 1 });
      const name =
        (input.files?.[0] as File & { webkitRelativePath?: string })?.webkitRelativePath?.split('/')[0] ||
        'the chosen model';
      if (t.backbone) await t.backbone.model.dispose();
      t.backbone = { from: files, model, name };
      $('#teach-model-name').textContent = `${name} (${model.family}, ${model.config.imageSize.join('×')} px)`;
    } catch (e) {
      t.status.textContent = (e as Error).message;
    }
  });
}

/** Try the taught model on the pad (when it reads the pad's pictures) or on a picture file. */
function tryControls(t: Teach, tryIt: HTMLButtonElement): void {
  const show = async (what: string, input: Float32Array | ImageInput) => {
    const taught = t.taught;
    if (!taught) return;
    const probs =
      input instanceof Float32Array
        ? softmax(await taught.model.forward(input, 1))
        : Float32Array.from(
            (await taught.model.classify(input, { topK: taught.labels.length })).sort((a, b) => a.index - b.index),
            (p) => p.score,
          );
    bars(canvas('teach-result'), taught.labels, probs, 300);
    const best = probs.indexOf(Math.max(...probs));
    $('#teach-result-text').textContent = `${what}, to the taught model: ${taught.labels[best]}`;
  };
  tryIt.addEventListener('click', async () => {
    if (!t.taught || !t.s.trace) return;
    if (t.taught.model.inputSize !== t.s.trace.pixels.data.length)
      $('#teach-result-text').textContent = 'The pad draws for the model above: try a picture instead.';
    else await show('the pad', t.s.trace.pixels.data.slice());
  });
  const picture = $<HTMLInputElement>('#teach-try-file');
  picture.addEventListener('change', async () => {
    const f = picture.files?.[0];
    if (f) await show(f.name, f).catch((e) => ($('#teach-result-text').textContent = (e as Error).message));
    picture.value = '';
  });
}

/** The camera's current frame, as a canvas (an image the model reads like any other). */
function snapshot(video: HTMLVideoElement): HTMLCanvasElement {
  const c = Object.assign(document.createElement('canvas'), { width: video.videoWidth, height: video.videoHeight });
  c.getContext('2d')!.drawImage(video, 0, 0);
  return c;
}

/** The image files dropped: files, and the files in dropped folders (read through their entries). */
async function droppedImages(dt: DataTransfer | null): Promise<File[]> {
  if (!dt) return [];
  const out: File[] = [];
  const walk = async (entry: FileSystemEntry): Promise<void> => {
    if (entry.isFile) out.push(await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail)));
    else if (entry.isDirectory) {
      const reader = (entry as FileSystemDirectoryEntry).createReader();
      for (;;) {
        const batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
        if (!batch.length) break;
        for (const e of batch) await walk(e);
      }
    }
  };
  const entries = Array.from(dt.items ?? [])
    .map((i) => i.webkitGetAsEntry?.())
    .filter((e): e is FileSystemEntry => !!e);
  if (entries.length) for (const e of entries) await walk(e);
  else out.push(...Array.from(dt.files));
  return out.filter((f) => f.type.startsWith('image/') || /\.(png|jpe?g|webp|gif|bmp|avif)$/i.test(f.name));
}

/** Fine-tunes the guide's model on the classes; resolves to the taught model (loaded) and its files. */
async function run(
  s: State,
  backbone: Backbone | null,
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
  const base = backbone?.model ?? s.model;
  const trainer: Trainer = await createTrainer(
    { ...base.config, numLabels: labels.length },
    {
      from: backbone?.from ?? s.modelUrl,
      newHead: true,
      labels,
      freeze: full ? 'none' : 'all',
      maxBatch: B,
      lr: full ? 3e-4 : 3e-3,
      warmupSteps: Math.round(steps * 0.1),
      totalSteps: steps,
      threads: base.runtime.sharedMemory ? 2 : 1,
      seed: 1,
    },
  );
  try {
    const losses: number[] = [],
      accuracies: [number, number][] = [];
    status.textContent = `teaching ${backbone?.name ?? 'the model above'} ${labels.length} classes from ${train.length} pictures (${held.length} held back), ${full ? 'every layer' : 'the new head only'}, in ${trainer.runsIn === 'workers' ? `${trainer.threads} workers` : 'a worker'}…`;
    await trainer.fit(train, {
      epochs,
      batchSize: B,
      preprocessing: base.preprocessing,
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
    const files = trainer.files(base.preprocessing); // its preprocessing as its processor config says
    if (previous) await previous.model.dispose();
    const model = await loadModel(files, { threads: 1 });
    (window as unknown as { __teach: unknown }).__teach = { labels, held: held.length, epochs };
    status.textContent += held.length ? ' — done' : ' — done (add 4 or more pictures to a class to hold some back)';
    return { model, labels, files };
  } finally {
    await trainer.dispose();
  }
}
