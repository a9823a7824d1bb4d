// The worker pool: bit-identical results for every thread count, concurrency, faults, clean exit,
// and the one-thread fallback where SharedArrayBuffer is missing.
import { execFile } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { PRESETS, randomModelFiles } from '../src/io/presets.js';
import { autoThreads } from '../src/model/load.js';
import { forwardFlops } from '../src/nn/shape.js';
import { FIXTURES, MODELS, maxDiff, modelFixtures } from './helpers.js';

const run = promisify(execFile);
const ROOT = path.join(FIXTURES, '../..');
const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

describe('threads 1, 2, 3, 4 give the same bits', () => {
  for (const f of modelFixtures()) {
    test(f.name, async () => {
      const outs: Float32Array[] = [];
      for (const threads of [1, 2, 3, 4]) {
        const model = await loadModel(f.dir, { threads, simd: 'simd' });
        expect(model.threads).toBe(threads);
        outs.push(await model.forward(f.input, f.batch));
        await model.dispose();
      }
      for (const o of outs.slice(1)) expect(bits(o)).toEqual(bits(outs[0]));
      const { diff, scale } = maxDiff(outs[0], f.logits);
      expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
    });
  }
});

test('20 concurrent calls give exactly the one-by-one results', async () => {
  const f = modelFixtures().find((x) => x.name === 'h33-torchvision')!;
  const model = await loadModel(f.dir, { threads: 2 });
  const n = f.input.length / f.batch;
  const inputs = Array.from({ length: 20 }, (_, i) =>
    Float32Array.from({ length: n * (1 + (i % 3)) }, (_, j) => Math.sin(i * 7.1 + j * 0.3)),
  );
  const oneByOne: Float32Array[] = [];
  for (const x of inputs) oneByOne.push(await model.forward(x, x.length / n));
  const concurrent = await Promise.all(inputs.map((x) => model.forward(x, x.length / n)));
  concurrent.forEach((o, i) => expect(bits(o)).toEqual(bits(oneByOne[i])));
  // classify calls in flight alongside forwards
  const image = path.join(FIXTURES, 'images/chelsea.png');
  const alone = await model.classify(image);
  const mixed = await Promise.all([model.classify(image), model.forward(inputs[0], 1), model.classify(image)]);
  expect(mixed[0]).toEqual(alone);
  expect(mixed[2]).toEqual(alone);
  await model.dispose();
});

// Found by bench/soak.mjs: each call once left a reaction on its worker's death, kept until the
// worker died, so a long-lived model grew ~1 KB per call. Nothing may stay registered after a call.
test('a settled call leaves nothing registered on its workers', async () => {
  const model = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 2 });
  for (let i = 0; i < 50; i++) await model.forward(new Float32Array(1500), 1);
  // every call registers on its worker only (pool.ts, hold)
  const pool = (model as unknown as { pool: { slots: { waiting: number; abandon: Set<unknown> }[] } }).pool;
  expect(pool.slots.map((s) => [s.waiting, s.abandon.size])).toEqual([
    [0, 0],
    [0, 0],
  ]);
  await model.dispose();
});

describe('faults (each triggered deterministically inside a worker: no sleeps, no clocks)', () => {
  const files = randomModelFiles(PRESETS['deit-tiny'], 3);
  const input = new Float32Array(3 * 224 * 224).map((_, i) => Math.cos(i * 0.01));

  test.each([0, 7, 40])(
    'a worker that exits at op %i of a forward rejects that forward; the calls queued behind it run on a new pool',
    async (op) => {
      const model = await loadModel(files, { threads: 2, simd: 'simd' });
      const want = bits(await model.forward(input, 1));
      await model._injectFault(1, { exitAtOp: op });
      const calls = [model.forward(input, 1), model.forward(input, 1), model.forward(input, 1)];
      await expect(calls[0]).rejects.toThrow('vit-wasm: worker 1 exited (code 1)');
      expect(bits(await calls[1])).toEqual(want);
      expect(bits(await calls[2])).toEqual(want);
      await model.dispose();
    },
  );

  test('a kernel trap rejects with a clear error; the next call succeeds', async () => {
    const model = await loadModel(files, { threads: 2, simd: 'simd' });
    const want = await model.forward(input, 1);
    await model._injectFault(0, 'trap');
    await expect(model.forward(input, 1)).rejects.toThrow(
      /vit-wasm: a kernel failed in a worker: .*memory access out of bounds/,
    );
    expect(bits(await model.forward(input, 1))).toEqual(bits(want));
    await model.dispose();
  });

  test('an idle worker that dies is replaced before the next call', async () => {
    const model = await loadModel(files, { threads: 2, simd: 'simd' });
    const want = await model.forward(input, 1);
    await model._injectFault(0, 'kill'); // resolves once the worker is gone
    expect(bits(await model.forward(input, 1))).toEqual(bits(want));
    await model.dispose();
  });

  test('a fault for a worker that does not exist is an error naming it', async () => {
    const model = await loadModel(files, { threads: 2, simd: 'simd' });
    await expect(model._injectFault(5, 'kill')).rejects.toThrow('vit-wasm: no worker 5 (the pool has 2)');
    await model.dispose();
  });
});

describe('process lifecycle', () => {
  const script = (body: string) =>
    `import { loadModel } from ${JSON.stringify(path.join(ROOT, 'dist/index.js'))};\n${body}`;

  test('a Node process that disposed its model exits on its own', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script(`
      const m = await loadModel(${JSON.stringify(path.join(MODELS, 'h40-hf'))}, { threads: 3 });
      const out = await m.forward(new Float32Array(1500), 1);
      await m.dispose();
      console.log(out.length);`),
      ],
      { timeout: 20000 },
    );
    expect(stdout.trim()).toBe('7');
  });

  test('after a worker dies mid-forward, the next call still runs: nothing keeps Node waiting on the dead worker, nothing is dropped', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script(`
      const m = await loadModel(${JSON.stringify(path.join(MODELS, 'h40-hf'))}, { threads: 2 });
      await m._injectFault(0, { exitAtOp: 2 });
      const first = m.forward(new Float32Array(1500), 1).then(() => 'resolved', (e) => e.message);
      const second = m.forward(new Float32Array(1500), 1);
      console.log(JSON.stringify([await first, (await second).length]));
      await m.dispose();`),
      ],
      { timeout: 20000 },
    );
    expect(JSON.parse(stdout)).toEqual(['vit-wasm: worker 0 exited (code 1)', 7]);
  });

  // CommonJS has no top-level await: if a pending call held nothing open, Node would exit 0 with
  // the work silently lost. The script prints only once the call after the crash and dispose() resolve.
  test('the same in CommonJS: the process waits for the call after a crash, and for dispose()', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '-e',
        `import(${JSON.stringify(path.join(ROOT, 'dist/index.js'))}).then(async ({ loadModel }) => {
      const m = await loadModel(${JSON.stringify(path.join(MODELS, 'h40-hf'))}, { threads: 2 });
      await m._injectFault(1, { exitAtOp: 3 });
      m.forward(new Float32Array(1500), 1).catch((e) => console.log(e.message));
      m.forward(new Float32Array(1500), 1).then((out) => console.log('second', out.length));
      m.dispose().then(() => console.log('disposed'));
    });`,
      ],
      { timeout: 20000 },
    );
    expect(stdout.trim().split('\n')).toEqual(['vit-wasm: worker 1 exited (code 1)', 'second 7', 'disposed']);
  });

  // The suite runs with VIT_WASM_SPLIT_EVERY_OP=1 (vitest.config.ts); here it is off, as for users:
  // the calibrated pool runs the digit model's forwards on one worker and deit-tiny's small ops on
  // worker 0 alone, and neither may change a bit.
  test('the calibrated default (small ops alone, small forwards on one worker) gives the same bits', async () => {
    const { stdout } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        script(`
      import { PRESETS, randomModelFiles } from ${JSON.stringify(path.join(ROOT, 'dist/presets.js'))};
      const sha = async (a) => Buffer.from(await crypto.subtle.digest('SHA-256', a.buffer)).toString('hex');
      const out = {};
      for (const [name, where, n] of [
        ['mnist', ${JSON.stringify(path.join(ROOT, 'assets/mnist-vit'))}, 784],
        ['deit-tiny', randomModelFiles(PRESETS['deit-tiny'], 3), 3 * 224 * 224],
      ]) {
        const x = new Float32Array(2 * n).map((_, i) => Math.sin(i * 0.01));
        for (const threads of [1, 2, 3]) {
          const m = await loadModel(where, { threads, simd: 'simd' });
          (out[name] ??= []).push(await sha(await m.forward(x, 2)));
          await m.dispose();
        }
      }
      console.log(JSON.stringify(out));`),
      ],
      { timeout: 60000, env: { ...process.env, VIT_WASM_SPLIT_EVERY_OP: '0' } },
    );
    const got = JSON.parse(stdout);
    for (const name of ['mnist', 'deit-tiny']) expect(new Set(got[name]).size, name).toBe(1);
  });

  test('without SharedArrayBuffer: one in-thread instance, one warning, same logits', async () => {
    const f = modelFixtures().find((x) => x.name === 'h38-timm')!;
    const { stdout, stderr } = await run(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `delete globalThis.SharedArrayBuffer;\n` +
          script(`
      import { readFileSync } from 'node:fs';
      const b = readFileSync(${JSON.stringify(path.join(f.dir, 'input.f32'))});
      const m = await loadModel(${JSON.stringify(f.dir)}, { threads: 4, simd: 'simd' });
      const out = await m.forward(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length)), ${f.batch});
      console.log(JSON.stringify({ threads: m.threads, runtime: m.runtime, bits: Array.from(new Uint32Array(out.buffer)) }));
      await m.dispose();`),
      ],
      { timeout: 20000 },
    );
    const res = JSON.parse(stdout);
    expect(res.threads).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      'vit-wasm: threads are off, running on one thread in the calling thread: this Node has no SharedArrayBuffer',
    ]);
    expect(res.runtime).toEqual({
      platform: 'node',
      engine: `Node ${process.versions.node}`,
      threads: 1,
      workers: false,
      simd: 'simd',
      sharedMemory: false,
      crossOriginIsolated: null,
      fallback: 'this Node has no SharedArrayBuffer',
      simdReason: 'the one-thread fallback build is plain SIMD',
    });
    const model = await loadModel(f.dir, { threads: 2, simd: 'simd' });
    expect(res.bits).toEqual(bits(await model.forward(f.input, f.batch)));
    await model.dispose();
  });
});

test("Node picks the relaxed-SIMD build by default, turning on V8's flag itself", async () => {
  const { stdout } = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import { loadModel, hasRelaxedSimd } from ${JSON.stringify(path.join(ROOT, 'dist/index.js'))};
    const before = hasRelaxedSimd();
    const m = await loadModel(${JSON.stringify(path.join(MODELS, 'h40-hf'))}, { threads: 2 });
    console.log(JSON.stringify({ before, simd: m.simd }));
    await m.dispose();`,
    ],
    { timeout: 20000 },
  );
  expect(JSON.parse(stdout)).toEqual({ before: false, simd: 'relaxed' });
});

test('the default thread count: the cores, but one worker per 100 MFLOP of the forward at most', async () => {
  const mnist = await loadModel(path.join(FIXTURES, '../../assets/mnist-vit'));
  expect(forwardFlops(mnist.config)).toBeLessThan(1e8); // 4.9 MFLOP
  expect(mnist.runtime.threads).toBe(1);
  await mnist.dispose();
  const cores = Math.min(os.availableParallelism(), 64);
  const deit = { ...PRESETS['deit-tiny'], imageSize: [224, 224] as [number, number], layerNormEps: 1e-12 };
  expect(forwardFlops(deit)).toBeGreaterThan(2e9);
  expect(autoThreads(deit)).toBe(cores);
  // in between: as many as the 100 MFLOP shares, never past the cores
  expect(autoThreads({ ...deit, numLayers: 1 })).toBe(
    Math.min(cores, Math.floor(forwardFlops({ ...deit, numLayers: 1 }) / 1e8)),
  );
});
