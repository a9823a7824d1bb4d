// Every package a file imports must be declared: the library's own code (src/, workers/) in
// dependencies or peerDependencies (what users install), everything else (tests, bench, scripts)
// in any of them. Catches a devDependency imported at run time before a user does.
import { readdirSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const runtime = new Set([...Object.keys(pkg.dependencies ?? {}), ...Object.keys(pkg.peerDependencies ?? {})]);
const any = new Set([...runtime, ...Object.keys(pkg.devDependencies ?? {})]);
const builtins = new Set(builtinModules);
const files = (dir) =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|mjs|js)$/.test(e.name) && !e.parentPath.includes('fixtures'))
    .map((e) => path.join(e.parentPath, e.name));
// static imports (… from, or a bare import at a line's start), dynamic import() calls, and
// importOptional calls (src/platform/optional.ts)
const IMPORT = /(?:from\s+|^\s*import\s+|import\s*\(\s*|importOptional(?:<[^>]*>)?\(\s*)['"]([^'".][^'"]*)['"]/gm;
let bad = 0;
for (const [dirs, allowed, what] of [
  [['src', 'workers'], runtime, 'dependencies or peerDependencies'],
  [['tests', 'bench', 'scripts'], any, 'package.json'],
]) {
  for (const file of dirs.flatMap(files)) {
    for (const [, spec] of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      if (spec.startsWith('node:') || builtins.has(spec) || spec === 'vit-wasm' || spec.startsWith('vit-wasm:'))
        continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0];
      if (!allowed.has(name)) {
        bad++;
        console.error(`${file}: imports '${spec}', which is not in ${what}`);
      }
    }
  }
}
if (bad) process.exit(1);
console.log('every import is declared in package.json');
