// Arithmetic pinned to the bit: the SHA-256 of every fixture's logits (both kernel builds), of the
// bundled MNIST model's logits on its digits, and of a few training steps' parameters (1 and 2
// workers). A refactor must leave every digest as it is; a change that means to alter arithmetic
// (a new kernel, a new summation order) regenerates them with
//   VIT_WASM_WRITE_BITS=1 npx vitest run tests/bits.test.ts
// and says why in its commit.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { createTrainer, loadModel } from '../src/index.js';
import { FIXTURES, modelFixtures } from './helpers.js';

const FILE = path.join(FIXTURES, 'bits.json');
const write = !!process.env.VIT_WASM_WRITE_BITS;
const pinned: Record<string, string> = existsSync(FILE) ? JSON.parse(readFileSync(FILE, 'utf8')) : {};
const seen: Record<string, string> = {};

const sha = (...arrays: ArrayBufferView[]) => {
  const h = createHash('sha256');
  for (const a of arrays) h.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return h.digest('hex');
};
function pin(key: string, digest: string) {
  seen[key] = digest;
  if (!write)
    expect(digest, `${key} changed: the arithmetic is not what it was (see the header of tests/bits.test.ts)`).toBe(
      pinned[key],
    );
}
afterAll(() => {
  if (write) writeFileSync(FILE, `${JSON.stringify({ ...pinned, ...seen }, null, 2)}\n`);
});

for (const simd of ['simd', 'relaxed'] as const) {
  test(`fixture logits, ${simd} build, 1 and 3 threads`, async () => {
    for (const f of modelFixtures()) {
      for (const threads of [1, 3]) {
        const model = await loadModel(f.dir, { threads, simd });
        pin(`${f.name}/${simd}`, sha(await model.forward(f.input, f.batch)));
        await model.dispose();
      }
    }
  });
}

test.each(['dinov2', 'timm-variants', 'clip', 'siglip', 'beit-sizes', 'open-clip'])(
  '%s fixtures at every size they run at, both builds, 1 and 3 threads: logits, or what embed() gives',
  async (family) => {
    const dir = path.join(FIXTURES, family);
    for (const name of readdirSync(dir).sort()) {
      const { runs } = JSON.parse(readFileSync(path.join(dir, name, 'expected.json'), 'utf8'));
      for (const r of runs as { image_size: [number, number]; input: string; batch: number }[]) {
        const b = readFileSync(path.join(dir, name, r.input)),
          x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
        for (const simd of ['simd', 'relaxed'] as const)
          for (const threads of [1, 3]) {
            const m = await loadModel(path.join(dir, name), { threads, simd, imageSize: r.image_size });
            const out = m.config.numLabels
              ? await m.forward(x, r.batch)
              : await m.embed([x.subarray(0, m.inputSize), x.subarray(m.inputSize)]);
            pin(`${family}/${name}@${r.image_size.join('x')}/${simd}`, sha(out));
            await m.dispose();
          }
      }
    }
  },
);

test.each(['activations', 'beit'])(
  '%s fixtures (other activations; relative position bias), both builds, 1 and 3 threads',
  async (kind) => {
    const dir = path.join(FIXTURES, kind);
    for (const name of readdirSync(dir).sort()) {
      const { batch } = JSON.parse(readFileSync(path.join(dir, name, 'expected.json'), 'utf8'));
      const b = readFileSync(path.join(dir, name, 'input.f32')),
        x = new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
      for (const simd of ['simd', 'relaxed'] as const)
        for (const threads of [1, 3]) {
          const m = await loadModel(path.join(dir, name), { threads, simd });
          pin(`${kind}/${name}/${simd}`, sha(await m.forward(x, batch)));
          await m.dispose();
        }
    }
  },
);

test('the bundled MNIST model on its twelve digits', async () => {
  const model = await loadModel(path.join(FIXTURES, '../../assets/mnist-vit'), { threads: 2, simd: 'simd' });
  const dir = path.join(FIXTURES, '../../assets/digits');
  const files = ['digit-00-label-0.png', 'digit-03-label-3.png', 'digit-07-label-7.png', 'digit-11-label-1.png'];
  const pixels = await Promise.all(files.map((f) => model.pixels(path.join(dir, f))));
  const batch = new Float32Array(pixels.length * pixels[0].length);
  pixels.forEach((p, i) => batch.set(p, i * p.length));
  pin('mnist-vit/simd', sha(await model.forward(batch, files.length)));
  await model.dispose();
});

test("a trainer's seeded initial parameters (HF's initialisation)", async () => {
  const { MNIST_DIMS } = await import('../src/cli/train-cli.js');
  const t = await createTrainer(MNIST_DIMS, { seed: 0, maxBatch: 4 });
  pin('init-mnist/seed0', sha(...t.parameters().values()));
  await t.dispose();
});

test('training: parameters and logits after five steps, on 1 and 2 workers', async () => {
  const dir = path.join(FIXTURES, 'train/t20');
  const bytes = (f: string) => {
    const b = readFileSync(path.join(dir, f));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength);
  };
  const x = new Float32Array(bytes('input.f32')),
    y = Array.from(new Int32Array(bytes('labels.i32')));
  for (const threads of [1, 2]) {
    const t = await createTrainer(null, { from: dir, maxBatch: 3, threads, lr: 3e-3, warmupSteps: 2, totalSteps: 10 });
    const losses = new Float32Array(5);
    for (let s = 0; s < 5; s++) losses[s] = await t.step(x, y);
    pin(`train-t20/${threads}`, sha(losses, ...t.parameters().values(), await t.logits(x, 3)));
    await t.dispose();
  }
});
