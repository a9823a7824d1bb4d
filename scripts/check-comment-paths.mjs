// Every repository path a comment or doc names must exist: `src/…`, `assembly/…`, `workers/…`,
// `scripts/…`, `bench/…`, `tests/…`, `guide/…`, `docs/…` in the code's comments and in the
// Markdown files. A file moved without its mentions fails `npm run lint` here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOTS = ['src', 'assembly', 'workers', 'scripts', 'bench', 'tests', 'guide', 'docs'];
const scanned = (dir) =>
  existsSync(dir)
    ? readdirSync(dir, { withFileTypes: true, recursive: true })
        .filter((e) => e.isFile() && /\.(ts|mts|mjs|js|cjs|md)$/.test(e.name))
        .map((e) => path.join(e.parentPath, e.name))
        .filter((f) => !f.includes('fixtures') && !f.includes(`bench${path.sep}results`))
    : [];
const files = [...ROOTS.flatMap(scanned), ...readdirSync('.').filter((f) => /\.(md|cjs|ts)$/.test(f)), '.ci/run'];
// a path: one of the roots, then path characters; it ends before punctuation that ends a sentence
const PATH = new RegExp(`(?<![\\w./@-])((?:${ROOTS.join('|')})/[\\w./*{},-]*[\\w*}])`, 'g');
// the parts of a code file a reader reads as prose: // and /* */ comments
const comments = (text) => [...text.matchAll(/\/\/[^\n]*|\/\*[\s\S]*?\*\//g)].map((m) => m[0]).join('\n');

/** Whether `p` names something that exists: a file, a folder, or (with * or {a,b}) something matching. */
function exists(p) {
  if (p.includes('{')) {
    const [pre, alts, post] = p.split(/[{}]/);
    return alts.split(',').every((a) => exists(`${pre}${a}${post}`));
  }
  if (!p.includes('*')) return existsSync(p.replace(/[.,]$/, ''));
  const dir = p.slice(0, p.lastIndexOf('/', p.indexOf('*')));
  const re = new RegExp(`^${p.replace(/[.+?^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}`);
  return existsSync(dir) && readdirSync(dir, { recursive: true }).some((f) => re.test(path.join(dir, f)));
}

let bad = 0;
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const prose = /\.md$/.test(file) || file === '.ci/run' ? text : comments(text);
  for (const [, p] of prose.matchAll(PATH)) {
    if (exists(p)) continue;
    bad++;
    console.error(`${file}: names ${p}, which does not exist`);
  }
}
if (bad) process.exit(1);
console.log(`every path named in comments and docs exists (${files.length} files)`);
