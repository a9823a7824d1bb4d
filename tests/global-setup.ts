// Before any test file runs: rebuild what an edit made stale (scripts/ensure-built.mjs), because the
// pool loads dist/worker.js and the browser tests load dist/, not src/. So `npx vitest run
// tests/<one>.test.ts` right after editing src/, workers/ or assembly/ tests the edit.
import { ensureBuilt } from '../scripts/ensure-built.mjs';

export default function setup(): void {
  ensureBuilt();
}
