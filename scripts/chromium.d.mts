import type { BrowserContext } from 'playwright-core';

export declare const CHROMIUM: string;
export declare const CHROMIUM_ARGS: readonly string[];
export declare function launchChromium(
  userDataDir: string,
  opts?: { viewport?: { width: number; height: number }; serviceWorkers?: 'allow' | 'block'; args?: string[] },
): Promise<BrowserContext>;
