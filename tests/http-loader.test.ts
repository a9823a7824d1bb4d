// The URL loader against servers that misbehave: each must give an Error naming the URL, never a
// hang or garbage. The same fetch code runs in browsers; here it runs in Node against a local server.
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadModel } from '../src/index.js';
import { MODELS } from './helpers.js';

const DIR = path.join(MODELS, 'h40-hf');
const file = (f: string) => readFileSync(path.join(DIR, f));

type Handler = (req: IncomingMessage, res: ServerResponse, body: Buffer) => void;
/** Each test's server behaviour, by the path's first segment: /<mode>/config.json. */
const modes: Record<string, Handler> = {
  // a correct server with Range support
  good: (req, res, body) => {
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
    if (!m) return res.writeHead(200, { 'content-length': body.length }).end(body);
    const [a, b] = [Number(m[1]), Math.min(Number(m[2]), body.length - 1)];
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}`, 'content-length': b - a + 1 });
    res.end(body.subarray(a, b + 1));
  },
  // ignores Range: always the whole file
  norange: (_req, res, body) => res.writeHead(200, { 'content-length': body.length }).end(body),
  // a single-page app's fallback: index.html for every path
  html: (_req, res) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><p>app'),
  // declares the full length, sends half, then drops the connection
  truncated: (_req, res, body) => {
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, body.length >> 1));
    setImmediate(() => res.destroy());
  },
  // Range answered with fewer bytes than asked for
  shortrange: (req, res, body) => {
    if (req.url?.endsWith('.json') || !req.headers.range) return modes.good(req, res, body);
    const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '')!;
    const [a, b] = [Number(m[1]), Number(m[2])];
    const end = b > a ? b - 1 : b; // one byte short, except the 1-byte probe
    res.writeHead(206, { 'content-range': `bytes ${a}-${b}/${body.length}` });
    res.end(body.subarray(a, end + 1));
  },
  // 206 without a Content-Range header
  norangeheader: (req, res, body) => {
    if (req.url?.endsWith('.json') || !req.headers.range) return modes.good(req, res, body);
    res.writeHead(206).end(body.subarray(0, 1));
  },
  // never answers (held open until the server closes)
  silent: () => {},
  // answers, sends part of the body, then goes quiet without closing
  stall: (_req, res, body) => {
    res.writeHead(200, { 'content-length': body.length });
    res.write(body.subarray(0, 10));
  },
};

let server: Server, origin: string;
beforeAll(async () => {
  server = createServer((req, res) => {
    const [, mode, name] = req.url!.split('/');
    let body: Buffer;
    try {
      body = file(name);
    } catch {
      return res.writeHead(404).end('not found');
    }
    modes[mode](req, res, body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise<void>((r) => server.close(() => r()));
});

const input = new Float32Array(3 * 20 * 25).map((_, i) => Math.sin(i));

describe('loading a model over HTTP from a misbehaving server', () => {
  test('a good server and a server that ignores Range give the directory’s exact logits', async () => {
    const local = await loadModel(DIR, { threads: 1 });
    const want = await local.forward(input);
    await local.dispose();
    for (const mode of ['good', 'norange']) {
      const m = await loadModel(`${origin}/${mode}/`, { threads: 1 });
      expect(Array.from(await m.forward(input))).toEqual(Array.from(want));
      await m.dispose();
    }
  });

  test('a server that ignores Range, past limits.maxDownloadBytes', async () => {
    await expect(loadModel(`${origin}/norange/`, { threads: 1, limits: { maxDownloadBytes: 1000 } })).rejects.toThrow(
      new RegExp(
        `${origin}/norange/model\\.safetensors: the model file is [\\d,]+ bytes, which is over the limit of 1,000 \\(limits\\.maxDownloadBytes\\)`,
      ),
    );
  });

  test('an HTML page where the files should be', async () => {
    await expect(loadModel(`${origin}/html/`, { threads: 1 })).rejects.toThrow(
      `${origin}/html/config.json: the server sent an HTML page (Content-Type text/html; charset=utf-8), not the model file`,
    );
  });

  test('a body cut short of its Content-Length', async () => {
    await expect(loadModel(`${origin}/truncated/`, { threads: 1 })).rejects.toThrow(
      new RegExp(`${origin}/truncated/config\\.json: the model file download failed after [\\d,]+ of [\\d,]+ bytes`),
    );
  });

  test('a Range answer shorter than asked', async () => {
    await expect(loadModel(`${origin}/shortrange/`, { threads: 1 })).rejects.toThrow(
      new RegExp(`${origin}/shortrange/model\\.safetensors: asked for (\\d+) bytes at 0, got \\d+`),
    );
  });

  test('a 206 without Content-Range', async () => {
    await expect(loadModel(`${origin}/norangeheader/`, { threads: 1 })).rejects.toThrow(
      `${origin}/norangeheader/model.safetensors: the server's Content-Range gives no file size`,
    );
  });

  test.each(['silent', 'stall'])('a %s server times out after limits.stallTimeoutMs, naming the URL', async (mode) => {
    await expect(loadModel(`${origin}/${mode}/`, { threads: 1, limits: { stallTimeoutMs: 300 } })).rejects.toThrow(
      `${origin}/${mode}/config.json: the server sent nothing for 0.3 s (limits.stallTimeoutMs`,
    );
  });

  test('missing files and an unreachable server', async () => {
    await expect(loadModel(`${origin}/good/nothing-here/`, { threads: 1 })).rejects.toThrow(
      `${origin}/good/nothing-here/config.json: cannot fetch model file: HTTP 404`,
    );
    await expect(loadModel('http://127.0.0.1:1/model/', { threads: 1 })).rejects.toThrow(
      /http:\/\/127\.0\.0\.1:1\/model\/config\.json: cannot fetch model file: fetch failed/,
    );
  });

  test('an image URL: an HTML page, a truncated body, over the byte limit', async () => {
    const m = await loadModel(DIR, { threads: 1, limits: { maxImageBytes: 100 } });
    try {
      await expect(m.classify(`${origin}/html/config.json`)).rejects.toThrow(
        `${origin}/html/config.json: cannot read image: not a PNG or JPEG file`,
      );
      await expect(m.classify(`${origin}/truncated/model.safetensors`)).rejects.toThrow(
        new RegExp(
          `${origin}/truncated/model\\.safetensors: the image is [\\d,]+ bytes, which is over the limit of 100`,
        ),
      );
    } finally {
      await m.dispose();
    }
  });
});
