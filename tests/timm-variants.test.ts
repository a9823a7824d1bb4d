// timm's VisionTransformer variants, from timm's own names and hub configs (kwargs under
// model_args), against float64 references written from timm's forward
// (tests/fixtures/generate.py timm-variants): LayerScale (init_values: ls1/ls2.gamma), register
// tokens (reg_token), position embeddings over the patches only (no_embed_class, as DeiT-III and
// timm's reg4 models) or over every token, with token, avg + fc_norm or map pooling (the attention
// pool; without a class token and with the tanh GELU, as timm's SigLIP towers); each at its own
// size and resized as timm does (antialiased); and config/tensor disagreements refused by name.
import { cpSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test, vi } from 'vitest';
import { loadModel } from '../src/index.js';
import { dirFiles, FIXTURES, fixtureDirs, maxDiff, readF32, withTensor } from './helpers.js';
import { tempDir } from './tmp.js';

const DIR = path.join(FIXTURES, 'timm-variants');

interface Run {
  image_size: [number, number];
  input: string;
  batch: number;
  logits: number[];
}

const cases = fixtureDirs<{ runs: Run[] }>(DIR).map(({ name, dir, exp }) => ({ name, dir, runs: exp.runs }));

test('eight: registers + LayerScale + no_embed_class + avg, DeiT-III, registers with positions, registers without a class token, the attention pool with and without a class token, a CLIP tower (norm_pre), DINOv2-giant (SwiGLUPacked)', () => {
  expect(cases.map((c) => c.name)).toEqual([
    'h33-timm-deit3',
    'h33-timm-map',
    'h33-timm-reg-nocls',
    'h40-timm-dinov2-swiglu',
    'h40-timm-reg-avg',
    'h40-timm-siglip-map',
    'h48-timm-clip',
    'h48-timm-reg-token',
  ]);
});

describe.each(cases.map((c) => [c.name, c] as const))('%s', (name, c) => {
  test.each(c.runs.map((r) => [`${r.image_size[0]}x${r.image_size[1]}`, r] as const))(
    'at %s: the logits of the float64 reference (1 and 2 threads)',
    async (size, r) => {
      const x = readF32(path.join(c.dir, r.input));
      for (const threads of [1, 2]) {
        const m = await loadModel(c.dir, { threads, imageSize: r.image_size });
        const { diff, scale } = maxDiff(await m.forward(x, r.batch), r.logits);
        console.log(
          `${name} at ${size} (${threads} threads): max |ours - torch| = ${diff.toExponential(2)} (max |torch| ${scale.toFixed(2)})`,
        );
        expect(diff).toBeLessThanOrEqual(1e-5 * Math.max(1, scale));
        await m.dispose();
      }
    },
  );
});

/** The fixture's files, its model_args edited by `edit`. */
const files = (name: string, edit?: (args: Record<string, unknown>) => void) =>
  dirFiles(path.join(DIR, name), edit && ((c) => edit(c.model_args as Record<string, unknown>)));

/** `f` without the tensors `names`. */
const without = (f: Record<string, Uint8Array | string>, ...names: string[]) =>
  names.reduce((acc, n) => withTensor(acc, n, null), f);

describe('timm configs that disagree with their tensors are refused by name', () => {
  test.each([
    [
      'reg_tokens against reg_token',
      files('h40-timm-reg-avg', (a) => {
        a.reg_tokens = 4;
      }),
      /reg_tokens=4, but the checkpoint has tensor 'reg_token' of shape \[1,2,40\] \(2 registers\)/,
    ],
    [
      'reg_tokens without reg_token',
      without(files('h40-timm-reg-avg'), 'reg_token'),
      /reg_tokens=2, but the checkpoint has no tensor 'reg_token'/,
    ],
    [
      'init_values without LayerScale tensors',
      without(files('h33-timm-deit3'), ...[0, 1, 2].flatMap((i) => [`blocks.${i}.ls1.gamma`, `blocks.${i}.ls2.gamma`])),
      /init_values 0\.000001 asks for LayerScale, but there is no tensor 'blocks\.0\.ls1\.gamma'/,
    ],
    [
      "one layer's LayerScale missing",
      without(files('h33-timm-deit3'), 'blocks.2.ls2.gamma'),
      /missing tensor 'blocks\.2\.ls2\.gamma'/,
    ],
    [
      'no_embed_class against the position count',
      files('h33-timm-deit3', (a) => {
        a.no_embed_class = false;
      }),
      /gives 16 patches \+ cls = 17 positions, but .* 'pos_embed' has shape \[1,16,33\] \(16 positions\)/,
    ],
    [
      'class_token false with a cls_token tensor',
      files('h48-timm-reg-token', (a) => {
        a.class_token = false;
      }),
      /class_token=false, but the checkpoint has tensor 'cls_token'/,
    ],
    [
      'pre_norm without norm_pre',
      without(files('h48-timm-clip'), 'norm_pre.weight', 'norm_pre.bias'),
      /pre_norm=true, but there is no tensor 'norm_pre\.weight'/,
    ],
    [
      'token pooling without a class token',
      (() => {
        const f = files('h40-timm-siglip-map');
        const cfg = JSON.parse(new TextDecoder().decode(f['config.json'] as Uint8Array));
        f['config.json'] = JSON.stringify({ ...cfg, global_pool: 'token' });
        return f;
      })(),
      /arch\.pooling 'cls' reads the cls token: arch\.prefix has none/,
    ],
    [
      "a gated MLP with timm's default GELU (an architecture not DINOv2's, no act_layer)",
      (() => {
        const f = files('h40-timm-dinov2-swiglu');
        const cfg = JSON.parse(new TextDecoder().decode(f['config.json'] as Uint8Array));
        f['config.json'] = JSON.stringify({ ...cfg, architecture: 'vit_base_patch16_224' });
        return f;
      })(),
      /a gated MLP \(timm's SwiGLUPacked: 'blocks\.0\.mlp\.fc1\.weight' has twice the rows 'blocks\.0\.mlp\.fc2\.weight' reads\) with act_layer gelu \(timm's default\) is not computed/,
    ],
    [
      'an attention pool without its latent',
      without(files('h33-timm-map'), 'attn_pool.latent'),
      /missing tensor 'attn_pool\.latent'/,
    ],
  ])('%s', async (_, f, error) => {
    await expect(loadModel(f, { threads: 1 })).rejects.toThrow(error);
  });
});

describe("timm's pretrained_cfg is the model's image processor (src/io/processor.ts)", () => {
  const dir = path.join(DIR, 'h33-timm-deit3');
  const withCfg = (pretrained: unknown) => {
    const f = dirFiles(dir);
    const cfg = JSON.parse(new TextDecoder().decode(f['config.json'] as Uint8Array));
    f['config.json'] = JSON.stringify({ ...cfg, pretrained_cfg: pretrained });
    return f;
  };

  test('input_size, interpolation, crop_pct and mean/std are read: ⌊28 / 0.875⌋ = 32, bicubic, ImageNet', async () => {
    const m = await loadModel(
      withCfg({
        input_size: [3, 28, 28],
        interpolation: 'bicubic',
        crop_pct: 0.875,
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
      }),
      { threads: 1 },
    );
    expect(m.preprocessing).toMatchObject({
      size: [28, 28],
      resizeTo: { shortestEdge: 32 },
      crop: true,
      resample: 'bicubic',
      imageMean: [0.485, 0.456, 0.406],
      imageStd: [0.229, 0.224, 0.225],
      transforms: 'torchvision',
    });
    // the pixels torchvision gives for this pretrained_cfg (tests/fixtures/generate.py timm-preprocess, case 0)
    const px = await m.pixels(path.join(FIXTURES, 'images', 'chelsea.png'));
    expect(Array.from(px)).toEqual(Array.from(readF32(path.join(FIXTURES, 'preprocess', 'timm-00-chelsea.f32'))));
    expect(await m.classify(path.join(FIXTURES, 'images', 'chelsea.png'))).toHaveLength(5);
    await m.dispose();
  });

  test("an input_size other than the model's is refused, saying how to run at it", async () => {
    await expect(loadModel(withCfg({ input_size: [3, 42, 42] }), { threads: 1 })).rejects.toThrow(
      /config\.json: images come out at 42x42 \(crop_size\), but the model's image_size is 28x28; load it with \{ imageSize: \[42,42\] \}/,
    );
  });

  test("a 'center' crop to a size that is not square (timm's ResizeKeepRatio): the model runs on pixels, images are refused by name", async () => {
    const f = dirFiles(path.join(DIR, 'h40-timm-reg-avg'));
    const cfg = JSON.parse(new TextDecoder().decode(f['config.json'] as Uint8Array));
    f['config.json'] = JSON.stringify({ ...cfg, pretrained_cfg: { input_size: [3, 20, 25] } });
    const m = await loadModel(f, { threads: 1 });
    expect((await m.forward(new Float32Array(m.inputSize))).length).toBe(m.config.numLabels);
    await expect(m.classify(path.join(FIXTURES, 'images', 'chelsea.png'))).rejects.toThrow(
      /pretrained_cfg\.input_size 20x25: crop_mode 'center' to a size that is not square \(timm's ResizeKeepRatio\) is not supported yet: preprocess the images yourself and pass pixels/,
    );
    await m.dispose();
  });

  test('without pretrained_cfg a warning says which defaults preprocess its images, once per directory', async () => {
    // a directory no other test loaded: the warning is given once per directory and process
    const copy = tempDir('vit-wasm-timm-');
    cpSync(dir, copy, { recursive: true });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    for (let i = 0; i < 2; i++) await (await loadModel(copy, { threads: 1 })).dispose();
    const said = warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('has no pretrained_cfg'));
    warn.mockRestore();
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(
      /config\.json is timm's and has no pretrained_cfg: images are preprocessed with ViTImageProcessor's defaults/,
    );
  });
});
