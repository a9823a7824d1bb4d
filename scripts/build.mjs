// Bundles the TypeScript sources into dist/ (ESM):
//   index.js, cli.js       the library and CLI; dependencies stay imports, as a library's should
//   worker.js              the pool worker, self-contained (Node worker_threads and Web Workers load it as is)
//   vit-wasm.browser.js    the library with its dependencies, for a page without a bundler
import { rmSync } from 'node:fs';
import { build } from 'esbuild';

rmSync('dist', { recursive: true, force: true });

const common = { bundle: true, format: 'esm', target: 'es2022', sourcemap: true, logLevel: 'warning', external: ['node:*'] };
await build({ ...common, entryPoints: { index: 'src/index.ts', cli: 'src/cli.ts', presets: 'src/presets.ts', kernels: 'src/kernels.ts', train: 'src/train.ts', mnist: 'src/mnist.ts', 'train-cli': 'src/train-cli.ts' }, outdir: 'dist', platform: 'neutral', packages: 'external' });
await build({ ...common, entryPoints: { worker: 'workers/worker.ts', 'train-worker': 'workers/train-worker.ts', 'vit-wasm.browser': 'src/index.ts' }, outdir: 'dist', platform: 'neutral',
  mainFields: ['module', 'main'] });
