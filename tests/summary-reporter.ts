// Ends every run with one plain line, "tests: N passed, N failed[, N skipped]", for CI logs, and
// after it where the skipped tests are and why, for a newcomer whose fresh clone skipped some.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';
import { CHROMIUM } from '../scripts/chromium.mjs';

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0,
      failed = 0;
    const skipped = new Map<string, number>();
    for (const m of modules) {
      for (const t of m.children.allTests()) {
        const s = t.result().state;
        if (s === 'passed') passed++;
        else if (s === 'failed') failed++;
        else {
          const file = path.relative(process.cwd(), m.moduleId);
          skipped.set(file, (skipped.get(file) ?? 0) + 1);
        }
      }
      if (m.state() === 'failed' && m.children.size === 0) failed++; // a file that failed to load
    }
    const nSkipped = [...skipped.values()].reduce((a, b) => a + b, 0);
    // the browser suites are the ones that skip themselves (tests/chromium.ts): say so, and the fix
    // the plain line alone (CI reads it), then where the skipped ones are and why
    console.log(`\ntests: ${passed} passed, ${failed} failed${nSkipped ? `, ${nSkipped} skipped` : ''}`);
    if (!nSkipped) return;
    // the browser suites are the ones that skip themselves (tests/chromium.ts): say so, and the fix
    const why = existsSync(CHROMIUM)
      ? ''
      : `: no ${CHROMIUM}, so the browser tests did not run (apt-get install -y chromium)`;
    console.log(`skipped: ${[...skipped].map(([f, n]) => `${f} ${n}`).join(', ')}${why}`);
  }
}
