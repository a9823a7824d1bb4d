// The register tiles of the kernels, written once and stamped out where they are used (the way
// XNNPACK generates its microkernel variants). AssemblyScript cannot return eight v128 values from
// a function or keep them in a struct without allocating, so the tile cannot be a helper: instead
// each use is a marked region of assembly/*.ts that this script rewrites from its marker line.
//
//   // >>> tile4x8 i=k n=K a=pa sa=sa da=4 b=pb db=32
//   …generated: 8 accumulators c00…c31, the k-loop broadcasting 4 rows of A against 8 columns of B…
//   // <<< tile4x8
//
// tile4x8: c<r><h> (r = 0…3 rows, h = 0/1 the two 4-column halves) += A[r, i] · B[i, 0…7] for i < n,
//   A[r, i] at a + r·sa (a advances by da per i), B[i, 0…7] at b (b advances by db per i).
// tile1x8: c00, c01 += A[i] · B[i, 0…7], the one-row tail.
// In the relaxed build fmadd is a fused multiply-add (assembly/simd.ts).
//   node scripts/gen-tiles.mjs           rewrite the regions
//   node scripts/gen-tiles.mjs --check   fail if any region is not what this script writes (CI)
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const TILES = {
  tile4x8: ({ i, n, a, sa, da, b, db }) => [
    'let c00 = f32x4.splat(0), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;',
    `for (let ${i} = 0; ${i} < ${n}; ${i}++) {`,
    `  const b0 = v128.load(${b}), b1 = v128.load(${b}, 16);`,
    ...[0, 1, 2, 3].flatMap((r) => [
      `  ${r === 0 ? 'let ' : ''}av = v128.load32_splat(${a}${r === 0 ? '' : r === 1 ? ` + ${sa}` : ` + ${r} * ${sa}`});`,
      `  c${r}0 = fmadd(av, b0, c${r}0); c${r}1 = fmadd(av, b1, c${r}1);`,
    ]),
    `  ${b} += ${db}; ${a} += ${da};`,
    '}',
  ],
  tile1x8: ({ i, n, a, da, b, db }) => [
    'let c00 = f32x4.splat(0), c01 = c00;',
    `for (let ${i} = 0; ${i} < ${n}; ${i}++) {`,
    `  const av = v128.load32_splat(${a});`,
    `  c00 = fmadd(av, v128.load(${b}), c00); c01 = fmadd(av, v128.load(${b}, 16), c01);`,
    `  ${b} += ${db}; ${a} += ${da};`,
    '}',
  ],
};

const check = process.argv.includes('--check');
const dir = 'assembly';
let stale = 0,
  regions = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts'))) {
  const full = path.join(dir, file),
    lines = readFileSync(full, 'utf8').split('\n'),
    out = [];
  for (let l = 0; l < lines.length; l++) {
    out.push(lines[l]);
    const m = /^(\s*)\/\/ >>> (tile\w+)((?: \w+=\S+)*)$/.exec(lines[l]);
    if (!m) continue;
    const [, indent, tile, args] = m;
    if (!TILES[tile]) throw new Error(`${full}:${l + 1}: unknown tile ${tile}`);
    const params = Object.fromEntries(
      args
        .trim()
        .split(' ')
        .map((kv) => kv.split('=')),
    );
    const end = lines.findIndex((x, k) => k > l && x.trim() === `// <<< ${tile}`);
    if (end < 0) throw new Error(`${full}:${l + 1}: no closing // <<< ${tile}`);
    const body = TILES[tile](params).map((x) => indent + x);
    if (lines.slice(l + 1, end).join('\n') !== body.join('\n')) {
      stale++;
      if (check) console.error(`${full}:${l + 1}: ${tile} region differs from what scripts/gen-tiles.mjs writes`);
    }
    out.push(...body);
    l = end - 1;
    regions++;
  }
  if (!check) writeFileSync(full, out.join('\n'));
}
if (check && stale) process.exit(1);
console.log(
  `${regions} tile regions ${check ? 'checked' : 'written'}${stale ? `, ${stale} ${check ? 'stale' : 'rewritten'}` : ''}`,
);
