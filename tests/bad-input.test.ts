// Bad input must fail with an Error naming the file and the tensor or field: never a trap, a hang
// or silent garbage.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { FIXTURES, type Header, joinSafetensors, MODELS, repack, splitSafetensors } from './helpers.js';

type Files = Record<string, Uint8Array | string>;

function fixtureFiles(name: string): Files {
  const dir = path.join(MODELS, name),
    out: Files = {};
  for (const f of readdirSync(dir))
    out[f] = f.endsWith('.json')
      ? readFileSync(path.join(dir, f), 'utf8')
      : new Uint8Array(readFileSync(path.join(dir, f)));
  return out;
}

/** The h40-hf fixture with tensors edited (deleted, added with `extra` bytes, reshaped) and the file repacked. */
function withTensors(edit: (h: Header) => void, extra: Record<string, Uint8Array> = {}): Files {
  const files = fixtureFiles('h40-hf');
  const { header, data } = splitSafetensors(files['model.safetensors'] as Uint8Array);
  edit(header);
  files['model.safetensors'] = repack(header, data, extra);
  return files;
}

/** The h40-hf fixture with its safetensors header edited. */
function withHeader(edit: (h: Header) => void, data?: (d: Uint8Array) => Uint8Array): Files {
  const files = fixtureFiles('h40-hf');
  const { header, data: d } = splitSafetensors(files['model.safetensors'] as Uint8Array);
  edit(header);
  files['model.safetensors'] = joinSafetensors(header, data ? data(d) : d);
  return files;
}

function withConfig(edit: (c: Record<string, unknown>) => void, name = 'h40-hf'): Files {
  const files = fixtureFiles(name);
  const cfg = JSON.parse(files['config.json'] as string);
  edit(cfg);
  files['config.json'] = JSON.stringify(cfg);
  return files;
}

const FC1 = 'vit.encoder.layer.0.intermediate.dense.weight';

/** A valid safetensors file whose classifier holds no bytes: shape [classes, 0]; config.json gives no label count. */
function zeroByteClassifier(classes: number): Files {
  const f = withTensors(
    (h) => {
      h['classifier.weight'].shape = [classes, 0];
    },
    { 'classifier.weight': new Uint8Array(0) },
  );
  const cfg = JSON.parse(f['config.json'] as string);
  delete cfg.id2label;
  delete cfg.label2id;
  delete cfg.num_labels;
  f['config.json'] = JSON.stringify(cfg);
  return f;
}

describe('malformed safetensors', () => {
  const cases: [string, () => Files, RegExp][] = [
    [
      'file shorter than the length field',
      () => ({ ...fixtureFiles('h40-hf'), 'model.safetensors': new Uint8Array(5) }),
      /model\.safetensors: truncated: 5 bytes/,
    ],
    [
      'truncated data',
      () => {
        const f = fixtureFiles('h40-hf');
        const b = f['model.safetensors'] as Uint8Array;
        f['model.safetensors'] = b.subarray(0, b.length - 100);
        return f;
      },
      /model\.safetensors: tensor '.+': data_offsets \[\d+, \d+\] run past the end of the data/,
    ],
    [
      'header length past the end',
      () => {
        const f = fixtureFiles('h40-hf');
        const { header, data } = splitSafetensors(f['model.safetensors'] as Uint8Array);
        f['model.safetensors'] = joinSafetensors(header, data, 1e6);
        return f;
      },
      /model\.safetensors: bad header length 1000000: the file has only \d+ bytes after the length/,
    ],
    [
      'header length over the limit',
      () => {
        const f = fixtureFiles('h40-hf');
        const { header, data } = splitSafetensors(f['model.safetensors'] as Uint8Array);
        f['model.safetensors'] = joinSafetensors(header, data, 1e9);
        return f;
      },
      /model\.safetensors: a safetensors header of 1000000000 bytes is over the limit of 100,000,000 \(limits\.maxHeaderBytes\); .* --limit maxHeaderBytes=N/,
    ],
    [
      'header length zero',
      () => {
        const f = fixtureFiles('h40-hf');
        const { header, data } = splitSafetensors(f['model.safetensors'] as Uint8Array);
        f['model.safetensors'] = joinSafetensors(header, data, 0);
        return f;
      },
      /model\.safetensors: bad header length 0/,
    ],
    [
      'header not JSON',
      () => {
        const f = fixtureFiles('h40-hf');
        const b = new Uint8Array(f['model.safetensors'] as Uint8Array);
        b[8] = 0x7a;
        f['model.safetensors'] = b;
        return f;
      },
      /model\.safetensors: the header is not valid JSON/,
    ],
    [
      'offsets out of range',
      () =>
        withHeader((h) => {
          h[FC1].data_offsets[1] += 1e6;
        }),
      new RegExp(`tensor '${FC1}': data_offsets .* run past the end`),
    ],
    [
      'offsets not matching the shape',
      () =>
        withHeader((h) => {
          h[FC1].data_offsets[1] -= 4;
        }),
      new RegExp(`tensor '${FC1}': data_offsets .* hold 15996 bytes, but F32 \\[100,40\\] needs 16000`),
    ],
    [
      'overlapping tensors',
      () =>
        withHeader((h) => {
          h['classifier.bias'].data_offsets = [...h['classifier.weight'].data_offsets];
          h['classifier.bias'].shape = h['classifier.weight'].shape;
        }),
      /model\.safetensors: tensor 'classifier\.(weight|bias)' \(data_offsets \[\d+, \d+\]\) overlaps the tensor before it/,
    ],
    [
      'unknown dtype',
      () =>
        withHeader((h) => {
          h[FC1].dtype = 'F33';
        }),
      new RegExp(`tensor '${FC1}': unknown dtype 'F33'`),
    ],
    [
      'integer dtype',
      () =>
        withHeader((h) => {
          h[FC1].dtype = 'I32';
        }),
      new RegExp(`tensor '${FC1}': dtype I32 is not a type vit-wasm can load`),
    ],
    [
      'negative shape',
      () =>
        withHeader((h) => {
          h[FC1].shape = [-100, -40];
        }),
      new RegExp(`tensor '${FC1}': bad shape`),
    ],
    [
      'missing tensor',
      () =>
        withTensors((h) => {
          delete h['vit.layernorm.weight'];
        }),
      /model\.safetensors: missing tensor 'vit\.layernorm\.weight'/,
    ],
    [
      'a hole between tensors',
      () =>
        withHeader((h) => {
          delete h['vit.layernorm.weight'];
        }),
      /model\.safetensors: tensor '.+' starts at \d+, leaving 160 unaccounted bytes after \d+ \(data_offsets must be contiguous from 0\)/,
    ],
    [
      'trailing bytes after the last tensor',
      () =>
        withHeader(
          () => {},
          (d) => new Uint8Array([...d, 0, 0, 0, 0]),
        ),
      /model\.safetensors: 4 trailing bytes after the last tensor/,
    ],
    [
      '__metadata__ not strings',
      () =>
        withHeader((h) => {
          (h as Record<string, unknown>).__metadata__ = { format: { deep: 1 } };
        }),
      /model\.safetensors: __metadata__ must be an object of strings/,
    ],
    [
      'a dim too large for wasm32, in a 0-byte tensor',
      () =>
        withHeader((h) => {
          h[FC1].shape = [2 ** 32, 0];
          h[FC1].data_offsets = [h[FC1].data_offsets[0], h[FC1].data_offsets[0]];
        }),
      new RegExp(`tensor '${FC1}': shape \\[4294967296,0\\] has a dim over 2147483647`),
    ],
    [
      'a 0-byte classifier of 4294967295 classes, no labels in config.json',
      () => zeroByteClassifier(2 ** 32 - 1),
      /tensor 'classifier\.weight': shape \[4294967295,0\] has a dim over 2147483647/,
    ],
    [
      'a 0-byte classifier of 2,000,000,000 classes, no labels in config.json',
      () => zeroByteClassifier(2e9),
      /tensor 'classifier\.weight' has shape \[2000000000,0\], expected \[num_labels, 40\]/,
    ],
    [
      'a 0-byte patch embedding (hidden size 0)',
      () =>
        withTensors(
          (h) => {
            h['vit.embeddings.patch_embeddings.projection.weight'].shape = [0, 3, 5, 5];
          },
          { 'vit.embeddings.patch_embeddings.projection.weight': new Uint8Array(0) },
        ),
      /tensor 'vit\.embeddings\.patch_embeddings\.projection\.weight' has shape \[0,3,5,5\], giving hidden_size 0/,
    ],
    [
      'an extra tensor naming a higher layer',
      () =>
        withTensors(
          (h) => {
            h['vit.encoder.layer.7.foo'] = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
          },
          { 'vit.encoder.layer.7.foo': new Uint8Array(4) },
        ),
      /missing tensor 'vit\.encoder\.layer\.2\.layernorm_before\.weight' of layer 2: the layers are counted up to 7 from tensor 'vit\.encoder\.layer\.7\.foo'/,
    ],
    [
      'a NaN weight',
      () =>
        withHeader(
          () => {},
          (d) => {
            const out = new Uint8Array(d);
            new DataView(out.buffer).setFloat32(40, Number.NaN, true);
            return out;
          },
        ),
      /model\.safetensors: tensor '.+' holds NaN at element \d+: weights must be finite/,
    ],
    [
      'an infinite weight',
      () =>
        withHeader(
          () => {},
          (d) => {
            const out = new Uint8Array(d);
            new DataView(out.buffer).setFloat32(out.length - 4, -Infinity, true);
            return out;
          },
        ),
      /model\.safetensors: tensor '.+' holds -Infinity at element \d+: weights must be finite/,
    ],
    [
      'mis-shaped tensor',
      () =>
        withHeader((h) => {
          h[FC1].shape = [40, 100];
        }),
      new RegExp(
        `config\\.json says intermediate_size=100, but .*model\\.safetensors tensor '${FC1}' has shape \\[40,100\\]`,
      ),
    ],
    [
      'mis-shaped bias',
      () =>
        withHeader((h) => {
          h['vit.layernorm.bias'].shape = [4, 10];
        }),
      /tensor 'vit\.layernorm\.bias' has shape \[4,10\], expected \[40\]/,
    ],
    [
      'not a ViT',
      () =>
        withHeader((h) => {
          for (const k of Object.keys(h))
            if (k !== '__metadata__') {
              h[`x.${k}`] = h[k];
              delete h[k];
            }
        }),
      /model\.safetensors: not a ViT checkpoint vit-wasm recognises/,
    ],
  ];
  test.each(cases)('%s', async (_, files, message) => {
    await expect(loadModel(files())).rejects.toThrow(message);
  });

  // A writer pads the header with spaces; a length a few bytes short still parses as JSON, and
  // without the exact-tiling check every tensor was then read from the wrong place.
  test.each([1, 2, 3, 4, 5, 6, 7])('header length %i bytes short of its padding', async (short) => {
    const files = fixtureFiles('h40-hf');
    const { header, data } = splitSafetensors(files['model.safetensors'] as Uint8Array);
    const json = `${JSON.stringify(header)}        `;
    const h = new TextEncoder().encode(json);
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length - short), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    files['model.safetensors'] = out;
    await expect(loadModel(files)).rejects.toThrow(
      new RegExp(`model\\.safetensors: ${short} trailing bytes after the last tensor`),
    );
  });

  test('an extra tensor with its own bytes is named', async () => {
    const files = withHeader(
      (h) => {
        const end = Math.max(
          ...Object.values(h)
            .filter((v) => v.data_offsets)
            .map((v) => v.data_offsets[1]),
        );
        h['vit.encoder.layer.0.ls1.gamma'] = { dtype: 'F32', shape: [40], data_offsets: [end, end + 160] };
      },
      (d) => {
        const out = new Uint8Array(d.length + 160);
        out.set(d);
        return out;
      },
    );
    await expect(loadModel(files)).rejects.toThrow(/unexpected tensor\(s\) 'vit\.encoder\.layer\.0\.ls1\.gamma'/);
  });
});

describe('config and weights', () => {
  const cases: [string, () => Files, RegExp][] = [
    [
      'config missing',
      () => {
        const f = fixtureFiles('h40-hf');
        delete f['config.json'];
        return f;
      },
      /config\.json: no such file/,
    ],
    [
      'config not JSON',
      () => ({ ...fixtureFiles('h40-hf'), 'config.json': '{"hidden_size": 40,' }),
      /config\.json is not valid JSON/,
    ],
    [
      'hidden_size disagrees',
      () =>
        withConfig((c) => {
          c.hidden_size = 48;
        }),
      /config\.json says hidden_size=48, but .*model\.safetensors tensor 'vit\.embeddings\.patch_embeddings\.projection\.weight' has shape \[40,3,5,5\]/,
    ],
    [
      'num_hidden_layers disagrees',
      () =>
        withConfig((c) => {
          c.num_hidden_layers = 3;
        }),
      /config\.json says num_hidden_layers=3/,
    ],
    [
      'num_labels disagrees',
      () =>
        withConfig((c) => {
          c.num_labels = 9;
          delete c.id2label;
        }),
      /config\.json says num_labels=9, but .* 'classifier\.weight'/,
    ],
    [
      'id2label disagrees',
      () =>
        withConfig((c) => {
          c.id2label = { 0: 'a', 1: 'b' };
        }),
      /config\.json: id2label has 2 labels, but .* 'classifier\.weight' has 7 outputs/,
    ],
    [
      'image size not divisible by patch size',
      () =>
        withConfig((c) => {
          c.image_size = 21;
        }),
      /config\.json: image_size 21x21 is not divisible by patch_size 5/,
    ],
    [
      'image size disagrees with position embeddings',
      () =>
        withConfig((c) => {
          c.image_size = 25;
        }),
      /image_size 25x25 with patch_size 5 gives 25 patches \+ cls = 26 positions, but .* 'vit\.embeddings\.position_embeddings' has shape \[1,21,40\]/,
    ],
    [
      'heads missing',
      () =>
        withConfig((c) => {
          delete c.num_attention_heads;
        }),
      /config\.json: num_attention_heads is missing/,
    ],
    [
      'heads do not divide hidden',
      () =>
        withConfig((c) => {
          c.num_attention_heads = 3;
        }),
      /hidden_size 40 is not divisible by num_attention_heads 3/,
    ],
    [
      'bad field type',
      () =>
        withConfig((c) => {
          c.patch_size = '5';
        }),
      /config\.json: patch_size must be a positive integer, got "5"/,
    ],
    [
      'unsupported activation',
      () =>
        withConfig((c) => {
          c.hidden_act = 'gelu_10';
        }),
      /config\.json: hidden_act "gelu_10" is not supported/,
    ],
    [
      'qkv_bias says true, weights have none',
      () =>
        withConfig((c) => {
          c.qkv_bias = true;
        }, 'h48-hf'),
      /config\.json says qkv_bias=true, but .* has no tensor 'vit\.encoder\.layer\.0\.attention\.attention\.query\.bias'/,
    ],
    [
      'qkv_bias says false, weights have them',
      () =>
        withConfig((c) => {
          c.qkv_bias = false;
        }),
      /unexpected tensor\(s\) 'vit\.encoder\.layer\.0\.attention\.attention\.query\.bias'/,
    ],
    [
      'bad layer_norm_eps',
      () =>
        withConfig((c) => {
          c.layer_norm_eps = 'tiny';
        }),
      /config\.json: layer_norm_eps must be a finite number > 0, got "tiny"/,
    ],
    [
      'layer_norm_eps 1e999 (Infinity once parsed)',
      () => {
        const f = withConfig((c) => {
          c.layer_norm_eps = 'INF';
        });
        f['config.json'] = (f['config.json'] as string).replace('"INF"', '1e999');
        return f;
      },
      /config\.json: layer_norm_eps must be a finite number > 0, got Infinity/,
    ],
    ...([0, -1e-6] as const).map((eps): [string, () => Files, RegExp] => [
      `layer_norm_eps ${eps}`,
      () =>
        withConfig((c) => {
          c.layer_norm_eps = eps;
        }),
      /config\.json: layer_norm_eps must be a finite number > 0/,
    ]),
    ...(['00', ' 0', '0x0', '1.0', '-0'] as const).map((key): [string, () => Files, RegExp] => [
      `id2label key ${JSON.stringify(key)}`,
      () =>
        withConfig((c) => {
          const labels = c.id2label as Record<string, string>;
          labels[key] = labels['0'];
          delete labels['0'];
        }),
      new RegExp(`config\\.json: id2label key ${JSON.stringify(key).replace(/[.]/g, '\\.')} is not a class index 0…6`),
    ]),
    [
      'no weights file',
      () => {
        const f = fixtureFiles('h40-hf');
        delete f['model.safetensors'];
        return f;
      },
      /no weights file \(looked for model\.safetensors, model\.safetensors\.index\.json, open_clip_model\.safetensors, pytorch_model\.bin/,
    ],
    [
      'preprocessor with bad size',
      () => ({ ...fixtureFiles('h40-hf'), 'preprocessor_config.json': '{"size": {"height": 224, "width": 224}}' }),
      /preprocessor_config\.json: images come out at 224x224 \(size\), but the model's image_size is 20x25/,
    ],
    [
      'preprocessor with bad resample',
      () => ({ ...fixtureFiles('h40-hf'), 'preprocessor_config.json': '{"resample": 0}' }),
      /preprocessor_config\.json: resample 0 is not supported/,
    ],
    [
      'preprocessor mean of the wrong length',
      () => ({ ...fixtureFiles('h40-hf'), 'preprocessor_config.json': '{"image_mean": [0.5, 0.5]}' }),
      /image_mean has 2 values but the model has 3 channel/,
    ],
  ];
  test.each(cases)('%s', async (_, files, message) => {
    await expect(loadModel(files())).rejects.toThrow(message);
  });

  test('sharded index naming a tensor its shard lacks', async () => {
    const files = fixtureFiles('h33-hf');
    const index = JSON.parse(files['model.safetensors.index.json'] as string);
    const other = index.weight_map['vit.layernorm.weight'].includes('00001')
      ? 'model-00002-of-00002.safetensors'
      : 'model-00001-of-00002.safetensors';
    index.weight_map['vit.layernorm.weight'] = other;
    files['model.safetensors.index.json'] = JSON.stringify(index);
    await expect(loadModel(files)).rejects.toThrow(
      new RegExp(
        `index\\.json puts tensor 'vit\\.layernorm\\.weight' in ${other.replace(/\./g, '\\.')}, which does not contain it`,
      ),
    );
  });

  test('sharded index naming a missing shard', async () => {
    const files = fixtureFiles('h33-hf');
    delete files['model-00002-of-00002.safetensors'];
    await expect(loadModel(files)).rejects.toThrow(/model-00002-of-00002\.safetensors: no such file/);
  });

  test('more classes than limits.maxLabels', async () => {
    await expect(loadModel(fixtureFiles('h40-hf'), { limits: { maxLabels: 5 } })).rejects.toThrow(
      /model\.safetensors: tensor 'classifier\.weight' has 7 classes, which is over the limit of 5 \(limits\.maxLabels\)/,
    );
    await expect(loadModel(fixtureFiles('h40-hf'), { limits: { maxLabels: 0 } })).rejects.toThrow(
      /limits\.maxLabels must be a positive integer or Infinity, got 0/,
    );
    await expect(loadModel(fixtureFiles('h40-hf'), { limits: { maxPixel: 5 } as never })).rejects.toThrow(
      /limits: unknown limit 'maxPixel'/,
    );
  });

  test('config.json nested deeper than limits.maxJsonDepth', async () => {
    // 100,000 deep: parses, but once overflowed the stack when posted to the workers
    const files = fixtureFiles('h40-hf');
    files['config.json'] = (files['config.json'] as string).replace(
      /^\{/,
      `{"extra": ${'['.repeat(1e5)}${']'.repeat(1e5)},`,
    );
    await expect(loadModel(files)).rejects.toThrow(
      /config\.json: JSON nested more than 64 levels deep is over the limit of 64 \(limits\.maxJsonDepth\)/,
    );
  });

  test('a safetensors shape nested 100,000 deep: refused by the depth limit, not a stack overflow', async () => {
    const files = fixtureFiles('h40-hf');
    const { header, data } = splitSafetensors(files['model.safetensors'] as Uint8Array);
    const text = JSON.stringify(header).replace(
      JSON.stringify(header[FC1].shape),
      `${'['.repeat(1e5)}${']'.repeat(1e5)}`,
    );
    // the header's text as it is (JSON.stringify of the parsed shape would itself overflow)
    const h = new TextEncoder().encode(text),
      bytes = new Uint8Array(8 + h.length + data.length);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(h.length), true);
    bytes.set(h, 8);
    bytes.set(data, 8 + h.length);
    files['model.safetensors'] = bytes;
    await expect(loadModel(files)).rejects.toThrow(
      /model\.safetensors: the safetensors header: JSON nested more than 64 levels deep is over the limit of 64 \(limits\.maxJsonDepth\)/,
    );
  });

  test('config.json larger than limits.maxJsonBytes', async () => {
    const files = withConfig((c) => {
      c.extra = 'x'.repeat(2000);
    });
    await expect(loadModel(files, { limits: { maxJsonBytes: 1000 } })).rejects.toThrow(
      /config\.json: [\d,]+ bytes is over the limit of 1,000 \(limits\.maxJsonBytes\)/,
    );
  });

  test.each(['..', '.', ''])('sharded index naming the shard %j', async (name) => {
    const files = fixtureFiles('h33-hf');
    const index = JSON.parse(files['model.safetensors.index.json'] as string);
    index.weight_map['vit.layernorm.weight'] = name;
    files['model.safetensors.index.json'] = JSON.stringify(index);
    await expect(loadModel(files)).rejects.toThrow(
      `model.safetensors.index.json: bad shard name ${JSON.stringify(name)}`,
    );
  });

  test('model directory that does not exist', async () => {
    await expect(loadModel('/nonexistent/model')).rejects.toThrow(
      /model directory \/nonexistent\/model does not exist/,
    );
  });
});

describe('bad calls', () => {
  test('threads past the limit are refused, saying the limit', async () => {
    await expect(loadModel(path.join(MODELS, 'h40-hf'), { threads: 1024 })).rejects.toThrow(
      'vit-wasm: threads 1024 is over the limit of 64 workers',
    );
  });

  test('forward checks length, batch and finiteness; dispose ends the model', async () => {
    const model = await loadModel(path.join(MODELS, 'h40-hf'));
    const n = 3 * 20 * 25;
    await expect(model.forward(new Float32Array(n - 1), 1)).rejects.toThrow(
      /got 1499 floats, expected batch 1 × 3×20×25 = 1500/,
    );
    await expect(model.forward(new Float32Array(n), 0)).rejects.toThrow(/batch must be a positive integer/);
    const nan = new Float32Array(n);
    nan[7] = NaN;
    await expect(model.forward(nan, 1)).rejects.toThrow(/pixel 7 is NaN/);
    await expect(model.classify(path.join(FIXTURES, 'images/chelsea.png'), { topK: 0 })).rejects.toThrow(
      /topK must be a positive integer/,
    );
    expect((await model.forward(new Float32Array(n), 1)).length).toBe(7);
    await model.dispose();
    await expect(model.forward(new Float32Array(n), 1)).rejects.toThrow(/disposed/);
  });

  test('unreadable images', async () => {
    const model = await loadModel(path.join(MODELS, 'h40-hf'));
    const png = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/chelsea.png')));
    const jpg = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/rocket.jpg')));
    await expect(model.classify('/nonexistent.png')).rejects.toThrow(
      /\/nonexistent\.png: cannot read image: no such file/,
    );
    await expect(model.classify(path.join(MODELS, 'h40-hf/config.json'))).rejects.toThrow(
      /config\.json: cannot read image: not a PNG or JPEG file/,
    );
    await expect(model.classify(new Uint8Array(0))).rejects.toThrow(/cannot read image: the file is empty/);
    await expect(model.classify(png.subarray(0, 5000))).rejects.toThrow(/cannot read image: truncated PNG/);
    await expect(model.classify(jpg.subarray(0, 300))).rejects.toThrow(/cannot read image: corrupt JPEG/);
    await expect(model.classify({ data: new Uint8ClampedArray(10), width: 2, height: 2 })).rejects.toThrow(
      /10 bytes do not match 2x2/,
    );
    await model.dispose();
  });
});

/** A PNG of chunks [type, data], with CRCs. */
function pngOf(chunks: [string, Uint8Array][]): Uint8Array {
  const parts: Buffer[] = [Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])];
  for (const [type, data] of chunks) {
    const c = Buffer.alloc(12 + data.length);
    c.writeUInt32BE(data.length, 0);
    c.write(type, 4, 'latin1');
    c.set(data, 8);
    c.writeUInt32BE(zlib.crc32(c.subarray(4, 8 + data.length)), 8 + data.length);
    parts.push(c);
  }
  return new Uint8Array(Buffer.concat(parts));
}

/** IHDR for an 8-bit RGB (color 2) or grey (0) image. */
function ihdr(width: number, height: number, color = 2): Uint8Array {
  const b = Buffer.alloc(13);
  b.writeUInt32BE(width, 0);
  b.writeUInt32BE(height, 4);
  b[8] = 8;
  b[9] = color;
  return new Uint8Array(b);
}

/** An RGB PNG whose scanlines (filter byte 0 + pixels) are cut `cut` bytes short. */
function pngShort(width: number, height: number, cut: number): Uint8Array {
  const raw = new Uint8Array(height * (1 + 3 * width)).fill(200);
  for (let y = 0; y < height; y++) raw[y * (1 + 3 * width)] = 0;
  return pngOf([
    ['IHDR', ihdr(width, height)],
    ['IDAT', new Uint8Array(zlib.deflateSync(raw.subarray(0, raw.length - cut)))],
    ['IEND', new Uint8Array(0)],
  ]);
}

describe('hostile images', () => {
  let model: Awaited<ReturnType<typeof loadModel>>;
  beforeAll(async () => {
    model = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 1 });
  });
  afterAll(() => model.dispose());

  test('a decompression bomb is refused from its header, naming the limit', async () => {
    // IHDR says 20000x20000; no pixel is decoded, so the IDAT can be anything
    const bomb = pngOf([
      ['IHDR', ihdr(20000, 20000)],
      ['IDAT', new Uint8Array(zlib.deflateSync(Buffer.alloc(1000)))],
      ['IEND', new Uint8Array(0)],
    ]);
    await expect(model.classify(bomb)).rejects.toThrow(
      /image: the image is 20000x20000 = 400,000,000 pixels, which is over the limit of 89,478,485 \(limits\.maxImagePixels\); .*--limit maxImagePixels=N/,
    );
    const wide = pngOf([
      ['IHDR', ihdr(2147483647, 1, 0)],
      ['IDAT', new Uint8Array(zlib.deflateSync(Buffer.alloc(10)))],
      ['IEND', new Uint8Array(0)],
    ]);
    expect(wide.length).toBeLessThan(80);
    await expect(model.classify(wide)).rejects.toThrow(/2147483647x1 = 2,147,483,647 pixels, which is over the limit/);
  });

  test('the pixel limit can be lowered or raised per model', async () => {
    const png = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/chelsea.png')));
    const small = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 1, limits: { maxImagePixels: 1000 } });
    try {
      await expect(small.classify(png)).rejects.toThrow(/451x300 = 135,300 pixels, which is over the limit of 1,000/);
    } finally {
      await small.dispose();
    }
    expect((await model.classify(png)).length).toBe(5);
  });

  test('a JPEG whose frame header declares too many pixels', async () => {
    const jpg = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/rocket.jpg')));
    // rewrite the SOF0 frame size to 60000x60000
    const b = new Uint8Array(jpg);
    let p = 2;
    while (!(b[p + 1] >= 0xc0 && b[p + 1] <= 0xc2)) p += 2 + ((b[p + 2] << 8) | b[p + 3]);
    b.set([0xea, 0x60, 0xea, 0x60], p + 5);
    await expect(model.classify(b)).rejects.toThrow(/60000x60000 = 3,600,000,000 pixels, which is over the limit/);
  });

  test('a JPEG header declaring 9000x9000 over no scan data fails at once, small (not a 2.4 GB decode)', async () => {
    const jpg = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/rocket.jpg')));
    const b = new Uint8Array(jpg);
    let p = 2;
    while (!(b[p + 1] >= 0xc0 && b[p + 1] <= 0xc2)) p += 2 + ((b[p + 2] << 8) | b[p + 3]);
    b.set([0x23, 0x28, 0x23, 0x28], p + 5); // 9000x9000, three components unsubsampled: 3 × 1125² blocks
    let sos = p;
    while (b[sos + 1] !== 0xda) sos += 2 + ((b[sos + 2] << 8) | b[sos + 3]);
    const empty = new Uint8Array([...b.subarray(0, sos + 20), 0xff, 0xd9]);
    await expect(model.classify(empty)).rejects.toThrow(
      /truncated or corrupt JPEG: its 9000x9000 frame needs at least 474,610 bytes of scan data \(a bit per 8×8 block\), it holds 22/,
    );
  });

  test('a JPEG cut short is refused as truncated, as Pillow refuses it', async () => {
    const jpg = new Uint8Array(readFileSync(path.join(FIXTURES, 'images/rocket.jpg')));
    await expect(model.classify(jpg.subarray(0, Math.floor(jpg.length * 0.8)))).rejects.toThrow(
      /cannot read image: truncated JPEG \(its data ends before the image does\)/,
    );
  });

  test.each([
    [0, 0],
    [16, 0],
    [0, 16],
  ])('a %ix%i PNG has no pixels', async (w, h) => {
    const png = pngOf([
      ['IHDR', ihdr(w, h)],
      ['IDAT', new Uint8Array(zlib.deflateSync(Buffer.alloc(0)))],
      ['IEND', new Uint8Array(0)],
    ]);
    await expect(model.classify(png)).rejects.toThrow(`cannot read image: it has no pixels (${w}x${h})`);
  });

  test.each([1, 5, 47])('a PNG whose pixel data is %i bytes short is refused, not zero-filled', async (cut) => {
    expect((await model.classify(pngShort(16, 16, 0))).length).toBe(5);
    await expect(model.classify(pngShort(16, 16, cut))).rejects.toThrow(
      `truncated PNG: its pixel data inflates to ${16 * 49 - cut} bytes, a 16x16 image needs ${16 * 49}`,
    );
  });

  test('a zlib bomb in a small image: refused without inflating it all', async () => {
    // 16x16 RGB needs 784 bytes; this IDAT inflates to 200 MB
    const png = pngOf([
      ['IHDR', ihdr(16, 16)],
      ['IDAT', new Uint8Array(zlib.deflateSync(Buffer.alloc(200 * 2 ** 20), { level: 9 }))],
      ['IEND', new Uint8Array(0)],
    ]);
    expect(png.length).toBeLessThan(300_000);
    await expect(model.classify(png)).rejects.toThrow(
      'corrupt PNG: its pixel data inflates to more than the 784 bytes a 16x16 image needs',
    );
  });

  test('image files: over the byte limit, a directory, a device, a FIFO', async () => {
    const png = path.join(FIXTURES, 'images/chelsea.png');
    const small = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 1, limits: { maxImageBytes: 1000 } });
    try {
      await expect(small.classify(png)).rejects.toThrow(
        /chelsea\.png: the image is [\d,]+ bytes, which is over the limit of 1,000 \(limits\.maxImageBytes\)/,
      );
      await expect(small.classify(new Uint8Array(readFileSync(png)))).rejects.toThrow(
        /image: [\d,]+ bytes of image is over the limit of 1,000/,
      );
    } finally {
      await small.dispose();
    }
    await expect(model.classify(FIXTURES)).rejects.toThrow(/cannot read image: it is a directory, not a regular file/);
    await expect(model.classify('/dev/zero')).rejects.toThrow(
      '/dev/zero: cannot read image: it is a device, not a regular file',
    );
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-fifo-'));
    const fifo = path.join(dir, 'image.png');
    execFileSync('mkfifo', [fifo]);
    try {
      // no writer ever opens it: a blocking open or read would hang here
      await expect(model.classify(fifo)).rejects.toThrow(/image\.png: cannot read image: it is a FIFO \(named pipe\)/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });

  test('a FIFO as a shard or config is refused by name', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'vit-wasm-fifo-'));
    try {
      writeFileSync(path.join(dir, 'config.json'), readFileSync(path.join(MODELS, 'h40-hf/config.json')));
      execFileSync('mkfifo', [path.join(dir, 'model.safetensors')]);
      await expect(loadModel(dir)).rejects.toThrow(/model\.safetensors: cannot read model file: it is a FIFO/);
      rmSync(path.join(dir, 'config.json'));
      execFileSync('mkfifo', [path.join(dir, 'config.json')]);
      await expect(loadModel(dir)).rejects.toThrow(/config\.json: cannot read model file: it is a FIFO/);
    } finally {
      rmSync(dir, { recursive: true });
    }
  });
});

describe('no NaN as an answer', () => {
  const n = 3 * 20 * 25;
  test('inputs near the f32 maximum overflow: an Error naming the cause, unless allowed', async () => {
    const big = new Float32Array(n).fill(3e38);
    const model = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 1 });
    try {
      await expect(model.forward(big)).rejects.toThrow(
        /forward: the model produced (NaN|-?Infinity) \(output \d+\): the input holds values as large as 3\.00e\+38 .*allowNonFinite: true/,
      );
      expect(Array.from(await model.forward(new Float32Array(n))).every(Number.isFinite)).toBe(true);
    } finally {
      await model.dispose();
    }
    const allowing = await loadModel(path.join(MODELS, 'h40-hf'), { threads: 1, allowNonFinite: true });
    try {
      expect(Array.from(await allowing.forward(big)).some((v) => !Number.isFinite(v))).toBe(true);
    } finally {
      await allowing.dispose();
    }
  });

  test.each([
    [{ image_mean: [1e38, 1e38, 1e38] }, /classify|forward/, /image_mean\/image_std scale pixels by up to 1\.00e\+38/],
    [{ rescale_factor: 1e38 }, /preprocessing/, /turned pixel 0 into -?Infinity: .*rescale_factor.*overflow f32/],
  ])('preprocessing %j: classify rejects instead of returning NaN scores', async (pre, _, message) => {
    const files = fixtureFiles('h40-hf');
    files['preprocessor_config.json'] = JSON.stringify(pre);
    const model = await loadModel(files, { threads: 1 });
    try {
      await expect(model.classify(path.join(FIXTURES, 'images/chelsea.png'))).rejects.toThrow(message);
    } finally {
      await model.dispose();
    }
  });
});
