/**
 * Resource limits on what vit-wasm reads: every file, download, image, header and label list is
 * checked against one of these before anything is allocated for it, so a hostile or broken input
 * costs a clear error instead of gigabytes, a hang or a crashed process.
 */

/** Resource limits. Pass some to {@link loadModel} (`{ limits: { maxImagePixels: 2e8 } }`) to raise them. */
export interface Limits {
  /**
   * Largest image decoded, in pixels (width × height), checked from the image's header before its
   * pixels are decoded. Default 89,478,485: Pillow's decompression-bomb limit.
   */
  maxImagePixels: number;
  /** Largest encoded image read from a file, a URL or bytes. Default 256 MiB. */
  maxImageBytes: number;
  /** Largest JSON file (config.json, preprocessor_config.json, the shard index). Default 16 MiB. */
  maxJsonBytes: number;
  /** Deepest nesting of objects and arrays in a JSON file. Default 64 (Hugging Face's configs nest 3 deep). */
  maxJsonDepth: number;
  /** Largest safetensors header. Default 100,000,000 bytes: the format's own reader's limit. */
  maxHeaderBytes: number;
  /** Most classes a classifier may have. Default 1,000,000 (ImageNet-21k has 21,843). */
  maxLabels: number;
  /**
   * Largest relative position bias a BEiT model holds, in bytes: H×T² floats per table (every
   * layer's, or one shared), for T tokens at the size it runs at. Default 1 GiB (BEiT-base at
   * 384 px holds 192 MB; at 1024 px it would be 9.7 GB).
   */
  maxAttentionBiasBytes: number;
  /**
   * Largest model file downloaded whole, from a server that ignores HTTP Range requests (a server
   * that honours them is read one tensor at a time). Default 4 GiB.
   */
  maxDownloadBytes: number;
  /**
   * Milliseconds a server may keep a request waiting (for its response, or between two pieces of
   * its body) before the request is abandoned with an error naming the URL. Default 30,000.
   */
  stallTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxImagePixels: 89_478_485,
  maxImageBytes: 256 * 1024 * 1024,
  maxJsonBytes: 16 * 1024 * 1024,
  maxJsonDepth: 64,
  maxHeaderBytes: 100_000_000,
  maxLabels: 1_000_000,
  maxAttentionBiasBytes: 1024 * 1024 * 1024,
  maxDownloadBytes: 4 * 1024 * 1024 * 1024,
  stallTimeoutMs: 30_000,
});

/** The defaults with `given` applied; each given value must be a positive integer (or Infinity to lift it). */
export function resolveLimits(given: Partial<Limits> | undefined): Limits {
  const out = { ...DEFAULT_LIMITS };
  if (given === undefined || given === null) return out;
  if (typeof given !== 'object') throw new Error(`vit-wasm: limits must be an object, got ${typeof given}`);
  for (const [k, v] of Object.entries(given)) {
    if (!(k in DEFAULT_LIMITS))
      throw new Error(`vit-wasm: limits: unknown limit '${k}' (known: ${Object.keys(DEFAULT_LIMITS).join(', ')})`);
    if (v === undefined) continue;
    if (!(v === Infinity || (Number.isSafeInteger(v) && (v as number) > 0)))
      throw new Error(`vit-wasm: limits.${k} must be a positive integer or Infinity, got ${JSON.stringify(v)}`);
    out[k as keyof Limits] = v as number;
  }
  return out;
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * The error for input over a limit: names what, the limit and how to raise it. `what` starts with
 * the file or URL.
 */
export function overLimit(what: string, key: keyof Limits, limit: number): Error {
  return new Error(
    `vit-wasm: ${what} is over the limit of ${fmt(limit)} (limits.${key}); if the input is trusted, raise it: ` +
      `loadModel(…, { limits: { ${key}: N } }) or, on the command line, --limit ${key}=N`,
  );
}

/** Throws when `v` nests objects/arrays deeper than the limit (checked without recursion). */
export function checkJsonDepth(v: unknown, file: string, maxDepth: number): void {
  const stack: [unknown, number][] = [[v, 1]];
  while (stack.length) {
    const [x, d] = stack.pop()!;
    if (x === null || typeof x !== 'object') continue;
    if (d > maxDepth)
      throw overLimit(`${file}: JSON nested more than ${fmt(maxDepth)} levels deep`, 'maxJsonDepth', maxDepth);
    for (const y of Object.values(x)) if (y !== null && typeof y === 'object') stack.push([y, d + 1]);
  }
}
