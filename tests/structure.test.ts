// The extension points and the honest types of the network's structure: a family's arithmetic is
// declared (src/nn/arch.ts) and refused by name when the ops do not compute it; token counts come
// from one function; Pillow's filters go by name; the incremental build is a no-op when nothing
// changed (the global setup has just run it).
import { describe, expect, test } from 'vitest';
import { ensureBuilt } from '../scripts/ensure-built.mjs';
import { FAMILIES } from '../src/io/families/index.js';
import { PILLOW_FILTERS, resampleFilter, resize } from '../src/io/image/pillow.js';
import { type Arch, checkArch, MAX_REGISTERS, PLAIN_VIT } from '../src/nn/arch.js';
import { inferencePlan } from '../src/nn/plan.js';
import { tokens, type ViTShape } from '../src/nn/shape.js';

const shape: ViTShape = {
  imageSize: [32, 48],
  patchSize: 8,
  numChannels: 3,
  hiddenSize: 16,
  numLayers: 1,
  numHeads: 2,
  intermediateSize: 32,
  numLabels: 3,
  layerNormEps: 1e-6,
};

describe('a family is declared, and what the ops do not compute is refused by name', () => {
  test('the plain ViT passes; every other value of every field is refused naming the field', () => {
    expect(checkArch(PLAIN_VIT)).toBe(PLAIN_VIT);
    const other: Record<keyof Arch, unknown> = {
      prefix: ['reg', 'cls'],
      positions: 'rows',
      layerScale: 'yes',
      embedNorm: 'sometimes',
      attentionBias: 'absolute',
      norms: 'post',
      activation: 'quick_gelu',
      mlp: 'moe',
      pooling: 'max',
      finalNorm: 'after',
      head: 'map',
    };
    for (const [key, v] of Object.entries(other)) {
      const arch = { ...PLAIN_VIT, [key]: v } as unknown as Arch;
      expect(() => checkArch(arch)).toThrow(new RegExp(`^vit-wasm: arch\\.${key} .* is not computed by vit-wasm`));
      // and a plan for such a shape is never made, so no forward runs it
      expect(() => inferencePlan(() => 0, { ...shape, arch }, { B: 1 })).toThrow(`arch.${key}`);
    }
  });

  test('register layouts: cls then 1 … MAX_REGISTERS registers; notRegisters needs registers; clsMean needs normed tokens', () => {
    const regs = (n: number) => ['cls', ...Array(n).fill('reg')] as Arch['prefix'];
    expect(checkArch({ ...PLAIN_VIT, prefix: regs(4), positions: 'notRegisters' })).toBeTruthy();
    expect(checkArch({ ...PLAIN_VIT, prefix: regs(MAX_REGISTERS), positions: 'patches' })).toBeTruthy();
    expect(() => checkArch({ ...PLAIN_VIT, prefix: regs(MAX_REGISTERS + 1) })).toThrow(/arch\.prefix .* not computed/);
    expect(() => checkArch({ ...PLAIN_VIT, prefix: ['cls', 'dist', 'reg'] })).toThrow(/arch\.prefix/);
    expect(() => checkArch({ ...PLAIN_VIT, prefix: [] })).toThrow(/arch\.prefix/);
    expect(() => checkArch({ ...PLAIN_VIT, positions: 'notRegisters' })).toThrow(/needs register tokens/);
    expect(() => checkArch({ ...PLAIN_VIT, pooling: 'clsMean', finalNorm: 'pooled' })).toThrow(/clsMean/);
  });

  test('a distilled head without the distillation token (or with mean pooling) is refused', () => {
    expect(() => checkArch({ ...PLAIN_VIT, head: 'distilled' })).toThrow(
      /arch\.head 'distilled' reads the cls and distillation tokens/,
    );
    expect(() => checkArch({ ...PLAIN_VIT, prefix: ['cls', 'dist'], head: 'distilled', pooling: 'mean' })).toThrow(
      /needs prefix \['cls', 'dist'\] and cls pooling/,
    );
    expect(checkArch({ ...PLAIN_VIT, prefix: ['cls', 'dist'], head: 'distilled' }).head).toBe('distilled');
  });

  test('every registered family declares an arithmetic the ops compute, and at least one naming scheme', () => {
    for (const f of FAMILIES) {
      expect(() => checkArch(f.arch)).not.toThrow();
      expect(f.schemes.length).toBeGreaterThan(0);
      expect(f.defaultHiddenAct).toBeTruthy();
    }
  });
});

test('tokens(): patches from the image and patch size, plus the prefix tokens the arch declares', () => {
  expect(tokens(shape)).toEqual({ Np: 24, T: 25, T8: 32 });
  expect(tokens({ ...shape, arch: PLAIN_VIT })).toEqual({ Np: 24, T: 25, T8: 32 });
  expect(tokens({ ...shape, imageSize: [56, 56] })).toEqual({ Np: 49, T: 50, T8: 56 });
});

describe("Pillow's filters by name", () => {
  test("a filter's index is Pillow's number for it, and resize takes either", () => {
    expect(PILLOW_FILTERS.indexOf('bilinear')).toBe(2);
    expect(PILLOW_FILTERS.indexOf('bicubic')).toBe(3);
    const img = {
      data: Uint8Array.from({ length: 7 * 5 * 3 }, (_, i) => (i * 37) % 256),
      width: 7,
      height: 5,
      channels: 3 as const,
    };
    for (const [i, name] of PILLOW_FILTERS.entries()) {
      if (name === 'nearest') continue;
      expect(resampleFilter(i)).toBe(name);
      expect(resize(img, 4, 9, i).data).toEqual(resize(img, 4, 9, name).data);
    }
  });
  test('NEAREST (not a convolution in Pillow) and unknown filters are refused by name', () => {
    expect(resampleFilter(0)).toBeUndefined();
    expect(resampleFilter('nearest')).toBeUndefined();
    expect(resampleFilter(6)).toBeUndefined();
    const img = { data: new Uint8Array(12), width: 2, height: 2, channels: 3 as const };
    expect(() => resize(img, 1, 1, 0)).toThrow('vit-wasm: resample 0 is not supported');
    expect(() => resize(img, 1, 1, 'nearest' as never)).toThrow('vit-wasm: resample "nearest" is not supported');
  });
});

test('the incremental build rebuilds nothing when nothing changed since the global setup ran it', () => {
  const lines: string[] = [];
  expect(ensureBuilt({ log: (l) => lines.push(l) })).toEqual([]);
  expect(lines).toEqual([]);
});
