// Training on a user's images (vit-wasm train --data, eval --data): ImageFolder and manifests with
// their errors, the seeded stratified split, augmentation's crops, and the CLI end to end on a
// small synthetic set — learning it, writing best/ and last/, resuming an interrupted run to the
// same bytes as an uninterrupted one, and bad images named or skipped.
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { encode } from 'fast-png';
import { describe, expect, test } from 'vitest';
import { imageFolder, openImageSet, readManifest, stratifiedSplit } from '../src/cli/dataset.js';
import { preprocess } from '../src/io/image/preprocess.js';
import { augment, cropParams, permutation, streamRandom } from '../src/train/augment.js';
import { FIXTURES, MODELS } from './helpers.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);
const BIN = path.join(FIXTURES, '../../bin/vit-wasm.js');

async function cli(args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

/** A 16×16 RGB picture of class c (0 a bright left half, 1 a bright top half, 2 a bright centre) with seeded noise. */
function picture(c: number, seed: number): Uint8Array {
  const rand = streamRandom(seed, c),
    data = new Uint8Array(16 * 16 * 3);
  for (let y = 0; y < 16; y++)
    for (let x = 0; x < 16; x++) {
      const on = c === 0 ? x < 8 : c === 1 ? y < 8 : Math.abs(x - 7.5) < 4 && Math.abs(y - 7.5) < 4;
      for (let k = 0; k < 3; k++) data[(y * 16 + x) * 3 + k] = Math.min(255, (on ? 180 : 40) + Math.floor(rand() * 60));
    }
  return encode({ width: 16, height: 16, data, channels: 3, depth: 8 });
}

/** An ImageFolder of `n` pictures per class under dir/{left,top,centre}. */
function folder(dir: string, n: number, seed = 0): string[] {
  const names = ['left', 'top', 'centre'];
  names.forEach((name, c) => {
    mkdirSync(path.join(dir, name, 'sub'), { recursive: true });
    for (let i = 0; i < n; i++)
      writeFileSync(path.join(dir, name, i % 3 ? '' : 'sub', `${i}.png`), picture(c, seed * 1000 + i));
  });
  return names;
}

describe('datasets', () => {
  test('ImageFolder: sorted class names, images found recursively, other files ignored; its errors name the folder', () => {
    const dir = tempDir('vit-wasm-folder-');
    folder(dir, 4);
    writeFileSync(path.join(dir, 'left', 'notes.txt'), 'not an image');
    const set = imageFolder(dir);
    expect(set.classes).toEqual(['centre', 'left', 'top']);
    expect(set.samples).toHaveLength(12);
    expect(set.samples.filter((s) => s.label === 1).every((s) => s.file.includes(`${path.sep}left${path.sep}`))).toBe(
      true,
    );
    mkdirSync(path.join(dir, 'empty'));
    expect(() => imageFolder(dir)).toThrow(/empty: class 'empty' has no PNG or JPEG images/);
    const one = tempDir('vit-wasm-one-');
    mkdirSync(path.join(one, 'only'));
    writeFileSync(path.join(one, 'only', 'a.png'), picture(0, 1));
    expect(() => openImageSet(one)).toThrow(/only one class \('only'\)/);
    expect(() => openImageSet(path.join(one, 'missing'))).toThrow(/missing: no such file or directory/);
    expect(() => openImageSet(path.join(one, 'only', 'a.png'))).toThrow(
      /a directory of class folders, a .csv or a .jsonl/,
    );
  });

  test('manifests: CSV with quoted fields and JSONL, paths relative to the file; labels outside the training set refused', () => {
    const dir = tempDir('vit-wasm-manifest-');
    writeFileSync(path.join(dir, 'a.png'), picture(0, 1));
    writeFileSync(path.join(dir, 'b, c.png'), picture(1, 1));
    writeFileSync(path.join(dir, 'm.csv'), 'label,path\ncat,a.png\n"dog, big","b, c.png"\n\n');
    const csv = readManifest(path.join(dir, 'm.csv'));
    expect(csv.classes).toEqual(['cat', 'dog, big']);
    expect(csv.samples).toEqual([
      { file: path.join(dir, 'a.png'), label: 0 },
      { file: path.join(dir, 'b, c.png'), label: 1 },
    ]);
    writeFileSync(path.join(dir, 'm.jsonl'), '{"path": "a.png", "label": 3}\n{"path": "b, c.png", "label": 7}\n');
    expect(readManifest(path.join(dir, 'm.jsonl')).classes).toEqual(['3', '7']);
    expect(() => readManifest(path.join(dir, 'm.jsonl'), ['3', '5'])).toThrow(
      /class '7' is not one of the training classes \(3, 5\)/,
    );
    writeFileSync(path.join(dir, 'bad.csv'), 'file,class\na.png,cat\n');
    expect(() => readManifest(path.join(dir, 'bad.csv'))).toThrow(
      /bad.csv:1: the first line must be the header path,label/,
    );
    writeFileSync(path.join(dir, 'bad.jsonl'), '{"path": "a.png", "label": 1}\n{"path": "a.png"\n');
    expect(() => readManifest(path.join(dir, 'bad.jsonl'))).toThrow(/bad.jsonl:2: not JSON/);
    writeFileSync(path.join(dir, 'nolabel.csv'), 'path,label\na.png,\n');
    expect(() => readManifest(path.join(dir, 'nolabel.csv'))).toThrow(/nolabel.csv:2: no label/);
  });

  test('the split is seeded and stratified: every class held out in proportion, disjoint, nothing lost', () => {
    const dir = tempDir('vit-wasm-split-');
    folder(dir, 20);
    const set = imageFolder(dir),
      a = stratifiedSplit(set, 0.25, 7),
      b = stratifiedSplit(set, 0.25, 7),
      c = stratifiedSplit(set, 0.25, 8);
    expect(a).toEqual(b);
    expect(a.val.samples).not.toEqual(c.val.samples);
    for (let k = 0; k < 3; k++) expect(a.val.samples.filter((s) => s.label === k)).toHaveLength(5);
    const files = [...a.train.samples, ...a.val.samples].map((s) => s.file).sort();
    expect(files).toEqual(set.samples.map((s) => s.file).sort());
  });
});

describe('augmentation', () => {
  test('crops stay inside the image with ratios in [3/4, 4/3] and areas in the range; the same keys draw the same', () => {
    for (let i = 0; i < 500; i++) {
      const H = 5 + (i % 37),
        W = 3 + ((i * 7) % 53),
        [top, left, h, w] = cropParams(H, W, [0.08, 1], streamRandom(i));
      expect(top >= 0 && left >= 0 && h >= 1 && w >= 1 && top + h <= H && left + w <= W, `${H}x${W}`).toBe(true);
    }
    const [, , h, w] = cropParams(1000, 1000, [0.5, 1], streamRandom(3));
    expect((h * w) / 1e6).toBeGreaterThanOrEqual(0.49);
    expect(w / h).toBeLessThanOrEqual(4 / 3 + 0.01);
    expect(permutation(10, streamRandom(1, 2))).toEqual(permutation(10, streamRandom(1, 2)));
    expect(permutation(10, streamRandom(1, 2)).sort((p, q) => p - q)).toEqual([...Array(10).keys()]);
  });

  test("'none' is the model's preprocessing; 'light' gives the model's size, the same for the same keys, different for others", () => {
    const img = {
      data: Uint8Array.from({ length: 20 * 30 * 3 }, (_, i) => (i * 37) % 256),
      width: 30,
      height: 20,
      channels: 3 as const,
    };
    const pre = {
      doResize: true,
      size: [8, 8] as [number, number],
      resample: 'bilinear' as const,
      doRescale: true,
      rescaleFactor: 1 / 255,
      doNormalize: true,
      imageMean: [0.5, 0.5, 0.5],
      imageStd: [0.5, 0.5, 0.5],
    };
    const out = () => new Float32Array(3 * 64);
    const none = out();
    augment(img, pre, 3, 'none', streamRandom(0), none);
    expect(none).toEqual(preprocess(img, pre, 3));
    const [a, b, c] = [out(), out(), out()];
    augment(img, pre, 3, 'light', streamRandom(1, 2), a);
    augment(img, pre, 3, 'light', streamRandom(1, 2), b);
    augment(img, pre, 3, 'light', streamRandom(1, 3), c);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a.every((v) => v >= -1 && v <= 1)).toBe(true);
    // 'flip': the model's input or its mirror image, row by row; both happen
    const mirror = none.slice();
    for (let r = 0; r < 24; r++) mirror.subarray(r * 8, r * 8 + 8).reverse();
    const seen = new Set<string>();
    for (let k = 0; k < 20; k++) {
      const f = out();
      augment(img, pre, 3, 'flip', streamRandom(9, k), f);
      expect(f.every((v, i) => v === none[i]) || f.every((v, i) => v === mirror[i])).toBe(true);
      seen.add(f.every((v, i) => v === none[i]) ? 'same' : 'mirror');
    }
    expect([...seen].sort()).toEqual(['mirror', 'same']);
  });
});

describe('vit-wasm train --data / eval --data', () => {
  const dims = ['--image-size', '16', '--patch', '4', '--hidden', '32', '--layers', '2', '--heads', '2', '--mlp', '64'];
  const files = (dir: string) =>
    ['last/model.safetensors', 'last/optimizer.safetensors', 'last/trainer-state.json', 'best/model.safetensors'].map(
      (f) => readFileSync(path.join(dir, f)),
    );

  test('learns a small folder, writes best/ and last/; eval --data reports it; a resumed run writes the same bytes', async () => {
    const data = tempDir('vit-wasm-tdata-'),
      out = tempDir('vit-wasm-tout-'),
      out2 = tempDir('vit-wasm-tout2-');
    folder(data, 24);
    const args = [
      'train',
      '--data',
      data,
      ...dims,
      '--epochs',
      '4',
      '--batch',
      '8',
      '--lr',
      '3e-3',
      '--val-split',
      '0.25',
      '--threads',
      '2',
      '--seed',
      '3',
    ];
    const full = await cli([...args, '--out', out]);
    expect(full.stderr).toBe('');
    expect(full.code).toBe(0);
    expect(full.stdout).toMatch(/54 images in 3 classes, 18 for validation; 4 epochs of 7 steps/);
    const valAcc = Number(/val acc ([\d.]+)%\) and/.exec(full.stdout)?.[1]);
    expect(valAcc).toBeGreaterThan(60); // three easy classes: far above chance (33%)
    // interrupted after 10 steps (mid-epoch 2), then resumed: the same bytes as the uninterrupted run
    const cut = await cli([...args, '--out', out2], { VIT_WASM_STOP_AFTER_STEPS: '10' });
    expect(cut.code).toBe(130);
    expect(cut.stdout).toMatch(/saved .*last at epoch 2, step 3; --resume continues/);
    const resumed = await cli([...args, '--out', out2, '--resume']);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/resuming .* at epoch 2, step 3/);
    const [x, y] = [files(out), files(out2)];
    x.forEach((f, i) => expect(f.equals(y[i]), `file ${i}`).toBe(true));
    // a resume with other arguments is refused by name
    const other = await cli([...args.map((v) => (v === '3e-3' ? '1e-3' : v)), '--out', out2, '--resume']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/the saved run had lr 0.003, this one 0.001/);
    // eval --data on the same folder: JSON with a confusion matrix in the model's label order
    const ev = await cli(['eval', '--model', path.join(out, 'best'), '--data', data, '--json', '--top', '2']);
    expect(ev.code).toBe(0);
    const r = JSON.parse(ev.stdout);
    expect(r.labels).toEqual(['centre', 'left', 'top']);
    expect(r.images).toBe(72);
    expect(r.confusion.flat().reduce((s: number, v: number) => s + v, 0)).toBe(72);
    expect(r.accuracy).toBeCloseTo(r.confusion.reduce((s: number, row: number[], i: number) => s + row[i], 0) / 72, 10);
    expect(r.topKAccuracy).toBeGreaterThanOrEqual(r.accuracy);
    expect(r.perClass.map((c: { images: number }) => c.images)).toEqual([24, 24, 24]);
    const table = await cli(['eval', '--model', path.join(out, 'best'), '--data', data]);
    expect(table.stdout).toMatch(/confusion matrix \(rows: true class/);
  }, 120000);

  test('a bad image is named (and the run so far saved), or skipped and counted with --skip-bad; fine-tuning --from with a new head', async () => {
    const data = tempDir('vit-wasm-tbad-'),
      out = tempDir('vit-wasm-tbadout-');
    folder(data, 6);
    writeFileSync(path.join(data, 'top', 'broken.png'), Buffer.from('\x89PNG\r\n\x1a\nnot really'));
    const args = [
      'train',
      '--data',
      data,
      ...dims,
      '--epochs',
      '1',
      '--batch',
      '4',
      '--val-split',
      '0',
      '--threads',
      '1',
    ];
    const bad = await cli([...args, '--out', out]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/broken\.png: cannot read image: .*--skip-bad.*saved in .*last/s);
    const skip = await cli([...args, '--out', out, '--skip-bad']);
    expect(skip.code).toBe(0);
    expect(skip.stderr).toMatch(/skipped .*broken\.png/);
    expect(skip.stdout).toMatch(/1 bad images skipped/);
    // fine-tune the result on two of the classes: a new 2-class head, the backbone carried over
    const two = tempDir('vit-wasm-ttwo-');
    for (const c of ['left', 'top']) {
      mkdirSync(path.join(two, c));
      for (let i = 0; i < 4; i++) writeFileSync(path.join(two, c, `${i}.png`), picture(c === 'left' ? 0 : 1, 50 + i));
    }
    const ftOut = tempDir('vit-wasm-tft-');
    const fromBest = [
      'train',
      '--data',
      two,
      '--from',
      path.join(out, 'best'),
      '--epochs',
      '1',
      '--batch',
      '4',
      '--val-split',
      '0',
    ];
    const ft = await cli([...fromBest, '--out', ftOut]);
    expect(ft.stderr).toBe('');
    expect(ft.code).toBe(0);
    expect(ft.stdout).toMatch(/with a new 2-class head/);
    const cfg = JSON.parse(readFileSync(path.join(ftOut, 'best', 'config.json'), 'utf8'));
    expect(cfg.id2label).toEqual({ 0: 'left', 1: 'top' });
    expect(cfg.hidden_size).toBe(32);
    const clash = await cli(['train', '--data', two, '--from', path.join(out, 'best'), '--hidden', '64', '--out', out]);
    expect(clash.code).toBe(2);
    expect(clash.stderr).toMatch(/--from takes the shape of its checkpoint/);
    // a linear probe: the backbone's every float as it was, a new head trained on features computed once
    const probeOut = tempDir('vit-wasm-tprobe-');
    const probe = await cli([...fromBest, '--freeze', 'all', '--epochs', '3', '--out', probeOut]);
    expect(probe.stderr).toBe('');
    expect(probe.code).toBe(0);
    expect(probe.stdout).toMatch(/linear probe of .* the features of 8 images in 2 classes computed once/);
    expect(probe.stdout).toMatch(/epoch 3\/3: loss/);
    // asked to augment, the frozen backbone runs in the trainer instead (the plain ViT only)
    const augmented = await cli([
      ...fromBest,
      '--freeze',
      'all',
      '--augment',
      'flip',
      '--out',
      tempDir('vit-wasm-tpa-'),
    ]);
    expect(augmented.code).toBe(0);
    expect(augmented.stdout).toMatch(/backbone frozen \(linear probe\)/);
    const { createTrainer } = await import('../src/index.js');
    const src = (await createTrainer(null, { from: path.join(out, 'best') })).parameters(),
      got = (await createTrainer(null, { from: path.join(probeOut, 'last') })).parameters();
    for (const [k, v] of got)
      if (!k.startsWith('classifier.'))
        expect(Buffer.from(v.buffer).equals(Buffer.from(src.get(k)!.buffer)), k).toBe(true);
    expect(got.get('classifier.weight')!.length).toBe(2 * 32);
    const noFrom = await cli(['train', '--data', two, '--freeze', 'all', '--out', probeOut]);
    expect(noFrom.code).toBe(2);
    expect(noFrom.stderr).toMatch(/--freeze is for fine-tuning: give --from MODEL/);
    // another family (here a timm-named DeiT) is refused by name, not loaded into the plain ViT
    const deit = await cli(['train', '--data', two, '--from', path.join(MODELS, 'h33-deit-timm'), '--out', ftOut]);
    expect(deit.code).toBe(1);
    expect(deit.stderr).toMatch(
      /is a deit checkpoint in timm names: fine-tuning reads Hugging Face names; a linear probe \(linearProbe, or train --freeze all\) works for every family/,
    );
    // ... but probed like every family: its classification form, evaluated as any model
    const deitProbe = tempDir('vit-wasm-tdp-');
    const dp = await cli([
      'train',
      '--data',
      two,
      '--from',
      path.join(MODELS, 'h33-deit-timm'),
      '--freeze',
      'all',
      '--epochs',
      '2',
      '--val-split',
      '0.25',
      '--out',
      deitProbe,
    ]);
    // (its config is timm's without pretrained_cfg: the loader says which preprocessing it assumes)
    expect(dp.stderr).toMatch(/^(vit-wasm: .*has no pretrained_cfg.*\n)*$/);
    expect(dp.code).toBe(0);
    expect(dp.stdout).toMatch(/linear probe of .*\(deit, 3 layers, hidden 33, 28×28 px\)/);
    const ev = await cli(['eval', '--model', path.join(deitProbe, 'best'), '--data', two, '--json']);
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.stdout).images).toBe(8);
    // a DINOv2 (LayerScale, cls ⊕ mean) fine-tuned whole, interrupted and resumed: the bytes of one run
    const dinov2 = path.join(FIXTURES, 'train-families', 'dinov2');
    const ftArgs = (out: string) => [
      'train',
      '--data',
      two,
      '--from',
      dinov2,
      '--epochs',
      '2',
      '--batch',
      '4',
      '--val-split',
      '0.25',
      '--out',
      out,
    ];
    const [whole, cut] = [tempDir('vit-wasm-tfw-'), tempDir('vit-wasm-tfc-')];
    const w = await cli(ftArgs(whole));
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/from .*dinov2 with a new 2-class head/);
    expect(JSON.parse(readFileSync(path.join(whole, 'last', 'config.json'), 'utf8')).architectures).toEqual([
      'Dinov2ForImageClassification',
    ]);
    expect((await cli(ftArgs(cut), { VIT_WASM_STOP_AFTER_STEPS: '1' })).code).toBe(130);
    expect((await cli([...ftArgs(cut), '--resume'])).code).toBe(0);
    for (const f of ['model.safetensors', 'optimizer.safetensors'])
      expect(readFileSync(path.join(cut, 'last', f)).equals(readFileSync(path.join(whole, 'last', f))), f).toBe(true);
    const resumeProbe = await cli([...fromBest, '--freeze', 'all', '--resume', '--out', probeOut]);
    expect(resumeProbe.code).toBe(2);
    expect(resumeProbe.stderr).toMatch(/a linear probe \(--freeze all\) computes its features again/);
  }, 120000);
});

describe('trainer.fit', () => {
  const dims = {
    imageSize: [16, 16] as [number, number],
    patchSize: 4,
    numChannels: 3,
    hiddenSize: 32,
    numLayers: 2,
    numHeads: 2,
    intermediateSize: 64,
    numLabels: 3,
    layerNormEps: 1e-6,
  };

  test('is the steps it stands for: an array in the seeded order of each epoch, batched, the same bits as calling step by hand', async () => {
    const { createTrainer, defaultPreprocessing } = await import('../src/index.js');
    const { decodeImage } = await import('../src/io/image/decode.js');
    const pre = defaultPreprocessing(dims);
    const examples = Array.from({ length: 10 }, (_, i) => ({
      image: preprocess(decodeImage(picture(i % 3, i)), pre, 3),
      label: i % 3,
    }));
    const a = await createTrainer(dims, { maxBatch: 4, seed: 5 }),
      b = await createTrainer(dims, { maxBatch: 4, seed: 5 });
    const steps: { epoch: number; step: number; loss: number }[] = [];
    const r = await a.fit(examples, { epochs: 2, augment: 'none', onStep: (s) => steps.push(s) });
    expect(r.stopped).toBe(false);
    expect(steps.map((s) => `${s.epoch}.${s.step}`)).toEqual(['1.1', '1.2', '1.3', '2.1', '2.2', '2.3']);
    const losses: number[] = [];
    for (const epoch of [1, 2]) {
      const order = permutation(10, streamRandom(5, 1, epoch));
      for (let s = 0; s < 10; s += 4) {
        const idx = order.slice(s, s + 4),
          x = new Float32Array(idx.length * 768);
        idx.forEach((k, j) => x.set(examples[k].image, j * 768));
        losses.push(
          await b.step(
            x,
            idx.map((k) => examples[k].label),
          ),
        );
      }
    }
    expect(steps.map((s) => s.loss)).toEqual(losses);
    const pa = a.parameters(),
      pb = b.parameters();
    for (const [k, v] of pa) expect(Buffer.from(v.buffer).equals(Buffer.from(pb.get(k)!.buffer)), k).toBe(true);
    expect(r.epochs.map((e) => e.validationAccuracy)).toEqual([null, null]);
  });

  test('reads an image folder, validates each epoch, and an AbortSignal stops it after the step in progress', async () => {
    const { createTrainer, imageFolder } = await import('../src/index.js');
    const dir = tempDir('vit-wasm-fit-');
    folder(dir, 12);
    const { classes, examples } = imageFolder(dir);
    expect(classes).toEqual(['centre', 'left', 'top']);
    const t = await createTrainer(dims, { maxBatch: 6, lr: 3e-3, labels: classes, threads: 2 });
    const r = await t.fit(examples, { epochs: 6, validation: examples });
    expect(r.epochs).toHaveLength(6);
    expect(r.epochs.at(-1)!.validationAccuracy).toBeGreaterThan(0.6); // three easy classes: far above chance
    const stop = new AbortController();
    let after = 0;
    const s = await t.fit(examples, {
      epochs: 3,
      signal: stop.signal,
      onStep: (st) => {
        if (st.step === 2) stop.abort();
        after = st.step;
      },
    });
    expect(s.stopped).toBe(true);
    expect(after).toBe(2);
    await expect(t.fit(examples, { batchSize: 6145 })).rejects.toThrow(
      /batchSize 6145 is outside 1…6144 \(1024 micro-batches/,
    );
    await expect(t.fit(examples, { batchSize: 0 })).rejects.toThrow(/batchSize 0 is outside/);
    await expect(t.fit([{ image: examples[0].image, label: 3 }])).rejects.toThrow(
      /example 0 of epoch 1 has label 3, not a class 0…2/,
    );
    await expect(t.fit([{ image: new Float32Array(5), label: 0 }])).rejects.toThrow(
      /Float32Array of 5 values, the model takes 768/,
    );
    await expect(t.fit([{ image: path.join(dir, 'nope.png'), label: 0 }])).rejects.toThrow(/nope\.png/);
    const once = (function* () {
      yield* examples.slice(0, 3);
    })();
    await expect(t.fit(once, { epochs: 2 })).rejects.toThrow(/no examples in epoch 2 \(a generator runs once/);
    await t.dispose();
  }, 60000);

  test("filesDataset: a dropped folder's files, classed by the folder under the root; other files left out", async () => {
    const { filesDataset } = await import('../src/index.js');
    const file = (p: string, type = 'image/png') => {
      const f = new File([picture(0, 1) as Uint8Array<ArrayBuffer>], p.split('/').at(-1)!, { type });
      Object.defineProperty(f, 'webkitRelativePath', { value: p });
      return f;
    };
    const set = filesDataset([
      file('pets/dog/a.png'),
      file('pets/cat/x/b.png'),
      file('pets/cat/notes.txt', 'text/plain'),
    ]);
    expect(set.classes).toEqual(['cat', 'dog']);
    expect(set.examples.map((e) => e.label)).toEqual([1, 0]);
    expect(() => filesDataset([file('a.png')])).toThrow(/a.png: not in a class folder/);
    expect(() => filesDataset([file('pets/dog/a.png')])).toThrow(/1 class folder\(s\): a classifier needs two or more/);
  });
});
