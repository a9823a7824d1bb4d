export declare const ENGINES: readonly ['chromium', 'firefox', 'webkit'];
export declare const FIREFOX: string;
export declare const WEBKIT_DRIVER: string;
export declare const MINIBROWSER: string;
export interface Browser {
  name: string;
  goto(url: string): Promise<unknown>;
  /** An expression's source, evaluated (and awaited) in the page; resolves to its JSON-able value. */
  evaluate(expr: string): Promise<unknown>;
  /** Writes the viewport as a PNG. */
  screenshot(file: string): Promise<unknown>;
  /** Presses the mouse at the first [x, y] (viewport pixels), moves through the rest, releases. */
  drag(points: [number, number][]): Promise<void>;
  /** Page errors, console errors, HTTP errors and requests to other origins seen so far. */
  problems(): Promise<string[]>;
  close(): Promise<void>;
}
export type Engine = 'chromium' | 'firefox' | 'webkit';
export declare function launchBrowser(engine: Engine, viewport?: { width?: number; height?: number }): Promise<Browser>;
export declare function waitForValue(b: Browser, expr: string, ms: number): Promise<unknown>;
/** The engines installed here; in CI a missing one throws, naming its Debian package. */
export declare function enginesHere(): Engine[];
