// Does this engine compute i32x4.relaxed_dot_i8x16_i7x16_add_s right? 2,000 random cases (a: i8,
// b: 0…127, c: i32) against the definition, in Node and, when it is installed, in Debian's Chromium.
// And is it faster where it is right? In Chromium, gemm_i8_4x8 built as it is (the 3-op dot4) and
// built with dot4 as the fused op, timed alternately at ViT-B/16's shapes, outputs compared.
// The int8 kernel avoids the fused op: Node 20's V8 (11.3) gets it wrong, and Chromium on a CPU
// without VNNI runs it slower (bench/NOTES.md).
//   node bench/probe-fused-dot.mjs        (after npm run build)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import binaryen from 'binaryen';
import { CHROMIUM, launchChromium } from '../scripts/chromium.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

const m = binaryen.parseText(`(module (memory (export "mem") 1)
 (func (export "f") (param $p i32)
  (v128.store offset=48 (local.get $p)
   (i32x4.relaxed_dot_i8x16_i7x16_add_s
    (v128.load (local.get $p)) (v128.load offset=16 (local.get $p)) (v128.load offset=32 (local.get $p))))))`);
m.setFeatures(binaryen.Features.All);
const bytes = Array.from(m.emitBinary());

/** Runs in the engine under test (Node, or the page): wrong lanes out of 8,000, and the first one. */
async function probe(bytes) {
  const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes));
  const buf = instance.exports.mem.buffer,
    u8 = new Uint8Array(buf),
    i8 = new Int8Array(buf),
    i32 = new Int32Array(buf);
  let s = 12345,
    bad = 0,
    first = null;
  const rnd = () => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return s >>> 8;
  };
  for (let t = 0; t < 2000; t++) {
    for (let j = 0; j < 16; j++) {
      i8[j] = (rnd() % 256) - 128;
      u8[16 + j] = rnd() % 128;
    }
    for (let j = 0; j < 4; j++) i32[8 + j] = (rnd() % 200001) - 100000;
    instance.exports.f(0);
    for (let l = 0; l < 4; l++) {
      let want = i32[8 + l];
      for (let q = 0; q < 4; q++) want += i8[4 * l + q] * u8[16 + 4 * l + q];
      if (i32[12 + l] !== want) {
        bad++;
        first ??= { lane: l, got: i32[12 + l], want };
      }
    }
  }
  return { bad, of: 8000, first };
}

v8.setFlagsFromString('--experimental-wasm-relaxed-simd');
console.log(`node ${process.version} (V8 ${process.versions.v8}):`, JSON.stringify(await probe(bytes)));
if (fs.existsSync(CHROMIUM)) {
  const ctx = await launchChromium(fs.mkdtempSync(path.join(os.tmpdir(), 'chr-')));
  const page = await ctx.newPage();
  const r = await page.evaluate(
    async ({ bytes, src }) => ({ ua: navigator.userAgent, r: await new Function(`return (${src})`)()(bytes) }),
    { bytes, src: probe.toString() },
  );
  console.log(`${/HeadlessChrome\/[\d.]+/.exec(r.ua)?.[0] ?? r.ua}:`, JSON.stringify(r.r));
  console.log('gemm_i8_4x8 in this Chromium, GMAC/s (median of 9), 3-op dot4 vs the fused op:');
  for (const line of await page.evaluate(speed, { builds: [kernelBuild(false), kernelBuild(true)] })) console.log(line);
  await ctx.close();
}

/** The relaxed kernels on unshared memory (a page without COOP/COEP), dot4 as shipped or fused. */
function kernelBuild(fused) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fused-'));
  fs.cpSync(path.join(root, 'assembly'), path.join(dir, 'assembly'), { recursive: true });
  if (fused) {
    const f = path.join(dir, 'assembly/gemm_i8.ts'),
      src = fs.readFileSync(f, 'utf8'),
      out = src.replace(
        /return i32x4\.add\(acc, i32x4\.dot_i16x8_s\(i16x8\.relaxed_dot_i8x16_i7x16_s\(w, a\), ones\)\);/,
        'return i32x4.relaxed_dot_i8x16_i7x16_add_s(w, a, acc);',
      );
    if (out === src) throw new Error('probe-fused-dot: dot4 in assembly/gemm_i8.ts no longer has the expected form');
    fs.writeFileSync(f, out);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(root, 'asconfig.json'), 'utf8'));
  cfg.entries = [];
  cfg.options.sharedMemory = false;
  fs.writeFileSync(path.join(dir, 'asconfig.json'), JSON.stringify(cfg));
  execFileSync(
    path.join(root, 'node_modules/.bin/asc'),
    ['assembly/kernels.ts', '--config', 'asconfig.json', '--target', 'relaxed', '-o', 'k.wasm'],
    { cwd: dir, stdio: 'ignore' },
  );
  return Array.from(fs.readFileSync(path.join(dir, 'k.wasm')));
}

/** Runs in the page: both builds on the same inputs, alternating; GMAC/s and whether outputs agree. */
async function speed({ builds }) {
  const T = 197,
    median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1],
    out = [];
  const mods = [];
  for (const bytes of builds) {
    const memory = new WebAssembly.Memory({ initial: 400, maximum: 65536 });
    const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes), { env: { memory } });
    mods.push({ k: instance.exports, memory });
  }
  for (const [name, N, K] of [
    ['qkv', 2304, 768],
    ['fc1', 3072, 768],
    ['fc2', 768, 3072],
  ]) {
    const run = mods.map(({ k, memory }) => {
      let top = 65536;
      const alloc = (b) => {
        const p = top;
        top += Math.ceil(b / 64) * 64;
        return p;
      };
      const a = alloc(T * K * 4),
        w = alloc(N * K * 4),
        b = alloc(N * 4),
        f = new Float32Array(memory.buffer);
      for (let i = 0; i < T * K; i++) f[a / 4 + i] = Math.sin(i * 0.37);
      for (let i = 0; i < N * K; i++) f[w / 4 + i] = Math.cos(i * 0.11);
      const aq = alloc(Math.ceil(T / 4) * 4 * K),
        sa = alloc(T * 4),
        za = alloc(T * 4),
        wq = alloc(N * K),
        wsum = alloc(N * 4),
        sw = alloc(N * 4),
        c = alloc(T * N * 4);
      k.quantize_pack_weights_i8(w, N, K, wq, K, wsum, sw, 0);
      k.quantize_rows_u7(a, K, aq, K, sa, za, T, K);
      return { c, f: () => k.gemm_i8_4x8(aq, sa, za, wq, wsum, sw, b, c, N, T, N, K, 0) };
    });
    const t = [[], []];
    for (let r = 0; r < 9; r++)
      for (let j = 0; j < 2; j++) {
        run[j].f();
        const t0 = performance.now();
        for (let x = 0; x < 3; x++) run[j].f();
        t[j].push((performance.now() - t0) / 3);
      }
    const c0 = new Float32Array(mods[0].memory.buffer, run[0].c, T * N),
      c1 = new Float32Array(mods[1].memory.buffer, run[1].c, T * N),
      same = c0.every((v, i) => Object.is(v, c1[i])),
      g = (T * N * K) / 1e9;
    out.push(
      `  ${name} ${N}x${K}: 3-op ${((g / median(t[0])) * 1000).toFixed(1)}, fused ${((g / median(t[1])) * 1000).toFixed(1)}; outputs ${same ? 'the same bits' : 'DIFFER'}`,
    );
  }
  return out;
}
