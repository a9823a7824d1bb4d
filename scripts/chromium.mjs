// Debian's Chromium, headless, for the browser tests, the package test and bench probes: a fresh
// profile per launch (playwright passes it as --user-data-dir) and the flags that keep it from
// reaching the network by itself. One place for them (types: chromium.d.mts).
export const CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/**
 * A persistent context on the profile folder `userDataDir` (fresh: make it with mkdtemp); `args`
 * adds flags to CHROMIUM_ARGS (a test's fake camera).
 */
export async function launchChromium(userDataDir, opts = {}) {
  const { chromium } = await import('playwright-core');
  const { args = [], ...rest } = opts;
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    ...rest,
    args: [...CHROMIUM_ARGS, ...args],
  });
}
