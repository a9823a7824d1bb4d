// Tests vit-wasm as a user gets it, from the packed tarball (not the checkout):
//   1. the tarball: LICENSE, no source maps, no `prepare`, the size budget (README, "Package"), publint, attw;
//   2. the CLI installed with `npm install --omit=dev` into an empty folder: every documented command;
//   3. each app in examples/ (esbuild, Vite, webpack, no bundler), installed from the tarball, built,
//      its output served as static files with and without COOP/COEP, and run headless in Chromium,
//      Firefox ESR and WebKitGTK (scripts/browsers.mjs): the digit must be read as a 7 with Node's
//      score to the bit for the same kernel build, threads on when isolated and off (saying why) when
//      not (WebKitGTK: always off, for want of SharedArrayBuffer), no page error, and no request
//      leaving the local server. The Vite dev server and the service worker for static hosts
//      (examples/no-bundler) are run too; examples/image-search (scripts/package-search.mjs) embeds
//      five photos with a small CLIPModel and searches them by words: Node's ranking to the bit;
//   4. examples/deno-bun: the same classification in Node, Deno 2 and Bun (the npm packages' binaries),
//      to the bit, on 2 workers, and the CLI's demo in Deno and Bun; examples/node-bundle: a Node app
//      bundled with esbuild --platform=node runs on 2 workers, nothing copied by hand.
// Needs network access to the npm registry (the examples' bundlers, deno and bun) and the browsers
// (chromium, firefox-esr, webkit2gtk-driver, xvfb; in CI a missing one fails the run).
//   node scripts/test-package.mjs [--tarball FILE] [--only esbuild,vite,…] [--keep] [--screenshots DIR]
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { enginesHere } from './browsers.mjs';
import { expectDigit, openPage as open, serve, startViteDev } from './package-pages.mjs';
import { imageSearchChecks } from './package-search.mjs';

const ROOT = path.resolve(fileURLToPath(new URL('..', import.meta.url)));
/** Size budgets of the tarball (npm pack's sizes), also stated in the README. */
const BUDGET = { packedKB: 1250, unpackedKB: 2500 };

const { values: opts } = parseArgs({
  options: {
    tarball: { type: 'string' },
    only: { type: 'string' },
    keep: { type: 'boolean' },
    screenshots: { type: 'string' },
  },
});
const only = opts.only ? new Set(opts.only.split(',')) : null;
const work = mkdtempSync(path.join(tmpdir(), 'vit-wasm-package-'));
let passed = 0,
  failed = 0;

async function check(name, fn) {
  if (only && !only.has(name.split(':')[0])) return;
  const t0 = performance.now();
  try {
    await fn();
    passed++;
    console.log(`ok   ${name} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e.message}`);
  }
}
function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const execFileP = promisify(execFile);
/** Runs a command; resolves to { code, stdout, stderr } (never rejects on a non-zero exit). */
async function run(cmd, args, cwd, extra = {}) {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { cwd, maxBuffer: 64 << 20, timeout: 600_000, ...extra });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
async function ok(cmd, args, cwd) {
  const r = await run(cmd, args, cwd);
  if (r.code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`.slice(0, 3000));
  return r;
}
const npm = (args, cwd) => ok('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], cwd);

// ---- 1. the tarball ----
let tarball = opts.tarball && path.resolve(opts.tarball);
if (!tarball) {
  const { stdout } = await npm(['pack', '--ignore-scripts', '--json', '--pack-destination', work], ROOT);
  tarball = path.join(work, JSON.parse(stdout)[0].filename);
}
console.log(`testing ${tarball}`);

await check('tarball: contents, manifest and size', async () => {
  const { stdout } = await npm(['pack', '--dry-run', '--json', '--ignore-scripts'], ROOT);
  const [info] = JSON.parse(stdout);
  const files = info.files.map((f) => f.path);
  assert(files.includes('LICENSE'), 'no LICENSE');
  assert(!files.some((f) => f.endsWith('.map')), `source maps: ${files.filter((f) => f.endsWith('.map'))}`);
  for (const f of [
    'dist/index.js',
    'dist/vit-wasm.browser.js',
    'dist/worker.js',
    'dist/worker.browser.js',
    'dist/coi-serviceworker.js',
    'dist/types/src/index.d.ts',
    'assets/mnist-vit/model.safetensors',
    'bin/vit-wasm.js',
  ])
    assert(files.includes(f), `missing ${f}`);
  const manifest = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
  assert(!manifest.scripts.prepare, 'package.json has a prepare script');
  const packed = statSync(tarball).size / 1024,
    unpacked = info.unpackedSize / 1024;
  console.log(
    `     ${info.entryCount} files, ${packed.toFixed(0)} KB packed, ${unpacked.toFixed(0)} KB unpacked ` +
      `(budget ${BUDGET.packedKB} / ${BUDGET.unpackedKB} KB); dist/vit-wasm.browser.js ${(statSync(path.join(ROOT, 'dist/vit-wasm.browser.js')).size / 1024).toFixed(1)} KB`,
  );
  assert(packed <= BUDGET.packedKB, `packed ${packed.toFixed(0)} KB is over the budget of ${BUDGET.packedKB} KB`);
  assert(
    unpacked <= BUDGET.unpackedKB,
    `unpacked ${unpacked.toFixed(0)} KB is over the budget of ${BUDGET.unpackedKB} KB`,
  );
});

await check('tarball: publint --strict and arethetypeswrong (ESM-only profile) pass', async () => {
  const bin = (n) => path.join(ROOT, 'node_modules', '.bin', n);
  await ok(bin('publint'), ['run', tarball, '--strict'], ROOT);
  await ok(bin('attw'), [tarball, '--profile', 'esm-only'], ROOT);
});

// ---- 2. the CLI, installed as a user installs it ----
const app = path.join(work, 'cli-user');
mkdirSync(app);
await ok('npm', ['init', '-y'], app);
await npm(['install', '--omit=dev', tarball], app);
// node_modules/.bin/vit-wasm is what `npx vit-wasm` runs (npx itself would add npm's own warnings to stderr)
const vit = (args) => run(path.join(app, 'node_modules', '.bin', 'vit-wasm'), args, app);

await check('cli: --help, demo, classify, init, export-onnx, quantize, bench', async () => {
  let r = await vit(['--help']);
  assert(r.code === 0 && r.stdout.includes('vit-wasm demo'), `--help: exit ${r.code} ${r.stderr}`);
  r = await vit(['demo']);
  assert(r.code === 0 && /12 of 12 right/.test(r.stdout), `demo: exit ${r.code}\n${r.stdout}${r.stderr}`);
  r = await vit(['classify', 'node_modules/vit-wasm/assets/digits/digit-07-label-7.png', '--json', '--top', '1']);
  assert(
    r.code === 0 && JSON.parse(r.stdout)[0].predictions[0].label === '7',
    `classify: exit ${r.code}\n${r.stdout}${r.stderr}`,
  );
  r = await vit(['init', '--preset', 'deit-tiny', '--out', 'tiny']);
  assert(r.code === 0, `init: ${r.stderr}`);
  r = await vit(['export-onnx', '--model', 'tiny', '--out', 'tiny.onnx']);
  assert(r.code === 0 && statSync(path.join(app, 'tiny.onnx')).size > 1e6, `export-onnx: ${r.stderr}`);
  r = await vit(['quantize', '--model', 'tiny', '--out', 'tiny-int8']);
  assert(
    r.code === 0 &&
      statSync(path.join(app, 'tiny-int8/model.safetensors')).size <
        0.3 * statSync(path.join(app, 'tiny/model.safetensors')).size,
    `quantize: exit ${r.code}\n${r.stdout}${r.stderr}`,
  );
  r = await vit(['bench', '--model', 'tiny', '--threads', '1', '--runs', '1']);
  assert(r.code === 0 && /vit-wasm\s+1\s+1\s/.test(r.stdout), `bench: exit ${r.code}\n${r.stdout}${r.stderr}`);
});

await check('cli: commands that need an optional package say which, in one line, exit 2', async () => {
  for (const [args, pkgs] of [
    [['train', '--dataset', 'mnist', '--out', 'x'], 'mnist'],
    [['eval', '--dataset', 'mnist', '--model', 'tiny'], 'mnist'],
    [['bench', '--model', 'tiny', '--peers'], 'onnxruntime-web onnxruntime-node'],
  ]) {
    const r = await vit(args);
    const lines = r.stderr.trim().split('\n');
    assert(
      r.code === 2 && lines.length === 1 && lines[0].endsWith(`npm install ${pkgs}`),
      `${args[0]}: exit ${r.code}, stderr:\n${r.stderr}`,
    );
  }
});

await check('cli: the library from the installed package in Node', async () => {
  const r = await ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
    import { loadModel } from 'vit-wasm';
    const m = await loadModel('node_modules/vit-wasm/assets/mnist-vit', { threads: 2 });
    const [top] = await m.classify('node_modules/vit-wasm/assets/digits/digit-04-label-4.png');
    console.log(JSON.stringify({ label: top.label, runtime: m.runtime }));
    await m.dispose();`,
    ],
    app,
  );
  const res = JSON.parse(r.stdout);
  assert(res.label === '4' && res.runtime.threads === 2 && res.runtime.workers, r.stdout);
});

// zero-shot, index and search from the installed package (its tokenizer a runtime dependency)
await check('cli: zero-shot, index and search with a small CLIPModel', async () => {
  const clip = path.join(app, 'clip');
  cpSync(path.join(ROOT, 'tests/fixtures/zero-shot/h40-clip-text'), clip, { recursive: true });
  const photos = path.join(app, 'photos');
  cpSync(path.join(ROOT, 'tests/fixtures/images'), photos, {
    recursive: true,
    filter: (f) => !/\.(f32|json)$/.test(f),
  });
  const bin = path.join(app, 'node_modules', '.bin', 'vit-wasm');
  let r = await ok(
    bin,
    ['zero-shot', '--model', clip, '--labels', 'cat,dog,car', path.join(photos, 'chelsea.png'), '--json'],
    app,
  );
  const out = JSON.parse(r.stdout);
  assert(
    out[0].predictions.length === 3 && Math.abs(out[0].predictions.reduce((a, p) => a + p.score, 0) - 1) < 1e-6,
    r.stdout,
  );
  r = await run(bin, ['index', photos, '--model', clip, '--out', path.join(app, 'index')], app);
  assert(/indexed \d+ images/.test(r.stdout), `index: ${r.stdout}${r.stderr}`);
  r = await ok(bin, ['search', path.join(app, 'index'), 'a photo of a cat', '--top', '2'], app);
  assert(r.stdout.trim().split('\n').length === 2, `search: ${r.stdout}`);
});

await check('cli: vit-wasm guide serves the whole guide from the installed package', async () => {
  const child = spawn(path.join(app, 'node_modules', '.bin', 'vit-wasm'), ['guide', '--port', '0'], {
    cwd: app,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => {
        out += d;
        const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
        if (m) resolve(m[0]);
      });
      child.on('exit', (code) => reject(new Error(`vit-wasm guide exited (${code}): ${out}`)));
    });
    // the package leaves out the guide's copies of the model, digits and library: the server maps them
    for (const f of [
      '',
      'main.js',
      'vit-wasm.browser.js',
      'model/config.json',
      'model/model.safetensors',
      'digits/digit-07-label-7.png',
    ]) {
      const r = await fetch(url + f);
      assert(r.ok, `${url}${f}: HTTP ${r.status}`);
      assert(r.headers.get('cross-origin-embedder-policy') === 'require-corp', `${url}${f}: no COEP header`);
    }
  } finally {
    child.kill();
  }
});

// ---- 3. the examples in a browser ----
const openPage = (url, o = {}) => open(url, { ...o, screenshots: opts.screenshots });

/** Node's score for the example's digit from the installed package, per kernel build (the page's bits must equal it). */
const nodeScores = {};
async function nodeScore(dir, simd) {
  nodeScores[simd] ??= ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { loadModel } from 'vit-wasm';
      const m = await loadModel('node_modules/vit-wasm/assets/mnist-vit', { threads: 1, simd: '${simd}' });
      const [top] = await m.classify('node_modules/vit-wasm/assets/digits/digit-07-label-7.png', { topK: 1 });
      console.log(top.score); await m.dispose();`,
    ],
    dir,
  ).then((r) => Number(r.stdout.trim()));
  return nodeScores[simd];
}

const EXAMPLES = { esbuild: 'out', vite: 'dist', webpack: 'dist', 'no-bundler': 'site' };
const installed = {};
async function installExample(name) {
  if (installed[name]) return installed[name];
  const dir = path.join(work, 'examples', name);
  cpSync(path.join(ROOT, 'examples', name), dir, {
    recursive: true,
    filter: (s) => !/node_modules|[/\\](out|dist|site|public)$/.test(s),
  });
  cpSync(path.join(ROOT, 'examples', 'copy-assets.mjs'), path.join(work, 'examples', 'copy-assets.mjs'));
  await npm(['install', tarball], dir); // the tarball in place of the registry's vit-wasm, the bundler from the registry
  installed[name] = dir;
  return dir;
}

// Deno 2 and Bun run the Node build: the same classification, to the bit, on 2 workers; the CLI too
await check(
  'deno-bun: classify.mjs in node, deno and bun (2 workers, the same bits), the CLI demo in deno and bun',
  async () => {
    const dir = await installExample('deno-bun'); // the tarball, and the deno and bun binaries from the registry
    const bin = (b) => path.join(dir, 'node_modules', '.bin', b);
    const results = {};
    for (const [name, cmd, args] of [
      ['node', process.execPath, ['classify.mjs']],
      ['deno', bin('deno'), ['run', '-A', 'classify.mjs']],
      ['bun', bin('bun'), ['classify.mjs']],
    ]) {
      const r = await ok(cmd, args, dir);
      results[name] = JSON.parse(r.stdout.trim().split('\n').at(-1));
      const { label, runtime } = results[name];
      assert(
        label === '4' &&
          runtime.threads === 2 &&
          runtime.workers &&
          runtime.sharedMemory &&
          runtime.simd === 'relaxed' &&
          runtime.engine.toLowerCase().startsWith(name),
        `${name}: ${r.stdout}`,
      );
    }
    assert(
      results.deno.bits === results.node.bits && results.bun.bits === results.node.bits,
      `the scores' bits differ: ${JSON.stringify(results)}`,
    );
    for (const [name, cmd, args] of [
      ['deno', bin('deno'), ['run', '-A', 'node_modules/vit-wasm/bin/vit-wasm.js', 'demo']],
      ['bun', bin('bunx'), ['vit-wasm', 'demo']],
    ]) {
      const r = await ok(cmd, args, dir);
      assert(r.stdout.includes('12 of 12 right'), `${name} demo: ${r.stdout}`);
    }
  },
);

// a Node app that bundles vit-wasm (esbuild --platform=node) runs with nothing copied by hand
await check(
  'node-bundle: an app bundled with esbuild --platform=node finds its workers and classifies on 2 threads',
  async () => {
    const dir = await installExample('node-bundle');
    await ok('npm', ['run', 'build', '--silent'], dir);
    const r = await ok(process.execPath, ['out/app.mjs'], dir);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1));
    assert(res.label === '4' && res.runtime.threads === 2 && res.runtime.workers, r.stdout);
  },
);

let engines = [];
try {
  engines = enginesHere();
} catch (e) {
  failed++;
  console.log(`FAIL examples: ${e.message}`);
}
if (engines.length) {
  for (const [name, outDir] of Object.entries(EXAMPLES)) {
    await check(`${name}: npm run build`, async () => {
      const dir = await installExample(name);
      await ok('npm', ['run', 'build', '--silent'], dir);
      for (const f of ['index.html', 'mnist-vit/model.safetensors'])
        assert(existsSync(path.join(dir, outDir, f)), `${outDir}/${f} missing after the build`);
    });
    if (!installed[name]) continue;
    const site = path.join(installed[name], outDir);
    for (const engine of engines)
      for (const headers of [true, false]) {
        await check(`${name}: ${engine}, build output served ${headers ? 'with' : 'without'} COOP/COEP`, async () => {
          const s = await serve(site, headers);
          try {
            // no-bundler's page loads coi-serviceworker.js, which isolates it even without the headers
            const isolated = headers || name === 'no-bundler';
            const r = await openPage(`${s.origin}/`, {
              engine,
              waitIsolated: name === 'no-bundler',
              shot: `${name}-${headers ? 'coi' : 'plain'}`,
            });
            expectDigit(r, {
              engine,
              isolated,
              node: await nodeScore(installed[name], r.result?.runtime?.simd ?? 'simd'),
            });
          } finally {
            await s.stop();
          }
        });
      }
  }
  await imageSearchChecks({ ROOT, engines, check, installExample, ok, openPage, serve, assert });
  await check(`vite: dev server (no config), in ${engines.join(', ')}`, async () => {
    const dir = await installExample('vite');
    await ok('npm', ['run', 'predev', '--silent'], dir);
    const dev = await startViteDev(dir);
    try {
      for (const engine of engines) {
        const r = await openPage(dev.url, { engine, shot: 'vite-dev' });
        expectDigit(r, { engine, isolated: false, node: await nodeScore(dir, r.result?.runtime?.simd ?? 'simd') });
      }
    } finally {
      dev.stop();
    }
  });
}

if (!opts.keep) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
console.log(`\npackage: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
