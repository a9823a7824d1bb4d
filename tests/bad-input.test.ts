// Bad input must fail with an Error naming the file and the tensor or field: never a trap, a hang
// or silent garbage.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { FIXTURES, MODELS } from './helpers.js';

type Files = Record<string, Uint8Array | string>;
type Header = Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;

function fixtureFiles(name: string): Files {
  const dir = path.join(MODELS, name),
    out: Files = {};
  for (const f of readdirSync(dir))
    out[f] = f.endsWith('.json')
      ? readFileSync(path.join(dir, f), 'utf8')
      : new Uint8Array(readFileSync(path.join(dir, f)));
  return out;
}

function splitSafetensors(bytes: Uint8Array): { header: Header; data: Uint8Array } {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

function joinSafetensors(header: unknown, data: Uint8Array, lengthOverride?: number): Uint8Array {
  const h = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
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
        f['model.safetensors'] = joinSafetensors(header, data, 1e9);
        return f;
      },
      /model\.safetensors: bad header length 1000000000/,
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
      /model\.safetensors: tensors 'classifier\.(weight|bias)' and 'classifier\.(weight|bias)' overlap/,
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
      new RegExp(`tensor '${FC1}': dtype I32 is not a float type`),
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
        withHeader((h) => {
          delete h['vit.layernorm.weight'];
        }),
      /model\.safetensors: missing tensor 'vit\.layernorm\.weight'/,
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
      /image_size 25x25 with patch_size 5 gives 25 patches \+ cls = 26 tokens, but .* 'vit\.embeddings\.position_embeddings' has shape \[1,21,40\]/,
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
          c.hidden_act = 'gelu_new';
        }),
      /config\.json: hidden_act "gelu_new" is not supported/,
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
      /no model\.safetensors or model\.safetensors\.index\.json/,
    ],
    [
      'preprocessor with bad size',
      () => ({ ...fixtureFiles('h40-hf'), 'preprocessor_config.json': '{"size": {"height": 224, "width": 224}}' }),
      /preprocessor_config\.json: size 224x224 differs from the model's image_size 20x25/,
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
    await expect(model.classify(png.subarray(0, 5000))).rejects.toThrow(/cannot read image: corrupt PNG/);
    await expect(model.classify(jpg.subarray(0, 300))).rejects.toThrow(/cannot read image: corrupt JPEG/);
    await expect(model.classify({ data: new Uint8ClampedArray(10), width: 2, height: 2 })).rejects.toThrow(
      /10 bytes do not match 2x2/,
    );
    await model.dispose();
  });
});
