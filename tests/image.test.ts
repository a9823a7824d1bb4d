// Preprocessing against Pillow + HF ViTImageProcessor (fixtures from tests/fixtures/generate.py).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { type PreprocessConfig, parsePreprocess, type ViTConfig } from '../src/io/config.js';
import { decodeImage } from '../src/io/image/decode.js';
import { convertChannels, resampleFilter, resize } from '../src/io/image/pillow.js';
import { preprocess } from '../src/io/image/preprocess.js';
import { processorConfig, timmPreprocessor } from '../src/io/processor.js';
import { torchvisionPreprocessor } from '../src/io/torchvision.js';
import { FIXTURES } from './helpers.js';

interface Case {
  image: string;
  mode: 'RGB' | 'L';
  height: number;
  width: number;
  resample: number;
  image_mean: number[];
  image_std: number[];
  resized: string;
  normalized: string | null;
}
const dir = path.join(FIXTURES, 'preprocess');
const cases: Case[] = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
const bytesOf = (f: string) => new Uint8Array(readFileSync(f));

/** A photo of tests/fixtures/images preprocessed by `p`: every float equal to the reference file's in preprocess/. */
function expectPixels(image: string, p: PreprocessConfig, pixels: string): void {
  const x = preprocess(decodeImage(bytesOf(path.join(FIXTURES, 'images', image)), image), p, 3);
  const ref = new Float32Array(bytesOf(path.join(dir, pixels)).slice().buffer);
  let differ = 0;
  for (let i = 0; i < ref.length; i++) differ += +(x[i] !== ref[i]);
  expect([x.length, differ]).toEqual([ref.length, 0]);
}

describe('preprocessing matches Pillow', () => {
  test.each(cases.map((c) => [`${c.image} ${c.mode} ${c.height}x${c.width} resample ${c.resample}`, c] as const))(
    '%s',
    (_, c) => {
      const C = c.mode === 'L' ? 1 : 3;
      const img = decodeImage(bytesOf(path.join(FIXTURES, 'images', c.image)), c.image);
      const ours = resize(convertChannels(img, C), c.width, c.height, c.resample).data;
      const pil = bytesOf(path.join(dir, c.resized));
      expect(ours.length).toBe(pil.length);
      let exact = 0,
        sum = 0,
        worst = 0;
      for (let i = 0; i < pil.length; i++) {
        const d = Math.abs(ours[i] - pil[i]);
        exact += +(d === 0);
        sum += d;
        worst = Math.max(worst, d);
      }

      const cfg = {
        doResize: true,
        size: [c.height, c.width] as [number, number],
        resample: resampleFilter(c.resample)!,
        doRescale: true,
        rescaleFactor: 1 / 255,
        doNormalize: true,
        imageMean: c.image_mean,
        imageStd: c.image_std,
      };
      const x = preprocess(img, cfg, C as 1 | 3);
      // Normalized reference: numpy's output when stored, else Pillow's pixels through HF's formula in float64.
      const ref = c.normalized
        ? new Float32Array(bytesOf(path.join(dir, c.normalized)).slice().buffer)
        : Float32Array.from({ length: pil.length }, (_, k) => {
            const ch = Math.floor(k / (c.height * c.width)),
              i = k % (c.height * c.width);
            return (pil[i * C + ch] / 255 - c.image_mean[ch]) / c.image_std[ch];
          });
      let meanAbs = 0;
      for (let i = 0; i < ref.length; i++) meanAbs += Math.abs(x[i] - ref[i]);
      meanAbs /= ref.length;
      console.log(
        `${c.image} ${c.mode} ${c.height}x${c.width} r${c.resample}: ${((100 * exact) / pil.length).toFixed(2)}% bytes equal to Pillow, ` +
          `mean |Δ| ${(sum / pil.length).toFixed(4)} max ${worst} (uint8); normalized mean |Δ| ${meanAbs.toExponential(2)}`,
      );
      expect(meanAbs).toBeLessThanOrEqual(0.01);
      // PNGs decode losslessly, so Pillow's resampler is reproduced byte for byte; JPEG decoders may differ by an LSB or so.
      if (c.image.endsWith('.png')) {
        expect(worst).toBe(0);
        if (c.normalized) expect(Array.from(x)).toEqual(Array.from(ref));
      }
    },
  );
});

// CLIP's, BiT's (DINOv2) and DeiT's processors: a shortest-edge or fixed resize, then a center crop
// (zero-padded where it is larger), against Pillow and numpy as transformers runs them
// (tests/fixtures/generate.py, hf_process). PNGs decode losslessly: every float must be equal.
describe('image processors with a crop match Pillow + transformers exactly', () => {
  const processors: { image: string; preprocessor: Record<string, unknown>; shape: number[]; pixels: string }[] =
    JSON.parse(readFileSync(path.join(dir, 'processors.json'), 'utf8'));
  test.each(
    processors.map(
      (c) => [`${c.image} ${JSON.stringify(c.preprocessor.size)} → crop ${c.shape.slice(1).join('x')}`, c] as const,
    ),
  )('%s', (_, c) => {
    const [C, H, W] = c.shape;
    const cfg = { numChannels: C, imageSize: [H, W] } as ViTConfig;
    const p = parsePreprocess(c.preprocessor, cfg, 'preprocessor_config.json');
    expect(p.size).toEqual([H, W]);
    expectPixels(c.image, p, c.pixels);
  });

  test.each([
    [{ size: { shortest_edge: 224 } }, /size \{shortest_edge\} without a center crop gives images of any size/],
    [{ size: 24, do_pad: true }, /do_pad true asks for padding, which vit-wasm does not compute/],
    [{ size: 24, crop_pct: 0.875 }, /crop_pct 0\.875 asks for ConvNext's resize to size \/ crop_pct/],
    [{ size: 24, do_flip_channel_order: true }, /do_flip_channel_order true asks for BGR channel order/],
    [{ size: 24, size_divisor: 32 }, /size_divisor 32 asks for sizes rounded to a divisor/],
    [{ size: { shortest_edge: 224, longest_edge: 500 } }, /size\.longest_edge \(and max_size\) is not supported yet/],
    [
      { size: { shortest_edge: 0 }, crop_size: 224, do_center_crop: true },
      /size\.shortest_edge must be an integer from 1 to 16384, got 0/,
    ],
    [{ size: 256, do_center_crop: true }, /do_center_crop is true but crop_size is missing/],
    [
      { size: 256, crop_size: 224, do_center_crop: true },
      /images come out at 224x224 \(crop_size\), but the model's image_size is 24x24; load it with \{ imageSize: \[224,224\] \}/,
    ],
  ])('%j is refused by name', (pre, error) => {
    const cfg = { numChannels: 3, imageSize: [24, 24] } as ViTConfig;
    expect(() => parsePreprocess(pre, cfg, 'preprocessor_config.json')).toThrow(error);
  });
});

// timm's eval transform from a checkpoint's pretrained_cfg (src/io/processor.ts): shorter side to
// ⌊size / crop_pct⌋ (or both sides: squash), torchvision's CenterCrop, ToTensor, Normalize, against
// the same pipeline run by torchvision on Pillow (tests/fixtures/generate.py timm-preprocess).
describe("timm's pretrained_cfg: the eval transform's pixels, bit for bit", () => {
  const cases: { image: string; pretrained_cfg: Record<string, unknown>; shape: number[]; pixels: string }[] =
    JSON.parse(readFileSync(path.join(dir, 'timm.json'), 'utf8'));
  test.each(cases.map((c) => [`${c.image} ${JSON.stringify(c.pretrained_cfg)}`, c] as const))('%s', (_, c) => {
    const [C, H, W] = c.shape;
    const cfg = { numChannels: C, imageSize: [H, W] } as ViTConfig;
    const p = processorConfig(timmPreprocessor(c.pretrained_cfg, 'config.json'), cfg);
    expect(p.transforms).toBe('torchvision');
    expectPixels(c.image, p, c.pixels);
  });

  test.each([
    [{ interpolation: 'nearest' }, /pretrained_cfg\.interpolation "nearest" is not supported/],
    [{ interpolation: 'random' }, /pretrained_cfg\.interpolation "random" is not supported/],
    [{ crop_mode: 'border' }, /pretrained_cfg\.crop_mode "border" is not supported yet/],
    [{ input_size: [224, 224] }, /pretrained_cfg\.input_size must be \[channels, height, width\]/],
    [{ mean: [0.5, 0.5] }, /pretrained_cfg\.mean must be 3 finite numbers/],
    [{ crop_pct: 'x' }, /pretrained_cfg\.crop_pct must be a number/],
    [{ crop_border_pixels: 2 }, /pretrained_cfg\.crop_border_pixels is not supported yet/],
  ])('%j is refused by name', (cfg, error) => {
    expect(() => timmPreprocessor(cfg, 'config.json')).toThrow(error);
  });

  test("a 'center' crop to a size that is not square (ResizeKeepRatio) is refused when an image is preprocessed", () => {
    const p = processorConfig(timmPreprocessor({ input_size: [3, 24, 32] }, 'config.json'), {
      numChannels: 3,
      imageSize: [24, 32],
    } as ViTConfig);
    expect(() => preprocess({ data: new Uint8Array(48 * 3), width: 8, height: 6, channels: 3 }, p, 3)).toThrow(
      /input_size 24x32: crop_mode 'center' to a size that is not square \(timm's ResizeKeepRatio\) is not supported yet/,
    );
  });
});

// JPEGs decoded as Pillow decodes them (libjpeg-turbo: src/io/image/jpeg.ts), every kind a photo
// comes as (tests/fixtures/generate.py jpeg): the same pixels, byte for byte, by their sha256.
describe('JPEGs: the pixels Pillow decodes, byte for byte', () => {
  const jdir = path.join(FIXTURES, 'jpeg');
  const { images } = JSON.parse(readFileSync(path.join(jdir, 'pillow.json'), 'utf8')) as {
    images: { file: string; width: number; height: number; mode: 'RGB' | 'L'; pillow_mode: string; sha256: string }[];
  };
  test.each(images.map((c) => [`${c.file} (${c.pillow_mode})`, c] as const))('%s', (_, c) => {
    const img = decodeImage(bytesOf(path.join(jdir, c.file)), c.file);
    expect([img.width, img.height, img.channels]).toEqual([c.width, c.height, c.mode === 'L' ? 1 : 3]);
    expect(createHash('sha256').update(img.data).digest('hex')).toBe(c.sha256);
  });
});

// torchvision's weights presets by name (loadModel's `transforms`: src/io/torchvision.ts), against
// torchvision's own ImageClassification on the PIL image (tests/fixtures/generate.py
// torchvision-transforms): resize the shorter side, CenterCrop, v / 255, Normalize.
describe('torchvision weights transforms by name: their pixels, bit for bit', () => {
  const cases: { image: string; weights: string; shape: number[]; pixels: string }[] = JSON.parse(
    readFileSync(path.join(dir, 'torchvision.json'), 'utf8'),
  );
  test.each(cases.map((c) => [`${c.weights} on ${c.image}`, c] as const))('%s', (_, c) => {
    const [C, H, W] = c.shape;
    const p = {
      ...parsePreprocess(torchvisionPreprocessor(c.weights), { numChannels: C, imageSize: [H, W] } as ViTConfig),
      transforms: 'torchvision' as const,
    };
    expectPixels(c.image, p, c.pixels);
  });

  test('an unknown name is refused, listing the known ones', () => {
    expect(() => torchvisionPreprocessor('ViT_B_16_Weights.DEFAULT')).toThrow(
      /transforms "ViT_B_16_Weights\.DEFAULT" is not a torchvision ViT weights name vit-wasm knows \(ViT_B_16_Weights\.IMAGENET1K_V1, /,
    );
  });
});
