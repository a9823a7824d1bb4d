import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    globalSetup: ['./tests/global-setup.ts'],
    testTimeout: 60_000,
    // every op split and every forward on all workers, so 2–3 threads exercise the split even for
    // the small fixtures (src/platform/platform.ts, splitEveryOp); the calibrated default is tested
    // in tests/pool.test.ts with it off
    env: { VIT_WASM_SPLIT_EVERY_OP: '1' },
    reporters: ['default', './tests/summary-reporter.ts'],
  },
});
