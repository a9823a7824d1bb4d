// `npm start` in a fresh clone: build first when dist/ is missing (npm install no longer builds:
// the published package must carry no prepare script).
import { execSync } from 'node:child_process';
import { existsSync } from 'node:fs';

if (!existsSync('dist/cli.js') || !existsSync('dist/guide/index.html')) {
  console.log('dist/ is missing: building it first (npm run build)');
  execSync('npm run build', { stdio: 'inherit' });
}
