/**
 * HTTP for model files and images: fetch with failures that name the URL, a stall watch that
 * aborts a request when the server goes quiet, and bodies read under a byte limit.
 */
import { type Limits, overLimit } from '../platform/limits.js';

const fmt = (n: number) => n.toLocaleString('en-US');

/** A response whose status was 2xx, with the stall watch that keeps guarding its body. */
export interface Fetched {
  response: Response;
  url: string;
  watch: StallWatch;
}

/**
 * Aborts a request when the server sends nothing for `ms`: armed at the request, re-armed by each
 * piece of body, disarmed when the body ends. Its timer never keeps Node alive on its own.
 */
export class StallWatch {
  readonly controller = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly url: string,
    private readonly ms: number,
  ) {
    this.arm();
  }

  arm(): void {
    this.done();
    if (!Number.isFinite(this.ms)) return;
    this.timer = setTimeout(
      () =>
        this.controller.abort(
          new Error(
            `vit-wasm: ${this.url}: the server sent nothing for ${this.ms / 1000} s (limits.stallTimeoutMs; raise it for a slow server)`,
          ),
        ),
      this.ms,
    );
    (this.timer as { unref?: () => void }).unref?.();
  }

  done(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/**
 * Reads a fetch Response's body with a byte cap, checking Content-Length first, and naming the URL
 * when the body is cut short (a dropped connection, a lying Content-Length).
 */
export async function readResponse(
  { response: r, url, watch }: Fetched,
  what: string,
  key: keyof Limits,
  limit: number,
): Promise<Uint8Array> {
  const declared = r.headers.get('content-length');
  const n = declared === null ? Number.NaN : Number(declared);
  if (n > limit) {
    watch.done();
    await r.body?.cancel().catch(() => {});
    throw overLimit(`${url}: the ${what} is ${fmt(n)} bytes, which`, key, limit);
  }
  if (!r.body) {
    watch.done();
    return new Uint8Array(0);
  }
  const reader = r.body.getReader();
  const parts: Uint8Array[] = [];
  let got = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      watch.arm();
      got += value.byteLength;
      if (got > limit) {
        await reader.cancel().catch(() => {});
        throw overLimit(`${url}: the ${what} passed ${fmt(limit)} bytes while downloading, which`, key, limit);
      }
      parts.push(value);
    }
  } catch (thrown) {
    const e = (watch.controller.signal.aborted ? watch.controller.signal.reason : thrown) as Error & { cause?: Error };
    if (e.message.startsWith('vit-wasm:')) throw e;
    throw new Error(
      `vit-wasm: ${url}: the ${what} download failed after ${fmt(got)}${Number.isFinite(n) ? ` of ${fmt(n)}` : ''} bytes (${e.message}${e.cause ? `: ${e.cause.message}` : ''})`,
    );
  } finally {
    watch.done();
  }
  if (Number.isFinite(n) && got !== n)
    throw new Error(`vit-wasm: ${url}: the server declared ${fmt(n)} bytes (Content-Length) but sent ${fmt(got)}`);
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(got);
  let p = 0;
  for (const part of parts) {
    out.set(part, p);
    p += part.byteLength;
  }
  return out;
}

/**
 * fetch, with failures that name the URL: a network error (server down, CORS, offline), an HTTP
 * status outside 2xx, or a server that sends nothing for `stallMs`. `what` says what was being
 * fetched ("model file", "image"). Read the body with readResponse (which keeps the stall watch
 * going) or cancel it.
 */
export async function fetchOk(url: string, what: string, stallMs: number, init?: RequestInit): Promise<Fetched> {
  const watch = new StallWatch(url, stallMs);
  let r: Response;
  try {
    r = await fetch(url, { ...init, signal: watch.controller.signal });
  } catch (e) {
    watch.done();
    if (watch.controller.signal.aborted) throw watch.controller.signal.reason;
    throw new Error(`vit-wasm: ${url}: cannot fetch ${what}: ${(e as Error).message}`);
  }
  if (!r.ok) {
    watch.done();
    await r.body?.cancel().catch(() => {});
    throw new Error(
      `vit-wasm: ${url}: cannot fetch ${what}: HTTP ${r.status}${r.statusText ? ` ${r.statusText}` : ''}`,
    );
  }
  return { response: r, url, watch };
}

/** Stops a response's stall watch and discards its body. */
export async function discard(f: Fetched): Promise<void> {
  f.watch.done();
  await f.response.body?.cancel().catch(() => {});
}
