// Puts the page, vit-wasm's one browser file and its service worker (threads on static hosts that
// send no COOP/COEP) into site/. The model is yours: a Hugging Face CLIPModel folder (config.json,
// model.safetensors, tokenizer.json or vocab.json + merges.txt, preprocessor_config.json) at
// site/clip/, e.g. openai/clip-vit-base-patch32's files.
//   node build.mjs
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';

mkdirSync('site', { recursive: true });
copyFileSync('index.html', 'site/index.html');
for (const f of ['vit-wasm.browser.js', 'coi-serviceworker.js'])
  copyFileSync(`node_modules/vit-wasm/dist/${f}`, `site/${f}`);
if (!existsSync('site/clip/config.json'))
  console.log('site/ is ready; put a CLIPModel folder at site/clip/ (config.json, model.safetensors, tokenizer.json)');
