// A 12-megapixel JPEG to a ViT's 224-px input, vit-wasm against Pillow on the same file, side by
// side in one run (medians of ROUNDS each): decode alone, then decode + resize (bilinear, Pillow's
// filter) + rescale and normalize (ViTImageProcessor's defaults); and the resident memory one
// decode adds against the decoded frame's size.
//   node bench/jpeg-preprocess.mjs [ROUNDS]     (after npm run build)
// The Pillow side needs /usr/bin/python3 with Pillow and numpy (Debian: python3-pil python3-numpy).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodeImage, preprocess } from '../dist/index.js';

const ROUNDS = Number(process.argv[2] ?? 5);
const dir = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-jpeg-'));
const file = path.join(dir, 'photo-4000x3000.jpg');
const py = (code) => execFileSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' });
// the photo: rocket.jpg upscaled to 4000×3000, saved by Pillow at quality 90 (4:2:0)
py(`from PIL import Image
Image.open('tests/fixtures/images/rocket.jpg').convert('RGB').resize((4000, 3000), Image.BICUBIC).save('${file}', quality=90)`);
const bytes = new Uint8Array(readFileSync(file));
// ViTImageProcessor's defaults at 224: bilinear, 1/255, mean 0.5, std 0.5
const vit = {
  doResize: true,
  size: [224, 224],
  resample: 'bilinear',
  doRescale: true,
  rescaleFactor: 1 / 255,
  doNormalize: true,
  imageMean: [0.5, 0.5, 0.5],
  imageStd: [0.5, 0.5, 0.5],
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ours = { decode: [], full: [] };
for (let r = 0; r < ROUNDS; r++) {
  let t = performance.now();
  decodeImage(bytes, 'photo.jpg');
  ours.decode.push(performance.now() - t);
  t = performance.now();
  preprocess(decodeImage(bytes, 'photo.jpg'), vit, 3);
  ours.full.push(performance.now() - t);
}
const rss0 = process.memoryUsage().rss;
const img = decodeImage(bytes, 'photo.jpg');
const rss = (process.memoryUsage().rss - rss0) / 2 ** 20;
const pillow = JSON.parse(
  py(`import json, time
import numpy as np
from PIL import Image
d, f = [], []
for _ in range(${ROUNDS}):
    t = time.perf_counter(); im = Image.open('${file}'); im.load(); d.append(time.perf_counter() - t)
    t = time.perf_counter(); im = Image.open('${file}').convert('RGB').resize((224, 224), Image.BILINEAR)
    x = (np.asarray(im, dtype=np.float32) * np.float32(1 / 255) - 0.5) / 0.5; f.append(time.perf_counter() - t)
print(json.dumps({'decode': sorted(d)[len(d) // 2] * 1000, 'full': sorted(f)[len(f) // 2] * 1000}))`),
);
rmSync(dir, { recursive: true, force: true });
const row = (what, a, b) =>
  console.log(
    `  ${what.padEnd(22)} vit-wasm ${a.toFixed(0).padStart(4)} ms   Pillow ${b.toFixed(0).padStart(4)} ms   ratio ${(a / b).toFixed(2)}`,
  );
console.log(`4000x3000 JPEG (${(bytes.length / 2 ** 20).toFixed(2)} MB), medians of ${ROUNDS}:`);
row('decode', median(ours.decode), pillow.decode);
row('decode + to 224 input', median(ours.full), pillow.full);
console.log(
  `  memory: one decode adds ${rss.toFixed(0)} MB of RSS; the frame is ${(img.data.length / 2 ** 20).toFixed(0)} MB`,
);
