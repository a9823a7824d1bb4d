// Seeded hostile inputs for the fuzz suite (tests/fuzz.test.ts). Each case is a pure function of
// (kind, seed), so a failing case is replayed from those two values alone: keep them in
// regressions.json. Plain JavaScript so the child process runs it with no build step.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { zipSync } from 'fflate';

const FIXTURES = fileURLToPath(new URL('../fixtures/', import.meta.url));
export const KINDS = [
  'safetensors',
  'bytes',
  'config',
  'preprocessor',
  'image',
  'api',
  'faults',
  'families',
  'pytorch',
  'text',
  'tokenizer',
];

/** mulberry32: a small seeded PRNG, good enough to pick mutations. */
export function rng(seed) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n) => Math.floor(next() * n);
  return { next, int, pick: (xs) => xs[int(xs.length)], chance: (p) => next() < p };
}

export function fixtureFiles(name) {
  // a name in models/, or a path under tests/fixtures/ ('dinov2/h40-dinov2')
  const dir = path.join(FIXTURES, name.includes('/') ? '' : 'models', name),
    out = {};
  for (const f of readdirSync(dir)) {
    if (f === 'expected.json' || f.endsWith('.f32') || f === 'trace.safetensors') continue;
    out[f] = f.endsWith('.json')
      ? readFileSync(path.join(dir, f), 'utf8')
      : new Uint8Array(readFileSync(path.join(dir, f)));
  }
  return out;
}

function split(bytes) {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n))), data: bytes.subarray(8 + n) };
}

function join(headerText, data, lengthOverride) {
  const h = new TextEncoder().encode(headerText);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthOverride ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

/** Values a hostile JSON field might hold. */
function wildValue(r) {
  return r.pick([
    () => 0,
    () => -1,
    () => 1,
    () => 2 ** 31,
    () => 2 ** 32 - 1,
    () => 2 ** 53 + 2,
    () => 1e308,
    () => 1.5,
    () => -0.000001,
    () => r.int(100),
    () => r.int(1e9),
    () => '40',
    () => '',
    () => null,
    () => true,
    () => [],
    () => [r.int(50), r.int(50)],
    () => [0, 0, 0, 0, 0],
    () => ({}),
    () => ({ height: r.int(100), width: r.int(100) }),
    () => 'x'.repeat(r.int(1000)),
  ])();
}

/** Serialises JSON, with tokens JSON.stringify cannot produce (1e999, deep nesting) spliced in. */
function withRawTokens(obj, r) {
  let text = JSON.stringify(obj);
  if (r.chance(0.1)) text = text.replace(/^\{/, `{"deep": ${'['.repeat(200)}${']'.repeat(200)},`);
  if (r.chance(0.1))
    text = text.replace(/"layer_norm_eps":[^,}]+/, `"layer_norm_eps": ${r.pick(['1e999', '-1e999', '0', '5e-324'])}`);
  if (r.chance(0.05)) text = text.slice(0, r.int(text.length));
  return text;
}

const TENSOR_FIELDS = ['dtype', 'shape', 'data_offsets'];

/** A checkpoint whose safetensors header (or its length field) is mutated. */
function safetensorsCase(r) {
  const name = r.pick(['h40-hf', 'h24-timm', 'h38-torchvision', 'h33-hf']);
  const files = fixtureFiles(name);
  const file =
    name === 'h33-hf' ? r.pick(Object.keys(files).filter((f) => f.endsWith('.safetensors'))) : 'model.safetensors';
  const { header, data } = split(files[file]);
  let lengthOverride;
  let d = data;
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const names = Object.keys(header).filter((k) => k !== '__metadata__' && header[k]);
    if (!names.length) break;
    const t = r.pick(names);
    switch (r.int(10)) {
      case 0:
        header[t].dtype = r.pick(['F32', 'F16', 'BF16', 'F64', 'I8', 'U8', 'F8_E4M3', 'F33', '', 5]);
        break;
      case 1:
        header[t].shape = r.pick([
          [],
          [0],
          [r.int(100)],
          [2 ** 32 - 1, 0],
          [1e8, 0],
          [-1],
          [1.5],
          ['4'],
          [[1]],
          null,
          [...header[t].shape].reverse(),
          header[t].shape.concat([1]),
        ]);
        break;
      case 2: {
        const o = header[t].data_offsets;
        header[t].data_offsets = r.pick([
          [o[0] + r.int(9) - 4, o[1]],
          [o[0], o[1] + r.int(9) - 4],
          [o[1], o[0]],
          [0, o[1] - o[0]],
          [-4, o[1]],
          [o[0], 2 ** 53],
          [o[0]],
          null,
          [o[0] + 0.5, o[1]],
        ]);
        break;
      }
      case 3:
        delete header[t];
        break;
      case 4:
        header[`${t}.extra`] = { ...header[t] };
        break;
      case 5: {
        const m = /\.(\d+)\./.exec(t);
        header[m ? t.replace(/\.(\d+)\./, `.${Number(m[1]) + 1 + r.int(20)}.`) : `${t}2`] = header[t];
        delete header[t];
        break;
      }
      case 6:
        header.__metadata__ = r.pick([{ format: 'pt' }, { a: 1 }, [], 'x', null, { a: { b: 'c' } }]);
        break;
      case 7:
        lengthOverride = JSON.stringify(header).length + r.int(17) - 8;
        break;
      case 8:
        d = r.chance(0.5)
          ? d.subarray(0, d.length - 1 - r.int(64))
          : new Uint8Array([...d, ...new Uint8Array(1 + r.int(16))]);
        break;
      default:
        header[t][r.pick(TENSOR_FIELDS)] = wildValue(r);
    }
  }
  files[file] = join(JSON.stringify(header), d, lengthOverride);
  return { kind: 'load', files };
}

/** A checkpoint with random bytes of its safetensors file flipped, or cut short. */
function bytesCase(r) {
  const files = fixtureFiles(r.pick(['h40-hf', 'h24-timm']));
  const b = new Uint8Array(files['model.safetensors']);
  const n = Number(new DataView(b.buffer).getBigUint64(0, true));
  if (r.chance(0.3)) files['model.safetensors'] = b.subarray(0, r.int(b.length));
  else {
    const flips = 1 + r.int(8);
    for (let i = 0; i < flips; i++) {
      // mostly in the length field and the header, where a flip changes structure
      const at = r.chance(0.8) ? r.int(8 + n) : 8 + n + r.int(b.length - 8 - n);
      b[at] = r.chance(0.5) ? b[at] ^ (1 << r.int(8)) : r.int(256);
    }
    files['model.safetensors'] = b;
  }
  return { kind: 'load', files };
}

// pickle opcodes a hostile data.pkl is made of: the ones the unpickler reads, and others
const PICKLE_OPS = [
  0x80, 0x95, 0x2e, 0x28, 0x4e, 0x88, 0x89, 0x4b, 0x4d, 0x4a, 0x8a, 0x47, 0x58, 0x8c, 0x8d, 0x55, 0x54, 0x43, 0x42,
  0x7d, 0x5d, 0x29, 0x85, 0x86, 0x87, 0x74, 0x6c, 0x64, 0x61, 0x65, 0x73, 0x75, 0x71, 0x72, 0x94, 0x68, 0x6a, 0x63,
  0x93, 0x52, 0x62, 0x51, 0x69, 0x6f, 0x81, 0x92, 0x49, 0x4c, 0x56,
];
const PICKLE_TEXT = [
  'torch\nFloatStorage\n',
  'collections\nOrderedDict\n',
  'torch._utils\n_rebuild_tensor_v2\n',
  'os\nsystem\n',
  'storage',
  '0',
  'cpu',
];

/**
 * A PyTorch checkpoint (torch.save's zip) broken: truncated, bytes flipped, or its data.pkl
 * replaced by a random run of opcodes, strings and integers (a hostile pickle), zipped as torch does.
 */
function pytorchCase(r) {
  const files = fixtureFiles(r.pick(['pytorch/h40-hf-bin', 'pytorch/h40-hf-protocol4', 'pytorch/h33-torchvision-pth']));
  const b = new Uint8Array(files['pytorch_model.bin']);
  const way = r.int(3);
  if (way === 0) files['pytorch_model.bin'] = b.subarray(0, r.int(b.length));
  else if (way === 1) {
    // flips mostly in data.pkl (the pickle), else anywhere (the zip's records, the storages)
    const at = Buffer.from(b).indexOf('data.pkl') + 8;
    for (let i = 1 + r.int(8); i > 0; i--) {
      const j = r.chance(0.7) && at > 8 ? at + r.int(Math.min(2000, b.length - at)) : r.int(b.length);
      b[j] = r.chance(0.5) ? b[j] ^ (1 << r.int(8)) : r.int(256);
    }
    files['pytorch_model.bin'] = b;
  } else {
    const out = [0x80, 2];
    for (let i = r.int(400); i > 0; i--) {
      out.push(r.pick(PICKLE_OPS));
      if (r.chance(0.4)) for (const c of new TextEncoder().encode(r.pick(PICKLE_TEXT))) out.push(c);
      if (r.chance(0.4)) out.push(r.int(256), r.int(256), r.int(4), 0);
    }
    if (r.chance(0.8)) out.push(0x2e);
    files['pytorch_model.bin'] = zipSync(
      { 'archive/data.pkl': [new Uint8Array(out), { level: 0 }], 'archive/data/0': [new Uint8Array(64), { level: 0 }] },
      { mtime: new Date(2020, 0, 1) },
    );
  }
  return { kind: 'load', files };
}

const CONFIG_KEYS = [
  'hidden_size',
  'num_hidden_layers',
  'num_attention_heads',
  'intermediate_size',
  'hidden_act',
  'image_size',
  'patch_size',
  'num_channels',
  'qkv_bias',
  'id2label',
  'label2id',
  'layer_norm_eps',
  'num_labels',
  'num_classes',
  'num_heads',
  // timm's arguments (src/io/families/vit.ts): pooling, tokens, LayerScale, and the hub config's own
  'global_pool',
  'fc_norm',
  'class_token',
  'reg_tokens',
  'init_values',
  'model_args',
  'architecture',
];

function configCase(r) {
  const files = fixtureFiles(r.pick(['h40-hf', 'h24-timm', 'h38-torchvision', 'h40-timm-avg', 'h40-deit-hf']));
  const c = JSON.parse(files['config.json']);
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const k = r.pick(CONFIG_KEYS);
    if (k === 'global_pool' && r.chance(0.6)) {
      c[k] = r.pick(['avg', 'token', 'map', '', 'max', 'AVG']);
      continue;
    }
    if (k === 'model_args' && r.chance(0.6)) {
      c[k] = {
        global_pool: r.pick(['avg', 'token', 'map']),
        fc_norm: r.pick([true, false, null, 'yes']),
        num_heads: wildValue(r),
        img_size: wildValue(r),
      };
      continue;
    }
    if (r.chance(0.2)) delete c[k];
    else if (k === 'id2label' && r.chance(0.6)) {
      const n = r.pick([0, 1, 7, 8, 1000]);
      c.id2label = Object.fromEntries(
        Array.from({ length: n }, (_, i) => [
          r.pick([String(i), `0${i}`, ` ${i}`, `${i}.0`, String(-i), String(i + 7)]),
          r.pick([`c${i}`, i, null, { x: 1 }]),
        ]),
      );
    } else c[k] = wildValue(r);
  }
  files['config.json'] = withRawTokens(c, r);
  return { kind: 'load', files, forward: true };
}

const PRE_KEYS = [
  'do_resize',
  'size',
  'resample',
  'do_rescale',
  'rescale_factor',
  'do_normalize',
  'image_mean',
  'image_std',
];

function preprocessorCase(r) {
  const files = fixtureFiles('h40-hf');
  const p = JSON.parse(files['preprocessor_config.json']);
  const edits = 1 + r.int(3);
  for (let e = 0; e < edits; e++) {
    const k = r.pick(PRE_KEYS);
    if (r.chance(0.2)) delete p[k];
    else if ((k === 'image_mean' || k === 'image_std') && r.chance(0.6))
      p[k] = [0, 1, 2].map(() => r.pick([0, 1e38, -1e38, 1e-38, 0.5, 1e-45, 3e38]));
    else if (k === 'rescale_factor' && r.chance(0.5)) p[k] = r.pick([1e38, 0, -1, 1e-300, 1e30]);
    else p[k] = wildValue(r);
  }
  files['preprocessor_config.json'] = withRawTokens(p, r);
  return { kind: 'load', files, forward: true };
}

function crc(type, data) {
  const c = Buffer.alloc(12 + data.length);
  c.writeUInt32BE(data.length, 0);
  c.write(type, 4, 'latin1');
  c.set(data, 8);
  c.writeUInt32BE(zlib.crc32(c.subarray(4, 8 + data.length)), 8 + data.length);
  return c;
}

/** A PNG with any IHDR, and scanlines of plausible or implausible length. */
function craftedPng(r) {
  const w = r.pick([0, 1, 16, 100, 20000, 2147483647, r.int(70000)]),
    h = r.pick([0, 1, 16, 100, 20000, r.int(70000)]);
  const [depth, color] = r.pick([
    [8, 2],
    [8, 0],
    [8, 6],
    [8, 4],
    [16, 2],
    [1, 0],
    [4, 0],
    [8, 3],
    [8, 7],
    [3, 2],
    [16, 3],
  ]);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = depth;
  ihdr[9] = color;
  ihdr[12] = r.chance(0.2) ? 1 : 0;
  const rawLen = Math.min(2e6, w * h <= 1e6 ? h * (1 + Math.ceil((w * 4 * depth) / 8)) : r.int(5000));
  const raw = Buffer.alloc(Math.max(0, rawLen - (r.chance(0.5) ? r.int(50) : 0)));
  const chunks = [crc('IHDR', ihdr)];
  if (color === 3 && r.chance(0.8)) chunks.push(crc('PLTE', Buffer.alloc(3 * (1 + r.int(256)), 77)));
  chunks.push(crc('IDAT', zlib.deflateSync(raw)), crc('IEND', Buffer.alloc(0)));
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), ...chunks]));
}

function imageCase(r) {
  const images = path.join(FIXTURES, 'images');
  let bytes;
  switch (r.int(4)) {
    case 0:
      bytes = craftedPng(r);
      break;
    case 1: {
      // a real file cut short or with bytes flipped
      const b = new Uint8Array(readFileSync(path.join(images, r.pick(readdirSync(images)))));
      if (r.chance(0.5)) bytes = b.subarray(0, r.int(b.length));
      else {
        for (let i = 0, n = 1 + r.int(10); i < n; i++)
          b[r.int(Math.min(b.length, r.chance(0.7) ? 400 : b.length))] ^= 1 << r.int(8);
        bytes = b;
      }
      break;
    }
    case 2: {
      // a JPEG with its frame size rewritten
      const b = new Uint8Array(readFileSync(path.join(images, r.pick(['rocket.jpg', 'grey.jpg']))));
      let p = 2;
      while (p < b.length && !(b[p + 1] >= 0xc0 && b[p + 1] <= 0xc2)) p += 2 + ((b[p + 2] << 8) | b[p + 3]);
      const [hh, ww] = [r.pick([0, 1, 65535, r.int(65536)]), r.pick([0, 1, 65535, r.int(65536)])];
      b.set([hh >> 8, hh & 255, ww >> 8, ww & 255], p + 5);
      bytes = b;
      break;
    }
    default:
      bytes = new Uint8Array(r.int(2000)).map(() => r.int(256));
      if (r.chance(0.5)) bytes.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].slice(0, bytes.length));
  }
  return { kind: 'image', bytes };
}

/** A call of the public API with a wrong argument. */
function apiCase(r) {
  const n = 3 * 20 * 25;
  const bad = [
    { call: 'load', location: r.pick([null, 5, [], '', {}, { 'config.json': 5 }, new URL('file:///nonexistent/')]) },
    {
      call: 'load',
      options: r.pick([
        { threads: 0 },
        { threads: -1 },
        { threads: 1.5 },
        { threads: '2' },
        { threads: Number.NaN },
        { threads: 65 },
        { threads: 1e9 },
        { simd: 'avx' },
        { limits: 5 },
        { limits: { maxLabels: -1 } },
        { limits: { nope: 1 } },
        null,
        'x',
      ]),
    },
    {
      call: 'forward',
      args: r.pick([
        [null],
        [5],
        [[1, 2, 3]],
        [new Float64Array(n)],
        [new Float32Array(n), 0],
        [new Float32Array(n), 2],
        [new Float32Array(n), 1.5],
        [new Float32Array(n), -1],
        [new Float32Array(n), Number.NaN],
        [new Float32Array(n), 1e9],
        [new Float32Array(0), 0],
        [new Float32Array(n).fill(Number.NaN)],
        [new Float32Array(n).fill(3.4e38)],
      ]),
    },
    {
      call: 'classify',
      args: r.pick([
        [null],
        [undefined],
        [5],
        [{}],
        [{ data: new Uint8Array(4), width: 1, height: 1 }],
        [{ data: new Uint8Array(4), width: 2, height: 2 }],
        [{ data: new Uint8Array(12), width: Number.NaN, height: 2 }],
        [{ data: new Uint8Array(0), width: 0, height: 0 }],
        [{ data: [1, 2, 3], width: 1, height: 1 }],
        [{ data: new Uint8Array(4), width: 1, height: 1 }, { topK: 0 }],
        [{ data: new Uint8Array(4), width: 1, height: 1 }, { topK: 1e9 }],
        [{ data: new Uint8Array(4), width: 1, height: 1 }, { topK: -2 }],
        ['/dev/zero'],
        ['/nonexistent.png'],
        ['http://127.0.0.1:1/x.png'],
        [new ArrayBuffer(3)],
      ]),
    },
    { call: 'embed', args: r.pick([[[]], [new Float32Array(3)], [new Float32Array(n), { pooling: 'max' }], [[null]]]) },
    { call: 'trace', args: r.pick([[new Float32Array(1)], [null], [new Float32Array(n).fill(1e38)]]) },
  ];
  return { kind: 'api', ...r.pick(bad) };
}

/** Concurrent calls on a pool while workers trap, exit or are killed at random points. */
function faultsCase(r) {
  const threads = 1 + r.int(3);
  const steps = [];
  for (let i = 0, n = 3 + r.int(8); i < n; i++) {
    if (r.chance(0.3))
      steps.push({ fault: { id: r.int(threads), kind: r.pick(['trap', { exitAtOp: r.int(40) }, 'kill']) } });
    else steps.push({ call: r.pick(['forward', 'classify', 'embed']), batch: 1 + r.int(3) });
  }
  return { kind: 'faults', threads, steps, disposeEarly: r.chance(0.2) };
}

const FAMILY_FIXTURES = [
  'dinov2/h40-dinov2',
  'dinov2/h33-dinov2-cls',
  'dinov2/h40-dinov2reg-cls',
  'dinov2/h48-dinov2reg',
  'timm-variants/h40-timm-reg-avg',
  'timm-variants/h33-timm-deit3',
  'timm-variants/h48-timm-reg-token',
  'clip/h40-clip',
  'clip/h48-clip-vision-proj',
  'siglip/h40-siglip',
  'timm-variants/h40-timm-siglip-map',
  'beit/h40-beit',
  'beit/h33-beit-shared-cls',
  'dinov2/h40-dinov2-swiglu',
  'timm-variants/h40-timm-dinov2-swiglu',
  'timm-variants/h33-timm-reg-nocls',
];
const FAMILY_KEYS = [
  'num_register_tokens',
  'mlp_ratio',
  'use_swiglu_ffn',
  'image_size',
  'hidden_size',
  'reg_tokens',
  'no_embed_class',
  'init_values',
  'class_token',
  'global_pool',
  'vision_config',
  'projection_dim',
  'hidden_act',
  'vision_use_head',
  'use_shared_relative_position_bias',
  'use_mean_pooling',
  'architecture',
  'act_layer',
];
// the tensors the families add: registers, LayerScale, positions, the 2D classifier, SwiGLU's halves
const FAMILY_TENSORS =
  /weights_in|weights_out|blocks\.0\.mlp\.fc[12]\.weight|register_tokens|reg_token|layer_scale|ls[12]\.gamma|position_embeddings|pos_embed|classifier\.weight|head\.weight|visual_projection|pre_layrnorm|position_embedding\.weight|class_embedding|probe|in_proj|attn_pool|latent|relative_position_bias_table|lambda_1/;

/**
 * A DINOv2 or timm-variant checkpoint with hostile config fields (top level or model_args), shapes of
 * the tensors the families add (registers, LayerScale, positions, the classifier), and a wild
 * image size to run at (its positions interpolated).
 */
function familiesCase(r) {
  const files = fixtureFiles(r.pick(FAMILY_FIXTURES));
  const c = JSON.parse(files['config.json']);
  const where = c.model_args && r.chance(0.6) ? c.model_args : c;
  for (let e = 1 + r.int(2); e > 0; e--) if (r.chance(0.5)) where[r.pick(FAMILY_KEYS)] = wildValue(r);
  files['config.json'] = JSON.stringify(c);
  if (r.chance(0.5)) {
    const { header, data } = split(files['model.safetensors']);
    const names = Object.keys(header).filter((k) => FAMILY_TENSORS.test(k));
    const t = r.pick(names);
    const shape = header[t].shape,
      n = shape.reduce((a, d) => a * d, 1);
    if (r.chance(0.15)) delete header[t];
    // mostly the same element count in another shape, so the family's checks (not the file's) decide
    else
      header[t].shape = r.pick([
        [n],
        [1, ...shape],
        [...shape].reverse(),
        [1, 1, n],
        shape.length > 1 ? [shape[0] * shape[1], ...shape.slice(2)] : [n, 1],
        [...shape, 1],
        shape.map((d) => d + 1),
      ]);
    files['model.safetensors'] = join(JSON.stringify(header), data);
  }
  const imageSize = r.chance(0.6)
    ? r.pick([0, -14, 7.5, 14, 35, [15, 20], [20, 15], [640, 640], [5, 5], 'big', [Number.NaN, 14], 2 ** 31])
    : undefined;
  return {
    kind: 'load',
    files,
    forward: true,
    options: imageSize === undefined ? undefined : { threads: 1, imageSize },
  };
}

const MAKERS = {
  pytorch: pytorchCase,
  families: familiesCase,
  safetensors: safetensorsCase,
  bytes: bytesCase,
  config: configCase,
  preprocessor: preprocessorCase,
  image: imageCase,
  api: apiCase,
  faults: faultsCase,
  text: textCase,
  tokenizer: tokenizerCase,
};

/**
 * A text model whose tokenizer files are broken: SigLIP's spiece.model with bytes flipped or cut
 * short (mostly in its first pieces and its character map), or its tokenizer_config.json's fields
 * replaced; CLIP's tokenizer.json, vocab.json or merges.txt cut or flipped. Then a few texts.
 */
function tokenizerCase(r) {
  const siglip = r.chance(0.6);
  const files = fixtureFiles(siglip ? 'zero-shot/h40-siglip-text' : 'zero-shot/h40-clip-text');
  const mangle = (b) => {
    if (r.chance(0.3)) return b.subarray(0, r.int(b.length));
    const out = new Uint8Array(b);
    for (let i = 0, n = 1 + r.int(12); i < n; i++) {
      const at = r.chance(0.6) ? r.int(Math.min(out.length, 4096)) : r.int(out.length);
      out[at] = r.chance(0.5) ? out[at] ^ (1 << r.int(8)) : r.int(256);
    }
    return out;
  };
  const bytes = (s) => new TextEncoder().encode(s);
  if (siglip) {
    if (r.chance(0.7)) files['spiece.model'] = mangle(files['spiece.model']);
    else {
      const cfg = JSON.parse(files['tokenizer_config.json']);
      const key = r.pick([
        'eos_token',
        'unk_token',
        'pad_token',
        'do_lower_case',
        'model_max_length',
        'additional_special_tokens',
        'added_tokens_decoder',
      ]);
      cfg[key] = r.pick([null, 0, -1, 1e9, '', '<x>', '</s>', [], ['<y>', 5], {}, { 1: { content: '<q>' } }, true]);
      files['tokenizer_config.json'] = JSON.stringify(cfg);
    }
  } else {
    const f = r.pick(['tokenizer.json', 'vocab.json', 'merges.txt']);
    if (f !== 'tokenizer.json') delete files['tokenizer.json'];
    const b = typeof files[f] === 'string' ? bytes(files[f]) : files[f];
    files[f] = mangle(b);
  }
  return { kind: 'tokenizer', files, texts: ['a photo of a cat.', wildText(r, 60)] };
}

/** A random string: ASCII, accents, combining marks, emoji (with joiners), CJK, controls, whitespace, lone surrogates. */
function wildText(r, max) {
  const pools = [
    () => String.fromCharCode(32 + r.int(95)),
    () => r.pick(['é', 'ß', 'İ', 'ǅ', 'Å', 'ø', 'ﬁ', '①', 'Ａ']),
    () => String.fromCharCode(0x300 + r.int(0x70)), // combining marks
    () => r.pick(['🐱', '👍🏽', '👨‍👩‍👧', '🇫🇷', '\u200d', '\ufe0f']),
    () => String.fromCharCode(0x4e00 + r.int(0x5000)),
    () => String.fromCharCode(r.int(32)), // controls, NUL
    () => r.pick([' ', '\t', '\n', '\r\n', '\u00a0', '\u3000', '\u2028']),
    // a surrogate pair (an astral character), or now and then half of one (not text: refused)
    () =>
      r.chance(0.97)
        ? String.fromCharCode(0xd800 + r.int(0x400), 0xdc00 + r.int(0x400))
        : String.fromCharCode(0xd800 + r.int(0x800)),
    () => r.pick(['<|startoftext|>', '<|endoftext|>', "'s", "'ll", '{}', '&amp;']),
    // SigLIP's special tokens and SentencePiece's visible space, punctuation it removes
    () => r.pick(['</s>', '<unk>', '<pad>', '\u2581', '...', '"', '_']),
  ];
  const n = r.chance(0.05) ? 100_000 + r.int(10) : r.int(max);
  // pieces joined once (slicing a growing string flattens it every time: quadratic); half the
  // pieces repeat the previous one, so runs of the same character or cluster appear
  const parts = [];
  let length = 0;
  while (length < n) {
    const p = r.chance(0.5) && parts.length ? parts[parts.length - 1] : r.pick(pools)();
    parts.push(p);
    length += p.length;
  }
  const out = parts.join('');
  // cut at n, but not between the halves of a pair (the pool makes unpaired halves on purpose, rarely)
  return /[\uD800-\uDBFF]/.test(out[n - 1] ?? '') ? out.slice(0, n - 1) : out.slice(0, n);
}

/** Text for a CLIPModel's or a SiglipModel's text tower: hostile strings, label lists and templates. */
function textCase(r) {
  const model = r.chance(0.5) ? 'siglip' : 'clip';
  const label = () => (r.chance(0.02) ? r.pick([null, 5, {}, [], undefined]) : wildText(r, 40));
  const labels = r.chance(0.1)
    ? r.pick([[], 'cat', null, {}])
    : Array.from({ length: 1 + r.int(r.chance(0.1) ? 300 : 6) }, label);
  const template = r.chance(0.7)
    ? undefined
    : r.pick([wildText(r, 30), 'a {} and a {}', '{}', [], ['a photo of a {}.', wildText(r, 20)], 5]);
  return r.chance(0.5)
    ? {
        kind: 'text',
        model,
        call: 'embedText',
        args: [r.chance(0.2) ? label() : Array.from({ length: 1 + r.int(5) }, label)],
      }
    : { kind: 'text', model, call: 'zeroShot', labels, template };
}

/** The case (kind, seed). */
export function makeCase(kind, seed) {
  const make = MAKERS[kind];
  if (!make) throw new Error(`unknown fuzz kind ${kind}`);
  return make(rng(seed * 7919 + KINDS.indexOf(kind)));
}
