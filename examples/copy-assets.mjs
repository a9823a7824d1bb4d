// Puts what an example app serves into its static folder: the MNIST ViT that ships with vit-wasm
// (config.json, model.safetensors, preprocessor_config.json) and one held-out digit to classify,
// plus any files named after the folder (index.html, …). A real app serves its own model the same way.
//   node ../copy-assets.mjs OUT_DIR [FILE...]
import { copyFileSync, cpSync, mkdirSync } from 'node:fs';
import path from 'node:path';

const [out, ...files] = process.argv.slice(2);
if (!out) throw new Error('usage: node copy-assets.mjs OUT_DIR [FILE...]');
const pkg = path.join('node_modules', 'vit-wasm', 'assets');
mkdirSync(out, { recursive: true });
cpSync(path.join(pkg, 'mnist-vit'), path.join(out, 'mnist-vit'), { recursive: true });
copyFileSync(path.join(pkg, 'digits', 'digit-07-label-7.png'), path.join(out, 'digit.png'));
for (const f of files) copyFileSync(f, path.join(out, path.basename(f)));
