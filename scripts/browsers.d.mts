export declare const ENGINES: readonly ['chromium', 'firefox', 'webkit'];
export declare const FIREFOX: string;
export declare const WEBKIT_DRIVER: string;
export declare const MINIBROWSER: string;
export interface Browser {
  name: string;
  goto(url: string): Promise<unknown>;
  /** An expression's source, evaluated (and awaited) in the page; resolves to its JSON-able value. */
  evaluate(expr: string): Promise<unknown>;
  screenshot(file: string): Promise<unknown>;
  close(): Promise<void>;
}
export declare function launchBrowser(engine: 'chromium' | 'firefox' | 'webkit'): Promise<Browser>;
export declare function waitForValue(b: Browser, expr: string, ms: number): Promise<unknown>;
