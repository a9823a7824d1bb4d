/**
 * JSON as vit-wasm reads it: parsed within the depth limit, and typed fields read with errors that
 * name the file and the field.
 */
import { checkJsonDepth, DEFAULT_LIMITS } from '../platform/limits.js';

/** A JSON object from `text`, or an Error naming `file`; nesting deeper than `maxDepth` is refused. */
export function parseJson(text: string, file: string, maxDepth = DEFAULT_LIMITS.maxJsonDepth): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    const html = /^\s*</.test(text) ? ': it looks like an HTML page (a wrong URL, or a server error page?)' : '';
    throw new Error(`vit-wasm: ${file} is not valid JSON (${(e as Error).message})${html}`);
  }
  // deep nesting parses fine but overflows the stack later (posting the config to each worker)
  checkJsonDepth(v, file, maxDepth);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`vit-wasm: ${file} must hold a JSON object`);
  return v as Record<string, unknown>;
}

/** Reads an optional positive integer field; throws naming the file and field when malformed. */
export function intField(obj: Record<string, unknown>, key: string, file: string): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (!Number.isSafeInteger(v) || (v as number) <= 0)
    throw new Error(`vit-wasm: ${file}: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
  return v as number;
}

/** image_size / size as an int, [h, w], or {height, width}. */
export function sizeField(v: unknown, key: string, file: string): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  const ok = (n: unknown) => Number.isSafeInteger(n) && (n as number) > 0;
  if (ok(v)) return [v as number, v as number];
  if (Array.isArray(v) && v.length === 2 && v.every(ok)) return [v[0], v[1]];
  if (typeof v === 'object' && ok((v as Record<string, unknown>).height) && ok((v as Record<string, unknown>).width)) {
    return [(v as { height: number }).height, (v as { width: number }).width];
  }
  if (typeof v === 'object' && ok((v as Record<string, unknown>).shortest_edge)) {
    throw new Error(
      `vit-wasm: ${file}: ${key} {shortest_edge} (resize keeping aspect, then crop) is not supported; give {height, width}`,
    );
  }
  throw new Error(
    `vit-wasm: ${file}: ${key} must be an integer, [height, width] or {height, width}; got ${JSON.stringify(v)}`,
  );
}
