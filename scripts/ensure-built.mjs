// Rebuilds what is stale, judged by content (a hash of the sources, not file times, which a
// checkout or a copy resets): the kernels (asc, three builds; ~20 s) when assembly/ changed, and
// the bundles (esbuild; well under a second) when src/, workers/, guide/ or the kernels changed.
// Run by the vitest global setup (so one test file after an edit tests the edit), by `npm start`
// and by bin/vit-wasm.js in a checkout. `npm run build` rebuilds everything (and the type
// declarations) regardless.
import { execSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

/** One digest of every file under `entries` (files or folders, relative to the root), names included. */
function digest(entries) {
  const h = createHash('sha256');
  const add = (rel) => {
    const full = path.join(root, rel);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const e of readdirSync(full).sort()) add(path.join(rel, e));
      return;
    }
    h.update(`${rel}\0`);
    h.update(readFileSync(full));
  };
  for (const e of entries) add(e);
  return h.digest('hex');
}

const STAGES = [
  {
    what: 'the kernels (assembly/ changed)',
    sources: ['assembly', 'asconfig.json', 'bench/ceiling.ts', 'bench/asconfig.json', 'scripts/embed-wasm.mjs'],
    outputs: [
      'build/kernels-wasm.ts',
      'build/jpeg-wasm.ts',
      'build/release/kernels.wasm',
      'build/relaxed/kernels.wasm',
      'build/single/kernels.wasm',
    ],
    stamp: 'build/.sources-sha256',
    command: 'npm run build:wasm',
  },
  {
    what: 'the bundles (src/, workers/ or guide/ changed)',
    sources: [
      'src',
      'workers',
      'guide',
      'build/kernels-wasm.ts',
      'build/jpeg-wasm.ts',
      'scripts/build.mjs',
      'assets',
      'package.json',
    ],
    outputs: ['dist/index.js', 'dist/cli.js', 'dist/worker.js', 'dist/train-worker.js', 'dist/vit-wasm.browser.js'],
    stamp: 'dist/.sources-sha256',
    command: 'node scripts/build.mjs',
  },
];

/**
 * Rebuilds each stale stage in order; `log` says what and why. Returns the stages it rebuilt.
 * @param {{ log?: (line: string) => void }} [opts]
 */
export function ensureBuilt({ log = (line) => console.log(line) } = {}) {
  const rebuilt = [];
  for (const s of STAGES) {
    const sum = digest(s.sources);
    const stamp = path.join(root, s.stamp);
    const fresh =
      s.outputs.every((o) => existsSync(path.join(root, o))) &&
      existsSync(stamp) &&
      readFileSync(stamp, 'utf8') === sum;
    if (fresh) continue;
    log(`vit-wasm: rebuilding ${s.what}: ${s.command}`);
    execSync(s.command, { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
    // the build may have replaced the folder: the stamp is written after it, of the sources it read
    writeFileSync(stamp, sum);
    rebuilt.push(s.what);
  }
  return rebuilt;
}

/** Marks every stage fresh for the sources as they are now: the end of `npm run build`, which built them all. */
export function stampBuilt() {
  for (const s of STAGES) writeFileSync(path.join(root, s.stamp), digest(s.sources));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  if (process.argv.includes('--stamp')) stampBuilt();
  else ensureBuilt();
}
