// Writes Debian's Fashion-MNIST (apt-get install -y dataset-fashion-mnist: the official 60,000
// training and 10,000 test images, 28×28 grey) as two ImageFolder directories of PNGs:
//   node scripts/fashion-mnist.mjs OUT   →   OUT/train/<class>/<index>.png, OUT/test/<class>/<index>.png
// Class folders are numbered so their sorted order is the dataset's label order (0 T-shirt_top … 9 Ankle_boot).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { encode } from 'fast-png';

const SRC = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist';
const OUT = process.argv[2];
if (!OUT) throw new Error('usage: node scripts/fashion-mnist.mjs OUT');
const NAMES = [
  'T-shirt_top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle_boot',
];
const classes = NAMES.map((n, i) => `${i}-${n}`);

function idx(file, magic) {
  let b;
  try {
    b = gunzipSync(readFileSync(path.join(SRC, file)));
  } catch (e) {
    throw new Error(`${path.join(SRC, file)}: ${e.message} (apt-get install -y dataset-fashion-mnist)`);
  }
  if (b.readUInt32BE(0) !== magic) throw new Error(`${file}: not an IDX file of the expected type`);
  return b;
}

for (const [split, prefix] of [
  ['train', 'train'],
  ['test', 't10k'],
]) {
  const images = idx(`${prefix}-images-idx3-ubyte.gz`, 2051),
    labels = idx(`${prefix}-labels-idx1-ubyte.gz`, 2049);
  const n = images.readUInt32BE(4),
    h = images.readUInt32BE(8),
    w = images.readUInt32BE(12);
  for (const c of classes) mkdirSync(path.join(OUT, split, c), { recursive: true });
  for (let i = 0; i < n; i++) {
    const px = images.subarray(16 + i * h * w, 16 + (i + 1) * h * w);
    const png = encode({ width: w, height: h, data: px, channels: 1, depth: 8 });
    writeFileSync(path.join(OUT, split, classes[labels[8 + i]], `${String(i).padStart(5, '0')}.png`), png);
  }
  console.log(`${OUT}/${split}: ${n} images, ${w}×${h}, ${classes.length} classes`);
}
