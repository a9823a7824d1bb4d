/** bench's output: the fixed-width table and the latency chart (SVG) of its rows. */
import type { Runtime } from './bench-child.js';

export interface BenchRow {
  runtime: Runtime;
  threads: number;
  batch: number;
  medianMs: number;
  minMs: number;
  imagesPerSec: number;
  gflops: number | null;
  pctCeiling: number | null;
  speedup: number | null;
  loadMs: number;
  firstMs: number;
  rssPeakMb: number;
  vsOrtWeb?: number;
  vsOrtNode?: number;
}

export function formatTable(rows: BenchRow[]): string {
  const head = [
    'runtime',
    'threads',
    'batch',
    'median ms',
    'min ms',
    'img/s',
    'GFLOP/s',
    '% ceil',
    'speedup',
    'vs ort-web',
    'vs ort-node',
    'load ms',
    'first ms',
    'peak RSS MB',
  ];
  const f = (v: number | null | undefined, d = 1) =>
    v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d);
  const body = rows.map((r) => [
    r.runtime,
    String(r.threads),
    String(r.batch),
    f(r.medianMs),
    f(r.minMs),
    f(r.imagesPerSec, 2),
    f(r.gflops),
    f(r.pctCeiling, 0),
    r.speedup ? `${r.speedup.toFixed(2)}x` : '-',
    r.vsOrtWeb ? `${r.vsOrtWeb.toFixed(2)}x` : '-',
    r.vsOrtNode ? `${r.vsOrtNode.toFixed(2)}x` : '-',
    f(r.loadMs, 0),
    f(r.firstMs, 0),
    f(r.rssPeakMb, 0),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  return [line(head), line(w.map((n) => '-'.repeat(n))), ...body.map(line)].join('\n');
}

/** Latency against thread count, one line per runtime (first batch size). */
export function chartSvg(rows: BenchRow[], title: string): string {
  const batch = rows[0]?.batch ?? 1,
    data = rows.filter((r) => r.batch === batch);
  const runtimes = [...new Set(data.map((r) => r.runtime))],
    threads = [...new Set(data.map((r) => r.threads))].sort((a, b) => a - b);
  const Wd = 640,
    Ht = 400,
    L = 70,
    R = 170,
    T = 40,
    B = 50,
    ymax = Math.max(...data.map((r) => r.medianMs)) * 1.1;
  const x = (t: number) =>
    L + (threads.length === 1 ? (Wd - L - R) / 2 : ((Wd - L - R) * threads.indexOf(t)) / (threads.length - 1));
  const y = (ms: number) => T + (Ht - T - B) * (1 - ms / ymax);
  const colors = ['#1f77b4', '#2ca02c', '#17becf', '#8c564b', '#d62728', '#9467bd', '#ff7f0e'];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Wd}" height="${Ht}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${Wd / 2}" y="22" text-anchor="middle" font-size="14">${title}: latency vs threads (batch ${batch}, median)</text>`,
    `<line x1="${L}" y1="${Ht - B}" x2="${Wd - R}" y2="${Ht - B}" stroke="black"/><line x1="${L}" y1="${T}" x2="${L}" y2="${Ht - B}" stroke="black"/>`,
    `<text x="${(L + Wd - R) / 2}" y="${Ht - 12}" text-anchor="middle">threads</text>`,
    `<text x="18" y="${(T + Ht - B) / 2}" text-anchor="middle" transform="rotate(-90 18 ${(T + Ht - B) / 2})">ms</text>`,
  ];
  for (const t of threads) parts.push(`<text x="${x(t)}" y="${Ht - B + 18}" text-anchor="middle">${t}</text>`);
  for (let k = 0; k <= 4; k++) {
    const v = (ymax * k) / 4;
    parts.push(
      `<text x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text><line x1="${L}" y1="${y(v)}" x2="${Wd - R}" y2="${y(v)}" stroke="#ddd"/>`,
    );
  }
  runtimes.forEach((rt, i) => {
    const pts = threads.flatMap((t) =>
      data.filter((r) => r.runtime === rt && r.threads === t).map((r) => `${x(t)},${y(r.medianMs)}`),
    );
    parts.push(
      `<polyline fill="none" stroke="${colors[i % colors.length]}" stroke-width="2" points="${pts.join(' ')}"/>`,
    );
    for (const p of pts) {
      const [px, py] = p.split(',');
      parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${colors[i % colors.length]}"/>`);
    }
    parts.push(
      `<rect x="${Wd - R + 15}" y="${T + i * 20}" width="12" height="12" fill="${colors[i % colors.length]}"/><text x="${Wd - R + 32}" y="${T + i * 20 + 11}">${rt}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
