#!/usr/bin/env node
// In a checkout (scripts/ beside bin/), dist/ is rebuilt first when the sources changed since it was
// built, so the command never runs stale code; the installed package has no scripts/ and skips this.
import { existsSync } from 'node:fs';

const ensure = new URL('../scripts/ensure-built.mjs', import.meta.url);
if (existsSync(ensure)) (await import(ensure.href)).ensureBuilt({ log: (line) => console.error(line) });
const { main } = await import('../dist/cli.js');

// `vit-wasm … | head`: a closed pipe ends the command quietly
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
process.exitCode = await main(process.argv.slice(2));
