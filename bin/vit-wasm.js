#!/usr/bin/env node
import { main } from '../dist/cli.js';

// `vit-wasm … | head`: a closed pipe ends the command quietly
process.stdout.on('error', (e) => { if (e.code === 'EPIPE') process.exit(0); else throw e; });
process.exitCode = await main(process.argv.slice(2));
