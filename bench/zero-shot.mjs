// A zero-shot call at CLIP ViT-B/32's shape (random weights; vision 12 × 768 at 224 px, patch 32;
// text 12 × 512, 49,408 tokens, 77 positions; 512-dim space): one image, 10 labels, at 1 and 2
// threads. Prints the median ms of the first call's text embeddings (10 prompts, nothing cached),
// of a zero-shot call with the labels cached (the image forward and the ranking), and of the image
// forward alone (embed), the thread counts interleaved round by round. Then onnxruntime-web (its
// wasm backend in Node, one child process per thread count: its thread pool is sized once) on the
// same weights exported (toOnnx: the image tower, and the text tower at the prompts' padded length):
// the same three timings.
//   node bench/zero-shot.mjs [rounds]   (after npm run build; onnxruntime-web is a devDependency)
//   node bench/zero-shot.mjs --write DIR   writes the model's files to DIR instead (for `vit-wasm bench --model DIR --peers`)
//   node bench/zero-shot.mjs --write DIR --siglip   a SiglipModel at SigLIP B/16's shape instead (vision 12 × 768 at
//     224 px, patch 16, its attention pool; text 12 × 768, 32,000 tokens, 64 positions; the fixture's spiece.model)
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadModel } from '../dist/index.js';

const rounds = Number(process.argv[2] ?? 5),
  ortThreads = process.env.ZS_ORT_THREADS ? Number(process.env.ZS_ORT_THREADS) : 0;
const V = { D: 768, L: 12, H: 12, M: 3072, p: 32, size: 224 },
  T = { D: 512, L: 12, H: 8, M: 2048, vocab: 49408, pos: 77 },
  P = 512;

let seed = 1;
/** n floats of N(0, std²)-ish noise (a sum of uniforms), reproducible. */
function noise(n, std = 0.02) {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    out[i] = ((seed / 2 ** 32) * 2 - 1) * std * 1.7;
  }
  return out;
}
const tensors = [];
const put = (name, shape, data) => tensors.push({ name, shape, data: data ?? noise(shape.reduce((a, b) => a * b, 1)) });
const ones = (n) => new Float32Array(n).fill(1);
function layers(prefix, { D, L, M }) {
  for (let i = 0; i < L; i++) {
    const l = `${prefix}encoder.layers.${i}.`;
    for (const q of ['q', 'k', 'v', 'out']) {
      put(`${l}self_attn.${q}_proj.weight`, [D, D]);
      put(`${l}self_attn.${q}_proj.bias`, [D]);
    }
    put(`${l}layer_norm1.weight`, [D], ones(D));
    put(`${l}layer_norm1.bias`, [D]);
    put(`${l}layer_norm2.weight`, [D], ones(D));
    put(`${l}layer_norm2.bias`, [D]);
    put(`${l}mlp.fc1.weight`, [M, D]);
    put(`${l}mlp.fc1.bias`, [M]);
    put(`${l}mlp.fc2.weight`, [D, M]);
    put(`${l}mlp.fc2.bias`, [D]);
  }
}
const v = 'vision_model.',
  t = 'text_model.';
put(`${v}embeddings.class_embedding`, [V.D]);
put(`${v}embeddings.patch_embedding.weight`, [V.D, 3, V.p, V.p]);
put(`${v}embeddings.position_embedding.weight`, [(V.size / V.p) ** 2 + 1, V.D]);
put(`${v}pre_layrnorm.weight`, [V.D], ones(V.D));
put(`${v}pre_layrnorm.bias`, [V.D]);
put(`${v}post_layernorm.weight`, [V.D], ones(V.D));
put(`${v}post_layernorm.bias`, [V.D]);
layers(v, V);
put('visual_projection.weight', [P, V.D]);
put(`${t}embeddings.token_embedding.weight`, [T.vocab, T.D]);
put(`${t}embeddings.position_embedding.weight`, [T.pos, T.D]);
layers(t, T);
put(`${t}final_layer_norm.weight`, [T.D], ones(T.D));
put(`${t}final_layer_norm.bias`, [T.D]);
put('text_projection.weight', [P, T.D]);
put('logit_scale', [], Float32Array.of(Math.log(100)));

/** A safetensors file of f32 tensors. */
function safetensors(list) {
  const header = {};
  let off = 0;
  for (const x of list) {
    header[x.name] = { dtype: 'F32', shape: x.shape, data_offsets: [off, off + x.data.length * 4] };
    off += x.data.length * 4;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const h = new TextEncoder().encode(json),
    out = new Uint8Array(8 + h.length + off);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  let at = 8 + h.length;
  for (const x of list) {
    out.set(new Uint8Array(x.data.buffer), at);
    at += x.data.length * 4;
  }
  return out;
}
const layerCfg = (c) => ({
  hidden_size: c.D,
  num_hidden_layers: c.L,
  num_attention_heads: c.H,
  intermediate_size: c.M,
});
const fixture = new URL('../tests/fixtures/zero-shot/h40-clip-text/', import.meta.url);
const files = {
  'config.json': JSON.stringify({
    architectures: ['CLIPModel'],
    model_type: 'clip',
    projection_dim: P,
    vision_config: { ...layerCfg(V), image_size: V.size, patch_size: V.p },
    text_config: { ...layerCfg(T), vocab_size: T.vocab, max_position_embeddings: T.pos, eos_token_id: 668 },
  }),
  'model.safetensors': safetensors(tensors),
  // the fixture's small BPE (ids below 669): the prompts' lengths are CLIP's, the ids index the big table
  'tokenizer.json': readFileSync(new URL('tokenizer.json', fixture), 'utf8'),
};
const labels = [
  'cat',
  'dog',
  'car',
  'bicycle',
  'red apple',
  'small bird',
  'airplane',
  'horse',
  'mountain lake',
  'bridge',
];
if (process.argv[2] === '--write') {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(process.argv[3], { recursive: true });
  const out = process.argv[4] === '--siglip' ? siglipFiles() : files;
  for (const [name, data] of Object.entries(out)) writeFileSync(`${process.argv[3]}/${name}`, data);
  process.exit(0);
}

/** SigLIP B/16's shape (SiglipModel's names), random weights; the fixture's small spiece.model (ids index the big table). */
function siglipFiles() {
  tensors.length = 0;
  const S = { D: 768, L: 12, H: 12, M: 3072, p: 16, size: 224 },
    ST = { D: 768, L: 12, H: 12, M: 3072, vocab: 32000, pos: 64 };
  put(`${v}embeddings.patch_embedding.weight`, [S.D, 3, S.p, S.p]);
  put(`${v}embeddings.patch_embedding.bias`, [S.D]);
  put(`${v}embeddings.position_embedding.weight`, [(S.size / S.p) ** 2, S.D]);
  layers(v, S);
  put(`${v}post_layernorm.weight`, [S.D], ones(S.D));
  put(`${v}post_layernorm.bias`, [S.D]);
  put(`${v}head.probe`, [1, 1, S.D]);
  put(`${v}head.attention.in_proj_weight`, [3 * S.D, S.D]);
  put(`${v}head.attention.in_proj_bias`, [3 * S.D]);
  put(`${v}head.attention.out_proj.weight`, [S.D, S.D]);
  put(`${v}head.attention.out_proj.bias`, [S.D]);
  put(`${v}head.layernorm.weight`, [S.D], ones(S.D));
  put(`${v}head.layernorm.bias`, [S.D]);
  put(`${v}head.mlp.fc1.weight`, [S.M, S.D]);
  put(`${v}head.mlp.fc1.bias`, [S.M]);
  put(`${v}head.mlp.fc2.weight`, [S.D, S.M]);
  put(`${v}head.mlp.fc2.bias`, [S.D]);
  put(`${t}embeddings.token_embedding.weight`, [ST.vocab, ST.D]);
  put(`${t}embeddings.position_embedding.weight`, [ST.pos, ST.D]);
  layers(t, ST);
  put(`${t}final_layer_norm.weight`, [ST.D], ones(ST.D));
  put(`${t}final_layer_norm.bias`, [ST.D]);
  put(`${t}head.weight`, [S.D, ST.D]);
  put(`${t}head.bias`, [S.D]);
  put('logit_scale', [1], Float32Array.of(Math.log(10)));
  put('logit_bias', [1], Float32Array.of(-10));
  const fx = new URL('../tests/fixtures/zero-shot/h40-siglip-text/', import.meta.url);
  return {
    'config.json': JSON.stringify({
      architectures: ['SiglipModel'],
      model_type: 'siglip',
      vision_config: { ...layerCfg(S), image_size: S.size, patch_size: S.p },
      text_config: { ...layerCfg(ST), vocab_size: ST.vocab, max_position_embeddings: ST.pos },
    }),
    'model.safetensors': safetensors(tensors),
    'spiece.model': readFileSync(new URL('spiece.model', fx)),
    'tokenizer_config.json': JSON.stringify({
      ...JSON.parse(readFileSync(new URL('tokenizer_config.json', fx), 'utf8')),
      model_max_length: 64,
    }),
  };
}
const image = noise(3 * V.size * V.size, 1);
const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];

if (ortThreads) {
  // a child: onnxruntime-web at ortThreads threads on the exported towers
  const ort = await import('onnxruntime-web');
  ort.env.wasm.numThreads = ortThreads;
  ort.env.logLevel = 'error'; // (not its notes on the unused GELU constants of a quick-GELU graph)
  const m = await loadModel(files, { threads: 1 });
  const texts = labels.map((l) => `a photo of a ${l}.`);
  // the prompts' ids as vit-wasm's tokenizer gives them, padded with the end token to the longest
  const ids = await idsOf(m, texts);
  const T = Math.max(...ids.map((x) => x.length)),
    flat = new BigInt64Array(ids.length * T);
  ids.forEach((x, b) => {
    flat.fill(BigInt(x[x.length - 1]), b * T, (b + 1) * T);
    x.forEach((v, j) => (flat[b * T + j] = BigInt(v)));
  });
  const text = await ort.InferenceSession.create(m.toOnnx({ text: true, textLength: T }), {
    executionProviders: ['wasm'],
  });
  const vision = await ort.InferenceSession.create(m.toOnnx(), { executionProviders: ['wasm'] });
  await m.dispose();
  const feedsT = { input_ids: new ort.Tensor('int64', flat, [ids.length, T]) },
    feedsI = { pixel_values: new ort.Tensor('float32', image, [1, 3, V.size, V.size]) };
  for (let i = 0; i < 2; i++) {
    await text.run(feedsT);
    await vision.run(feedsI);
  }
  const ms = { text: [], image: [] };
  for (let r = 0; r < rounds; r++) {
    let t0 = performance.now();
    await text.run(feedsT);
    ms.text.push(performance.now() - t0);
    t0 = performance.now();
    await vision.run(feedsI);
    ms.image.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ text: median(ms.text), image: median(ms.image), T }));
  process.exit(0);
}

/** Each text's token ids as vit-wasm's tokenizer makes them (the fixture's: <|startoftext|> 667, <|endoftext|> 668). */
async function idsOf(_m, texts) {
  const { Tokenizer } = await import('@huggingface/tokenizers');
  const tk = new Tokenizer(JSON.parse(files['tokenizer.json']), {});
  return texts.map((t) => [667, ...tk.encode(t, { add_special_tokens: false }).ids.slice(0, T.pos - 2), 668]);
}

const models = {};
for (const threads of [1, 2]) models[threads] = await loadModel(files, { threads });
const ms = { 1: { text: [], call: [], image: [] }, 2: { text: [], call: [], image: [] } };
for (let r = 0; r < rounds; r++)
  for (const threads of r % 2 ? [2, 1] : [1, 2]) {
    const m = models[threads],
      // new strings each round (nothing cached) with the same ids: trailing spaces are not tokens
      prompts = labels.map((l) => `a photo of a ${l}.${' '.repeat(r + 1)}`);
    let t0 = performance.now();
    await m.embedText(prompts);
    ms[threads].text.push(performance.now() - t0);
    await m.zeroShot(image, labels); // the labels' prompts now cached
    t0 = performance.now();
    await m.zeroShot(image, labels);
    ms[threads].call.push(performance.now() - t0);
    t0 = performance.now();
    await m.embed(image);
    ms[threads].image.push(performance.now() - t0);
  }
console.log('threads  10 prompts embedded (ms)  zero-shot call, labels cached (ms)  image forward (ms)');
for (const th of [1, 2])
  console.log(
    `${th}        ${median(ms[th].text).toFixed(1).padStart(8)}                  ${median(ms[th].call).toFixed(1).padStart(8)}                          ${median(ms[th].image).toFixed(1).padStart(8)}`,
  );
console.log(
  `2 vs 1 threads: text ${(median(ms[1].text) / median(ms[2].text)).toFixed(2)}x, call ${(median(ms[1].call) / median(ms[2].call)).toFixed(2)}x`,
);
for (const m of Object.values(models)) await m.dispose();

// onnxruntime-web, each thread count in its own process
const ortRows = {};
for (const th of [1, 2])
  ortRows[th] = JSON.parse(
    execFileSync(process.execPath, [fileURLToPath(import.meta.url), String(rounds)], {
      env: { ...process.env, ZS_ORT_THREADS: String(th) },
      maxBuffer: 1 << 20,
    })
      .toString()
      .trim()
      .split('\n')
      .at(-1),
  );
console.log(`\nonnxruntime-web (the same weights, ONNX; prompts padded to ${ortRows[1].T} tokens)`);
console.log('threads  10 prompts embedded (ms)  image forward (ms)   vit-wasm / ort-web: text, image');
for (const th of [1, 2])
  console.log(
    `${th}        ${ortRows[th].text.toFixed(1).padStart(8)}                  ${ortRows[th].image.toFixed(1).padStart(8)}            ${(median(ms[th].text) / ortRows[th].text).toFixed(2)}, ${(median(ms[th].image) / ortRows[th].image).toFixed(2)}`,
  );
