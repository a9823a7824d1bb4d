// The layers of src/, lowest first. Each may import only from the layers before it (and from
// itself); `npm run lint` runs this (dependency-cruiser) so a change that breaks the stack fails CI.
//   platform  what the host gives: files, workers, cores, engine flags, the limits on reading
//   runtime   the kernels (wasm), the shared memory, weight packing, the worker pool and its barrier
//   nn        the network: shapes, weight types, ops, activation plans, forward and backward, trace
//   io        JSON, HTTP, model files, safetensors, checkpoint names and loading, configs, images
//   export, train   what is made from a loaded network: ONNX and quantized copies; training
//   model     the public facade (loadModel, ViTModel)
//   cli       the vit-wasm command
// index.ts re-exports the public API; workers/ are the pool workers' entries; guide/ is a page
// that uses only the public API.
const LAYERS = ['platform', 'runtime', 'nn', 'io', 'export|train', 'model', 'cli'];

const above = (i) => `^src/(${LAYERS.slice(i + 1).join('|')})/`;
const layerRules = LAYERS.slice(0, -1).map((name, i) => ({
  name: `layer-${name.replace('|', '-')}`,
  comment: `src/{${name}}/ may import only from the layers below it: ${LAYERS.slice(0, i).join(', ') || 'none'}`,
  severity: 'error',
  from: { path: `^src/(${name})/` },
  to: { path: [above(i), '^src/index\\.ts$'] },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles: a module never (indirectly) imports itself.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...layerRules,
    {
      name: 'export-and-train-apart',
      comment: 'export/ and train/ are peers: neither imports the other.',
      severity: 'error',
      from: { path: '^src/(export|train)/' },
      to: { path: '^src/(export|train)/', pathNot: '^src/$1/' },
    },
    {
      name: 'src-not-into-entries',
      comment: 'The library never imports the worker entries, the guide, tests or benchmarks.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(workers|guide|tests|bench|scripts)/' },
    },
    {
      name: 'workers-below-model',
      comment: 'A worker entry is a kernel instance: it runs the network, not the facade or the CLI.',
      severity: 'error',
      from: { path: '^workers/' },
      to: { path: ['^src/(model|cli|export)/', '^src/index\\.ts$'] },
    },
    {
      name: 'guide-public-api-only',
      comment: 'The guide is a page like any user\'s: it imports the public API (src/index.ts) only.',
      severity: 'error',
      from: { path: '^guide/' },
      to: { path: '^src/', pathNot: '^src/index\\.ts$' },
    },
    {
      name: 'node-builtins-in-platform-and-cli',
      comment:
        'Node built-ins only where Node is the host: src/platform/platform.ts (swapped for platform.browser.ts in browsers) and the CLI.',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/platform/(platform\\.ts|shims\\.d\\.ts)$', '^src/cli/'] },
      to: { dependencyTypes: ['core'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(build|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.d.ts'] },
  },
};
