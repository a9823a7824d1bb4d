// `vit-wasm guide` for the guide's tests: started on a free port, stopped after the file's tests.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { FIXTURES } from './helpers.js';

const ROOT = path.join(FIXTURES, '../..');
const servers: ChildProcess[] = [];

/** Starts `vit-wasm guide --port 0` (with `extra` arguments) and resolves to its URL. */
export function serveGuide(extra: string[] = []): Promise<string> {
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/vit-wasm.js'), 'guide', '--port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  servers.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /http:\/\/127\.0\.0\.1:\d+\/\S*/.exec(out);
      if (m) resolve(m[0]);
    });
    child.on('exit', (code) => reject(new Error(`vit-wasm guide exited (${code}): ${out}`)));
  });
}

/** Stops every guide server started so far (afterAll). */
export function stopGuides(): void {
  for (const s of servers.splice(0)) s.kill();
}
