// The fuzz suite: seeded hostile inputs (tests/fuzz/cases.mjs) run in child processes with a memory
// and a time limit. Every case must end as a result or as a clear Error ("vit-wasm: …"): never a
// raw TypeError/RangeError, a wasm trap, a NaN answer, a crash, a hang or unbounded memory.
//   FUZZ_SEED=<n>  a different slice of seeds (default 0, what CI runs)
//   FUZZ_SCALE=<x> more or fewer cases per kind (default 1: 3,200 cases, about a minute on 2 cores)
// A case that ever fails goes into tests/fuzz/regressions.json, which runs first, every time.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from 'vitest';

const HERE = fileURLToPath(new URL('./fuzz/', import.meta.url));
const CHILD = path.join(HERE, 'child.mjs');
/** Cases per kind at scale 1. */
const PER_KIND: Record<string, number> = {
  safetensors: 450,
  bytes: 300,
  config: 450,
  preprocessor: 240,
  image: 600,
  api: 300,
  faults: 120,
  families: 240,
  pytorch: 200,
  text: 150,
  tokenizer: 150,
};
// A child over this is killed: the case's memory was not bounded. The largest JPEG the default
// limits admit (89 M pixels) peaks at about 0.6 GB (progressive, in libjpeg-turbo).
const RSS_LIMIT_MB = 2560;
const STALL_MS = 30_000; // a case with no result for this long hung
const BATCH = 60;

type Case = [string, number];
interface Outcome {
  kind: string;
  seed: number;
  outcome: 'ok' | 'error';
  name?: string;
  message?: string;
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `cases` in one child; returns the outcomes, and the case it died in (crash, memory, hang).
 * The child's JS heap is capped by V8; its whole RSS (wasm memory included) is polled.
 */
function runChild(cases: Case[]): Promise<{ outcomes: Outcome[]; died?: { case: Case; why: string } }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--max-old-space-size=512', CHILD, JSON.stringify(cases)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const outcomes: Outcome[] = [];
    let current: Case | null = null,
      killedFor: string | null = null,
      buf = '',
      stderr = '',
      peak = 0,
      lastLine = Date.now();
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        lastLine = Date.now();
        const o = JSON.parse(line);
        if (o.start) current = o.start;
        else {
          outcomes.push(o);
          current = null;
        }
      }
    });
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-2000);
    });
    const watch = setInterval(() => {
      peak = Math.max(peak, rssMb(child.pid!));
      if (peak > RSS_LIMIT_MB) killedFor = `RSS ${peak.toFixed(0)} MB is over ${RSS_LIMIT_MB} MB`;
      else if (Date.now() - lastLine > STALL_MS) killedFor = `no result for ${STALL_MS / 1000} s (a hang)`;
      if (killedFor) child.kill('SIGKILL');
    }, 50);
    child.on('exit', (code, signal) => {
      clearInterval(watch);
      const done = outcomes.length === cases.length && code === 0;
      if (done) return resolve({ outcomes });
      const at = current ?? cases[outcomes.length];
      const why =
        killedFor ??
        `the process ended (code ${code}, signal ${signal}): ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
      resolve({ outcomes, died: at ? { case: at, why } : undefined });
    });
  });
}

/** Every case once, two children at a time; a child that dies is restarted after the case it died in. */
async function runAll(cases: Case[]): Promise<{ outcomes: Outcome[]; deaths: { case: Case; why: string }[] }> {
  const batches: Case[][] = [];
  for (let i = 0; i < cases.length; i += BATCH) batches.push(cases.slice(i, i + BATCH));
  const outcomes: Outcome[] = [],
    deaths: { case: Case; why: string }[] = [];
  const worker = async () => {
    for (let b = batches.shift(); b; b = batches.shift()) {
      let rest = b;
      while (rest.length) {
        const r = await runChild(rest);
        outcomes.push(...r.outcomes);
        if (!r.died) break;
        deaths.push(r.died);
        rest = rest.slice(rest.findIndex((c) => c[0] === r.died!.case[0] && c[1] === r.died!.case[1]) + 1);
      }
    }
  };
  await Promise.all([worker(), worker()]);
  return { outcomes, deaths };
}

/** Why an outcome is not acceptable, or null. */
function verdict(o: Outcome): string | null {
  if (o.outcome === 'ok') return null;
  if (o.name !== 'Error') return `${o.name}: ${o.message}`; // TypeError, RangeError, RuntimeError (a trap), NaNAnswer, WrongResult
  if (!o.message?.startsWith('vit-wasm: ')) return `an Error without vit-wasm's prefix: ${o.message}`;
  // JavaScript's own words leaking through (a decoder's internals inside "corrupt JPEG (…)" are detail)
  if (
    /Cannot read properties|is not a function|is not iterable|\[object Object\]/.test(o.message) &&
    !/corrupt (JPEG|PNG) \(/.test(o.message)
  )
    return `an unclear message: ${o.message}`;
  return null;
}

test('fuzz: every hostile case ends in a result or a clear Error, in bounded memory and time', {
  timeout: 600_000,
}, async () => {
  const seed = Number(process.env.FUZZ_SEED ?? 0),
    scale = Number(process.env.FUZZ_SCALE ?? 1);
  const regressions: Case[] = JSON.parse(readFileSync(path.join(HERE, 'regressions.json'), 'utf8')).cases;
  const cases: Case[] = [...regressions];
  for (const [kind, n] of Object.entries(PER_KIND))
    for (let i = 0; i < Math.round(n * scale); i++) cases.push([kind, seed * 100_000 + i]);
  const { outcomes, deaths } = await runAll(cases);

  const failures = [
    ...deaths.map((d) => `[${JSON.stringify(d.case[0])}, ${d.case[1]}] ${d.why}`),
    ...outcomes.flatMap((o) => {
      const why = verdict(o);
      return why ? [`[${JSON.stringify(o.kind)}, ${o.seed}] ${why}`] : [];
    }),
  ];
  const byKind: Record<string, string> = {};
  for (const k of Object.keys(PER_KIND)) {
    const mine = outcomes.filter((o) => o.kind === k);
    byKind[k] =
      `${mine.filter((o) => o.outcome === 'ok').length} ok / ${mine.filter((o) => o.outcome === 'error').length} errors`;
  }
  console.log(`fuzz: ${cases.length} cases (seed ${seed}, scale ${scale}, ${regressions.length} regressions):`, byKind);
  // replay one with: node tests/fuzz/child.mjs '[["kind", seed]]'
  expect(failures).toEqual([]);
  expect(outcomes.length + deaths.length).toBe(cases.length);
});
