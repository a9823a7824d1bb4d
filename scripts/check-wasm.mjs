// CI guard: kernel modules are instantiated once per worker over ONE shared memory, so they must
// have no data segments (re-applied at every instantiation), no mutable globals (per instance),
// no start function, and import exactly one shared memory and nothing else. Each build must also
// stay within the size budget the README states (the library carries all three inside its JS).
import fs from 'node:fs';
import v8 from 'node:v8';
import binaryen from 'binaryen';

v8.setFlagsFromString('--experimental-wasm-relaxed-simd'); // the relaxed build must compile to list its imports

/**
 * Bytes per kernel build (docs/web-apps.md: "24 KB of wasm each"; the int8 kernels took it from 17
 * to 21, the MLP activations of DINOv2, CLIP and SigLIP (assembly/activation.ts) to 22, SwiGLU's
 * gated unit (DINOv2-giant) to 22.5, the packing copies of attention's V and of the weight
 * gradient (transpose, pack_panels_8) to 23.5).
 */
const BUDGET = 23.5 * 1024;

let failed = false;
for (const file of process.argv.slice(2)) {
  const bytes = fs.readFileSync(file);
  const mod = binaryen.readBinary(bytes);
  const problems = [];
  const nSeg = mod.getNumDataSegments();
  if (nSeg > 0) problems.push(`${nSeg} data segment(s)`);
  for (let i = 0; i < mod.getNumGlobals(); i++) {
    const g = binaryen.getGlobalInfo(mod.getGlobalByIndex(i));
    if (g.mutable) problems.push(`mutable global ${g.name}`);
  }
  if (mod.getStart()) problems.push('a start function');
  mod.dispose();
  const imports = WebAssembly.Module.imports(new WebAssembly.Module(bytes));
  const bad = imports.filter((i) => !(i.module === 'env' && i.name === 'memory' && i.kind === 'memory'));
  if (bad.length) problems.push(`imports other than env.memory: ${bad.map((i) => `${i.module}.${i.name}`).join(', ')}`);
  if (!imports.some((i) => i.kind === 'memory')) problems.push('no imported memory');
  const text = fs.existsSync(file.replace(/\.wasm$/, '.wat'))
    ? fs.readFileSync(file.replace(/\.wasm$/, '.wat'), 'utf8')
    : '';
  // build/single is the one-thread fallback for pages without SharedArrayBuffer: its memory is not shared.
  const wantShared = !file.includes('/single/');
  const shared = /\(import "env" "memory" \(memory \$\S+ \d+ \d+ shared\)\)/.test(text);
  if (text && shared !== wantShared)
    problems.push(wantShared ? 'memory import is not shared' : 'memory import is shared');
  if (bytes.length > BUDGET) problems.push(`${bytes.length} bytes, over the budget of ${BUDGET}`);
  if (problems.length) {
    failed = true;
    console.error(`FAIL ${file}: ${problems.join('; ')}`);
  } else
    console.log(
      `ok   ${file}: ${bytes.length} bytes (budget ${BUDGET}), no data, no mutable globals, no start, ${wantShared ? 'shared' : 'unshared'} memory import`,
    );
}
process.exit(failed ? 1 : 0);
