// PyTorch checkpoints as torch.save writes them (tests/fixtures/generate.py pytorch, Debian's
// PyTorch): each loads through the restricted unpickler and gives the same bits as its safetensors
// twin in tests/fixtures/models/ — Q, K and V as views into one storage, f16, torchvision's own
// state dict, a checkpoint nested under 'model' with DataParallel's prefix, shards, pickle
// protocol 4 — and hostile files are refused by name: a pickle calling os.system, nesting 100,000
// deep, a tensor past its storage, a non-contiguous view, the legacy format, a truncated zip.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { unpickle } from '../src/io/pickle.js';
import { dirFiles, FIXTURES, MODELS, readF32, splitSafetensors } from './helpers.js';

const DIR = path.join(FIXTURES, 'pytorch');

describe.each([
  ['h40-hf-bin', 'h40-hf', 'hf'],
  ['h40-hf-protocol4', 'h40-hf', 'hf'],
  ['h40-hf-sharded', 'h40-hf', 'hf'],
  ['h38-hf-f16', 'h38-hf', 'hf'],
  ['h33-torchvision-pth', 'h33-torchvision', 'torchvision'],
  ['h48-timm-nested', 'h48-timm', 'timm'],
] as const)('%s', (name, twin, scheme) => {
  test(`loads as its safetensors twin ${twin} does: the same logits, bit for bit (1 and 2 threads)`, async () => {
    const x = readF32(path.join(MODELS, twin, 'input.f32'));
    const { batch } = JSON.parse(readFileSync(path.join(MODELS, twin, 'expected.json'), 'utf8'));
    const ref = await loadModel(path.join(MODELS, twin), { threads: 1 });
    const want = await ref.forward(x, batch);
    await ref.dispose();
    for (const threads of [1, 2]) {
      const m = await loadModel(path.join(DIR, name), { threads });
      expect(m.scheme).toBe(scheme);
      expect(Array.from(await m.forward(x, batch))).toEqual(Array.from(want));
      await m.dispose();
    }
  });
});

describe('hostile PyTorch files are refused by name, nothing run', () => {
  const as = (file: string) => ({
    ...dirFiles(path.join(DIR, 'h40-hf-bin')),
    'pytorch_model.bin': new Uint8Array(readFileSync(path.join(DIR, 'hostile', file))),
  });
  test.each([
    [
      'a pickle that calls os.system',
      'os-system.bin',
      /asks for the Python global '(posix|os)\.system', which a state dict never needs: refused/,
    ],
    ['lists nested 100,000 deep', 'nested.bin', /no state dict: the pickle holds a list/],
    [
      'a tensor larger than its storage',
      'big-view.bin',
      /tensor 'w' \(1600 elements from 0\) runs past its storage of 16/,
    ],
    [
      'a non-contiguous view',
      'transposed.bin',
      /tensor 'w' is a non-contiguous view \(strides 1,4\): save it with \.contiguous\(\)/,
    ],
    ['the legacy format', 'legacy.bin', /a PyTorch file in the legacy format .* is not read/],
    ['a truncated zip', 'truncated.bin', /pytorch_model\.bin: not a readable zip file/],
  ])('%s', async (_, file, error) => {
    await expect(loadModel(as(file), { threads: 1 })).rejects.toThrow(error);
  });

  test('not a zip at all, and no weights file at all, say so', async () => {
    await expect(loadModel({ ...as('legacy.bin'), 'pytorch_model.bin': 'hello' }, { threads: 1 })).rejects.toThrow(
      /pytorch_model\.bin: not a PyTorch checkpoint \(torch\.save writes a zip file\)/,
    );
    const none = dirFiles(path.join(DIR, 'h40-hf-bin'));
    delete none['pytorch_model.bin'];
    await expect(loadModel(none, { threads: 1 })).rejects.toThrow(
      /no weights file \(looked for model\.safetensors, .*pytorch_model\.bin.*; name a \.pth or \.pt file pytorch_model\.bin\)/,
    );
  });
});

describe('the restricted unpickler', () => {
  const p2 = (...ops: (number | string)[]) =>
    new Uint8Array(ops.flatMap((o) => (typeof o === 'number' ? [o] : Array.from(new TextEncoder().encode(o)))));
  test('plain data: a dict of a list, a tuple, ints (LONG1 past 2^53), a float, strings, bools, None', () => {
    // {'a': [1, -2, 2**64], 'b': (1.5, True, None)}
    const v = unpickle(
      p2(
        0x80,
        2,
        0x7d,
        0x28,
        0x58,
        1,
        0,
        0,
        0,
        'a',
        0x5d,
        0x28,
        0x4b,
        1,
        0x4a,
        0xfe,
        0xff,
        0xff,
        0xff,
        0x8a,
        9,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        1,
        0x65,
        0x58,
        1,
        0,
        0,
        0,
        'b',
        0x47,
        0x3f,
        0xf8,
        0,
        0,
        0,
        0,
        0,
        0,
        0x88,
        0x4e,
        0x87,
        0x75,
        0x2e,
      ),
      'test.pkl',
    ) as Map<string, unknown>;
    expect(v.get('a')).toEqual([1, -2, 2n ** 64n]);
    expect((v.get('b') as { items: unknown[] }).items).toEqual([1.5, true, null]);
  });

  test.each([
    ['builtins.eval by GLOBAL', p2(0x80, 2, 0x63, 'builtins\neval\n', 0x2e), /the Python global 'builtins\.eval'/],
    [
      'a storage type called as a function',
      p2(0x80, 2, 0x63, 'torch\nFloatStorage\n', 0x29, 0x52, 0x2e),
      /is a storage type, not a function to call/,
    ],
    [
      'an opcode a state dict never uses (INST)',
      p2(0x80, 2, 0x69, 'os\nsystem\n', 0x2e),
      /pickle opcode 0x69 at byte 2 is not one a state dict is written with/,
    ],
    ['a truncated pickle', p2(0x80, 2, 0x58, 0xff, 0xff, 0, 0), /truncated pickle/],
    ['a memo never stored', p2(0x80, 2, 0x68, 7, 0x2e), /memo 7 was never stored/],
    ['a tuple as a dict key', p2(0x80, 2, 0x7d, 0x29, 0x4b, 1, 0x73, 0x2e), /a dict key of type tuple/],
  ])('%s is refused by name', (_, bytes, error) => {
    expect(() => unpickle(bytes, 'test.pkl')).toThrow(error);
  });
});

test('vit-wasm convert writes the same tensors as safetensors (names, dtypes, bytes), which load to the same bits', async () => {
  const { execFile } = await import('node:child_process');
  const { promisify } = await import('node:util');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const os = await import('node:os');
  const out = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-convert-'));
  try {
    const bin = path.join(FIXTURES, '../../bin/vit-wasm.js');
    const { stdout } = await promisify(execFile)(process.execPath, [
      bin,
      'convert',
      '--model',
      path.join(DIR, 'h38-hf-f16'),
      '--out',
      out,
    ]);
    expect(stdout).toMatch(
      /wrote .*: model\.safetensors, config\.json, preprocessor_config\.json \(\d+ tensors from pytorch_model\.bin\)/,
    );
    // every tensor as the twin's safetensors holds it (generate.py wrote both from the same parameters)
    const tensors = (file: string) => {
      const { header, data } = splitSafetensors(new Uint8Array(readFileSync(file)));
      return new Map(
        Object.entries(header)
          .filter(([k]) => k !== '__metadata__')
          .map(([k, v]) => [
            k,
            { dtype: v.dtype, shape: v.shape, bytes: Array.from(data.subarray(...v.data_offsets)) },
          ]),
      );
    };
    expect(tensors(path.join(out, 'model.safetensors'))).toEqual(
      tensors(path.join(MODELS, 'h38-hf', 'model.safetensors')),
    );
    const x = readF32(path.join(MODELS, 'h38-hf', 'input.f32'));
    const a = await loadModel(out, { threads: 1 }),
      b = await loadModel(path.join(DIR, 'h38-hf-f16'), { threads: 1 });
    expect(Array.from(await a.forward(x, 2))).toEqual(Array.from(await b.forward(x, 2)));
    await Promise.all([a.dispose(), b.dispose()]);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
