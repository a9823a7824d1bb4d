// The package test's image-search example (examples/image-search): installed from the tarball and
// built, the small CLIPModel fixture put at site/clip/ and five photos at site/photos/, opened in each
// engine with and without COOP/COEP (its service worker isolates it either way): the photos embedded,
// a query searched, the ranking and scores Node's to the bit for the kernel build the page ran.
import { cpSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const PHOTOS = ['chelsea.png', 'coffee.png', 'grey.png', 'grey.jpg', 'palette.png'];
const QUERY = 'a photo of a cat';

/** Node's ranking of the photos for QUERY, from the installed package, with kernel build `simd`. */
async function nodeRanking(dir, simd, ok) {
  const r = await ok(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import { loadModel, similarity } from 'vit-wasm';
      const m = await loadModel('site/clip', { threads: 1, simd: '${simd}' });
      const names = ${JSON.stringify(PHOTOS.map((p) => `photos/${p}`))};
      const e = await m.embed(names.map((n) => 'site/' + n));
      const s = similarity(await m.embedText(${JSON.stringify(QUERY)}), e, e.length / names.length);
      console.log(JSON.stringify(names.map((name, i) => ({ name, score: s[i] })).sort((a, b) => b.score - a.score)));
      await m.dispose();`,
    ],
    dir,
  );
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}

/** Registers the example's checks through the package test's `check`. */
export async function imageSearchChecks({ ROOT, engines, check, installExample, ok, openPage, serve, assert }) {
  let dir;
  await check('image-search: npm run build, a CLIPModel at site/clip/', async () => {
    dir = await installExample('image-search');
    await ok('npm', ['run', 'build', '--silent'], dir);
    cpSync(path.join(ROOT, 'tests/fixtures/zero-shot/h40-clip-text'), path.join(dir, 'site', 'clip'), {
      recursive: true,
    });
    mkdirSync(path.join(dir, 'site', 'photos'), { recursive: true });
    for (const p of PHOTOS) cpSync(path.join(ROOT, 'tests/fixtures/images', p), path.join(dir, 'site', 'photos', p));
  });
  if (!dir) return;
  const node = {};
  for (const engine of engines)
    for (const headers of [true, false])
      await check(`image-search: ${engine}, served ${headers ? 'with' : 'without'} COOP/COEP`, async () => {
        const s = await serve(path.join(dir, 'site'), headers);
        try {
          const images = PHOTOS.map((p) => `photos/${p}`).join(',');
          const r = await openPage(`${s.origin}/?images=${images}&q=${encodeURIComponent(QUERY)}`, {
            engine,
            waitIsolated: true,
            shot: `image-search-${headers ? 'coi' : 'plain'}`,
          });
          assert(r.result && !r.result.error, `page error: ${r.result?.error}`);
          assert(r.problems.length === 0, r.problems.join('; '));
          assert(r.result.indexed === PHOTOS.length, `indexed ${r.result.indexed} of ${PHOTOS.length}`);
          const simd = r.result.runtime.simd;
          node[simd] ??= await nodeRanking(dir, simd, ok);
          assert(
            JSON.stringify(r.result.results) === JSON.stringify(node[simd]),
            `ranking ${JSON.stringify(r.result.results)}, Node's (${simd} build) ${JSON.stringify(node[simd])}`,
          );
          // threads where the engine shares memory (the service worker isolates the page either way)
          assert(
            engine === 'webkit' ? !r.result.runtime.workers : r.result.runtime.workers,
            JSON.stringify(r.result.runtime),
          );
        } finally {
          await s.stop();
        }
      });
}
