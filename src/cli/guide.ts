/**
 * `vit-wasm guide`: serves the live guide (dist/guide/, built by `npm run build`) on 127.0.0.1 with
 * the COOP/COEP headers that give it threads, and prints its URL. The folder is static: any host
 * can serve it (without those headers it runs on one thread, or loads coi-serviceworker.js).
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { packageFile } from '../platform/paths.js';
import { guideTrainingFiles } from './guide-data.js';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.json': 'application/json',
  '.png': 'image/png',
  '.safetensors': 'application/octet-stream',
};

/** Folders of dist/guide/ that the published package does not carry, and where they come from instead. */
const ALIASES: [string, string][] = [
  ['/model/', 'assets/mnist-vit/'],
  ['/digits/', 'assets/digits/'],
  ['/vit-wasm.browser.js', 'dist/vit-wasm.browser.js'],
];

/** The content type of `file`, and COOP/COEP (which give the page threads) unless `plain`. */
function headersFor(file: string, plain?: boolean): Record<string, string> {
  const headers: Record<string, string> = { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' };
  if (!plain)
    Object.assign(headers, {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
  return headers;
}

let training: Record<string, Uint8Array | string> | null = null;

/** The training digits (src/cli/guide-data.ts), made from the mnist package on first request when the build did not write them. */
function serveTraining(name: string, res: import('node:http').ServerResponse, plain?: boolean): void {
  try {
    training ??= guideTrainingFiles();
  } catch (e) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end((e as Error).message);
    return;
  }
  const data = training[name];
  if (data === undefined) return void res.writeHead(404).end('not found');
  res.writeHead(200, headersFor(name, plain)).end(data);
}

/** Runs the guide's server until the process is stopped (prints its URL once it listens). */
export async function guideCommand(argv: string[], Usage: new (m: string) => Error): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      port: { type: 'string' },
      open: { type: 'boolean' },
      plain: { type: 'boolean' },
      model: { type: 'string' },
    },
  });
  // --model DIR: that model directory is served at /user-model/ and the page opened on it
  const userModel = values.model === undefined ? null : path.resolve(values.model);
  if (userModel && !existsSync(path.join(userModel, 'config.json'))) {
    throw new Error(`vit-wasm: guide: ${userModel} has no config.json (give a Hugging Face-layout model directory)`);
  }
  const port = values.port === undefined ? 8080 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Usage(`--port must be 0…65535, got '${values.port}'`);
  const root = fileURLToPath(packageFile('dist/guide/'));
  if (!existsSync(path.join(root, 'index.html'))) throw new Error(`vit-wasm: ${root} is missing: run npm run build`);
  const server = createServer((req, res) => {
    let rel: string;
    try {
      rel = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      res.writeHead(400).end();
      return;
    }
    let file = path.join(root, rel);
    if (!file.startsWith(root)) return void res.writeHead(403).end();
    if (userModel && rel.startsWith('/user-model/')) {
      file = path.join(userModel, rel.slice('/user-model/'.length));
      if (!file.startsWith(userModel)) return void res.writeHead(403).end();
    }
    // the installed package leaves the guide's copies of the model and digits out: serve assets/
    for (const [prefix, dir] of ALIASES) {
      if (!existsSync(file) && rel.startsWith(prefix)) {
        const to = fileURLToPath(packageFile(dir));
        file = prefix.endsWith('/') ? path.join(to, rel.slice(prefix.length)) : to;
      }
    }
    if (rel.startsWith('/train/') && !existsSync(file))
      return void serveTraining(rel.slice('/train/'.length), res, values.plain);
    if (existsSync(file) && statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!existsSync(file) || !statSync(file).isFile()) return void res.writeHead(404).end('not found');
    res.writeHead(200, headersFor(file, values.plain)).end(readFileSync(file));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) =>
      reject(
        new Error(
          `vit-wasm: guide: cannot listen on 127.0.0.1:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (try --port 0)' : e.message}`,
        ),
      ),
    );
    server.listen(port, '127.0.0.1', resolve);
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/${userModel ? '?model=user-model/' : ''}`;
  console.log(`vit-wasm guide: ${url}${values.plain ? ' (without COOP/COEP: one thread)' : ''}  (Ctrl-C stops it)`);
  if (values.open) {
    const cmd = process.platform === 'darwin' ? 'open' : process.platform === 'win32' ? 'explorer' : 'xdg-open';
    spawn(cmd, [url], { stdio: 'ignore', detached: true })
      .on('error', () => console.log(`(could not start ${cmd}: open the URL yourself)`))
      .unref();
  }
  await new Promise(() => {}); // serve until stopped
  return 0;
}
