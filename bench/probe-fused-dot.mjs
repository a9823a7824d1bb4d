// Does this engine compute i32x4.relaxed_dot_i8x16_i7x16_add_s right? 2,000 random cases (a: i8,
// b: 0…127, c: i32) against the definition, in Node and, when it is installed, in Debian's Chromium.
// The int8 kernel avoids the fused op because Node 20's V8 (11.3) gets it wrong (bench/NOTES.md).
//   node bench/probe-fused-dot.mjs
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import binaryen from 'binaryen';
import { CHROMIUM, launchChromium } from '../scripts/chromium.mjs';

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
  await ctx.close();
}
