// The MNIST workflow as a user runs it: train (one short epoch here), eval, the bundled model and
// its digits (`npm start`), and classify without --model.
import { execFile } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from 'vitest';
import { loadMnist } from '../src/cli/mnist.js';
import { FIXTURES } from './helpers.js';
import { tempDir } from './tmp.js';

const run = promisify(execFile);
const ROOT = path.join(FIXTURES, '../..');
const BIN = path.join(ROOT, 'bin/vit-wasm.js');
const cli = (args: string[]) =>
  run(process.execPath, [BIN, ...args], { timeout: 120_000 }).catch(
    (e) => e as { code: number; stdout: string; stderr: string },
  );

test('the split is fixed: 8,000 training and 2,000 held-out digits, all ten classes', () => {
  const a = loadMnist(),
    b = loadMnist();
  expect(a.train.count).toBe(8000);
  expect(a.test.count).toBe(2000);
  expect(Buffer.from(a.test.images).equals(Buffer.from(b.test.images))).toBe(true);
  expect(new Set(a.test.labels).size).toBe(10);
});

test('train writes a model that eval and classify load; eval agrees with the training log', async () => {
  const out = tempDir('vit-wasm-mnist-');
  const tr = await cli(['train', '--dataset', 'mnist', '--epochs', '1', '--batch', '64', '--out', out]);
  const held = /wrote .* held-out accuracy ([\d.]+)%/.exec(tr.stdout);
  expect(held, tr.stdout + tr.stderr).not.toBeNull();
  expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'preprocessor_config.json']);
  const ev = await cli(['eval', '--model', out, '--dataset', 'mnist']);
  expect(ev.stdout).toContain(`held-out accuracy ${held![1]}%`);
  const rows = ev.stdout
    .trim()
    .split('\n')
    .slice(-10)
    .map((l) => l.trim().split(/\s+/).slice(1).map(Number));
  expect(rows.flat().reduce((a, b) => a + b, 0)).toBe(2000);
  const cl = await cli([
    'classify',
    '--model',
    out,
    path.join(ROOT, 'assets/digits/digit-03-label-3.png'),
    '--json',
    '--top',
    '10',
  ]);
  expect(JSON.parse(cl.stdout)[0].predictions).toHaveLength(10);
  expect((await cli(['train', '--dataset', 'cifar', '--out', out])).stderr).toMatch(
    /train needs --dataset mnist, got 'cifar'/,
  );
  expect((await cli(['train', '--dataset', 'mnist', '--out', out, '--epochs', '0'])).stderr).toMatch(
    /--epochs must be a positive integer/,
  );
});

test('the bundled model is small, and `npm start` (vit-wasm demo) classifies the bundled digits', async () => {
  expect(statSync(path.join(ROOT, 'assets/mnist-vit/model.safetensors')).size).toBeLessThan(1 << 20);
  const { stdout } = await cli(['demo']);
  const lines = stdout.split('\n').filter((l) => /^digit-\d\d-label-\d\.png/.test(l));
  expect(lines).toHaveLength(12);
  for (const l of lines) expect(l).toMatch(/^digit-\d\d-label-(\d)\.png\s+\1\s+\d\s+[\d.]+%/);
  const right = Number(/(\d+) of 12 right/.exec(stdout)![1]);
  expect(right).toBe(lines.filter((l) => !l.includes('✗')).length);
  expect(right).toBeGreaterThanOrEqual(10); // a 96%-accurate model misses at most a couple
  const { stdout: js } = await cli(['classify', path.join(ROOT, 'assets/digits/digit-07-label-7.png'), '--json']);
  expect(JSON.parse(js)[0].predictions[0].label).toMatch(/^\d$/);
});
