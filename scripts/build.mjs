// Bundles the TypeScript sources into dist/ (ESM, no source maps: readable Node code, minified browser code).
//   Node (the `node` export condition): index.js, cli.js and the pool workers worker.js, train-worker.js;
//     dependencies stay imports, as a library's should.
//   Browsers (the `browser` and `default` conditions): vit-wasm.browser.js, ONE minified file with its
//     dependencies, the kernels' wasm and both worker scripts inside it, so no bundler, server or page
//     has to find another file. The workers are also written out on their own (worker.browser.js,
//     train-worker.browser.js) for pages whose Content-Security-Policy forbids blob: workers.
//   coi-serviceworker.js: threads on static hosts that cannot send COOP/COEP headers.
// Run after build:wasm (it reads build/kernels-wasm.ts).
import { copyFileSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });

const common = { bundle: true, target: 'es2022', logLevel: 'warning', legalComments: 'none' };

// Node
const node = { ...common, format: 'esm', platform: 'neutral', external: ['node:*'] };
await build({
  ...node,
  entryPoints: {
    index: 'src/index.ts',
    cli: 'src/cli/cli.ts',
    presets: 'src/io/presets.ts',
    kernels: 'src/runtime/kernels.ts',
    train: 'src/train/create.ts', // createTrainer, for bench/ (ab-train*.mjs, train-vs-torch.mjs)
    'guide-data': 'src/cli/guide-data.ts',
    mnist: 'src/cli/mnist.ts',
    'train-cli': 'src/cli/train-cli.ts',
  },
  outdir: 'dist',
  packages: 'external',
  splitting: true,
  chunkNames: 'shared-[hash]',
});
await build({
  ...node,
  entryPoints: { worker: 'workers/worker.ts', 'train-worker': 'workers/train-worker.ts' },
  outdir: 'dist',
  mainFields: ['module', 'main'],
});

// Browsers: imports of platform.js (src/platform/platform.ts) get src/platform/platform.browser.ts; any `node:` import left is a build error.
const browserPlatform = {
  name: 'browser-platform',
  setup(b) {
    b.onResolve({ filter: /(^|\/)platform\.js$/ }, (a) => ({
      path: path.join(a.resolveDir, a.path.replace(/platform\.js$/, 'platform.browser.ts')),
    }));
  },
};
const embeddedWorkers = (sources) => ({
  name: 'embedded-workers',
  setup(b) {
    b.onResolve({ filter: /^vit-wasm:embedded-workers$/ }, () => ({ path: 'embedded-workers', namespace: 'vit-wasm' }));
    b.onLoad({ filter: /.*/, namespace: 'vit-wasm' }, () => ({
      contents:
        `export const WORKER_SOURCE = ${JSON.stringify(sources.worker)};\n` +
        `export const TRAIN_WORKER_SOURCE = ${JSON.stringify(sources.trainWorker)};\n`,
      loader: 'js',
    }));
  },
});
const browser = { ...common, platform: 'browser', minify: true, mainFields: ['browser', 'module', 'main'] };
// Workers are classic scripts (IIFE): a classic Worker starts from a Blob URL in every browser.
const workerOf = async (entry) =>
  (
    await build({
      ...browser,
      format: 'iife',
      entryPoints: [entry],
      write: false,
      plugins: [browserPlatform, embeddedWorkers({ worker: '', trainWorker: '' })],
    })
  ).outputFiles[0].text;
const sources = { worker: await workerOf('workers/worker.ts'), trainWorker: await workerOf('workers/train-worker.ts') };
await build({
  ...browser,
  format: 'esm',
  entryPoints: { 'vit-wasm.browser': 'src/index.ts' },
  outdir: 'dist',
  plugins: [browserPlatform, embeddedWorkers(sources)],
});
writeFileSync('dist/worker.browser.js', sources.worker);
writeFileSync('dist/train-worker.browser.js', sources.trainWorker);
copyFileSync('src/platform/coi-serviceworker.js', 'dist/coi-serviceworker.js');

// The guide (guide/): a static folder, served by `vit-wasm guide` or any static host. Everything it
// loads is in it: the page, its script, the library file beside it (a copy of dist/vit-wasm.browser.js,
// imported as any page would), the MNIST model and digits. The published package leaves the copies
// out and `vit-wasm guide` serves the originals in their place.
const libraryBeside = {
  name: 'library-beside',
  setup(b) {
    b.onResolve({ filter: /\/src\/index\.js$/ }, () => ({ path: './vit-wasm.browser.js', external: true }));
  },
};
await build({
  ...browser,
  format: 'esm',
  entryPoints: { main: 'guide/main.ts' },
  outdir: 'dist/guide',
  plugins: [libraryBeside],
});
copyFileSync('dist/vit-wasm.browser.js', 'dist/guide/vit-wasm.browser.js');
copyFileSync('guide/index.html', 'dist/guide/index.html');
copyFileSync('src/platform/coi-serviceworker.js', 'dist/guide/coi-serviceworker.js');
cpSync('assets/mnist-vit', 'dist/guide/model', { recursive: true });
cpSync('assets/digits', 'dist/guide/digits', { recursive: true });
// the digits step 14 trains on, when the mnist package (a devDependency) is there to make them
try {
  const { guideTrainingFiles } = await import('../dist/guide-data.js');
  mkdirSync('dist/guide/train', { recursive: true });
  for (const [name, data] of Object.entries(guideTrainingFiles())) writeFileSync(`dist/guide/train/${name}`, data);
} catch (e) {
  console.warn(`dist/guide/train/ not written (${e.message}): the guide's training step will say what to install`);
}

const kb = (f) => `${(readFileSync(f).length / 1024).toFixed(1)} KB`;
const guideBytes = readdirSync('dist/guide', { recursive: true })
  .map((f) => path.join('dist/guide', f))
  .filter((f) => statSync(f).isFile())
  .reduce((n, f) => n + statSync(f).size, 0);
console.log(`dist/guide/ ${(guideBytes / 1024).toFixed(0)} KB in all (main.js ${kb('dist/guide/main.js')})`);
console.log(
  `dist/vit-wasm.browser.js ${kb('dist/vit-wasm.browser.js')} (workers ${(sources.worker.length / 1024).toFixed(1)} + ` +
    `${(sources.trainWorker.length / 1024).toFixed(1)} KB inside), dist/index.js ${kb('dist/index.js')}`,
);
