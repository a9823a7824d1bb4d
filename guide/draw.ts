/**
 * The guide's pictures, on plain canvases: heat maps of matrices with a colour legend, images,
 * patch grids, bar charts and attention overlays. Every function sizes its canvas itself, so a
 * redraw never moves the layout (the CSS gives each canvas its box).
 */

/** A diverging blue–white–red scale for signed values, or white-to-purple for values ≥ 0, as [r, g, b]. */
export function rgb(v: number, max: number, signed: boolean): [number, number, number] {
  const t = max > 0 ? Math.max(-1, Math.min(1, v / max)) : 0;
  if (!signed) {
    const a = Math.max(0, t);
    return [255 - 170 * a, 255 - 215 * a, 255 - 95 * a];
  }
  const a = Math.abs(t);
  return t >= 0 ? [255 - 40 * a, 255 - 200 * a, 255 - 200 * a] : [255 - 200 * a, 255 - 130 * a, 255 - 40 * a];
}

export function colour(v: number, max: number, signed: boolean): string {
  const [r, g, b] = rgb(v, max, signed);
  return `rgb(${Math.round(r)},${Math.round(g)},${Math.round(b)})`;
}

/** One canvas reused to scale every grid up (a new one per picture would cost more than the drawing). */
const scratch = new OffscreenCanvas(1, 1);

/** A (rows, cols) grid of colours as an image, one pixel per cell, drawn scaled with sharp edges. */
function cells(
  ctx: CanvasRenderingContext2D,
  rows: number,
  cols: number,
  x: number,
  y: number,
  w: number,
  h: number,
  colourOf: (r: number, c: number) => [number, number, number],
): void {
  const img = new ImageData(cols, rows);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const [R, G, B] = colourOf(r, c),
        o = (r * cols + c) * 4;
      img.data[o] = R;
      img.data[o + 1] = G;
      img.data[o + 2] = B;
      img.data[o + 3] = 255;
    }
  if (scratch.width < cols || scratch.height < rows) {
    scratch.width = Math.max(scratch.width, cols);
    scratch.height = Math.max(scratch.height, rows);
  }
  scratch.getContext('2d')!.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, cols, rows, x, y, w, h);
}

const absMax = (d: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < d.length; i++) m = Math.max(m, Math.abs(d[i]));
  return m;
};

export function prepare(canvas: HTMLCanvasElement, w: number, h: number): CanvasRenderingContext2D {
  const dpr = Math.min(2, globalThis.devicePixelRatio || 1);
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

/**
 * A (rows, cols) matrix as a heat map fitting `width` CSS pixels, with a legend of its scale.
 * `highlightRow` outlines one row (e.g. the cls token).
 */
export function heatmap(
  canvas: HTMLCanvasElement,
  data: ArrayLike<number>,
  rows: number,
  cols: number,
  opts: { width?: number; signed?: boolean; max?: number; highlightRow?: number; cell?: number } = {},
): void {
  const signed = opts.signed ?? true,
    max = opts.max ?? absMax(data);
  const width = opts.width ?? 320,
    legendH = 22;
  const cw = opts.cell ?? Math.max(1, Math.min(24, width / cols));
  const ch = opts.cell ?? Math.max(1, Math.min(24, cw * Math.min(3, Math.max(1, (cols / rows) * 0.6))));
  const w = cw * cols,
    h = ch * rows;
  const ctx = prepare(canvas, Math.max(w, 160), h + legendH);
  cells(ctx, rows, cols, 0, 0, w, h, (r, c) => rgb(data[r * cols + c], max, signed));
  if (opts.highlightRow !== undefined) {
    ctx.strokeStyle = '#111';
    ctx.lineWidth = 1.5;
    ctx.strokeRect(0.75, opts.highlightRow * ch + 0.75, w - 1.5, ch - 1.5);
  }
  legend(ctx, 0, h + 6, 160, max, signed);
}

/** A colour bar from −max (or 0) to max with its end values. */
export function legend(
  ctx: CanvasRenderingContext2D,
  x: number,
  y: number,
  w: number,
  max: number,
  signed: boolean,
): void {
  for (let i = 0; i < w; i++) {
    ctx.fillStyle = colour(signed ? ((2 * i) / w - 1) * max : (i / w) * max, max, signed);
    ctx.fillRect(x + 40 + i * ((w - 80) / w), y, Math.ceil((w - 80) / w), 8);
  }
  ctx.fillStyle = '#333';
  ctx.font = '10px system-ui, sans-serif';
  ctx.textBaseline = 'top';
  ctx.textAlign = 'right';
  ctx.fillText(signed ? (-max).toPrecision(2) : '0', x + 36, y - 1);
  ctx.textAlign = 'left';
  ctx.fillText(max.toPrecision(2), x + w - 36, y - 1);
}

/** A (C, H, W) normalized image as grey (1 channel) or RGB, `scale` CSS pixels per pixel. */
export function image(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  scale: number,
): CanvasRenderingContext2D {
  const ctx = prepare(canvas, W * scale, H * scale);
  let lo = Infinity,
    hi = -Infinity;
  for (let i = 0; i < pixels.length; i++) {
    lo = Math.min(lo, pixels[i]);
    hi = Math.max(hi, pixels[i]);
  }
  const g = (v: number) => (255 * (v - lo)) / (hi - lo || 1);
  cells(ctx, H, W, 0, 0, W * scale, H * scale, (y, x) => {
    const at = (c: number) => g(pixels[c * H * W + y * W + x]);
    return C === 1 ? [at(0), at(0), at(0)] : [at(0), at(1), at(2)];
  });
  return ctx;
}

/** The image with its p×p patch grid drawn over it, patches numbered in reading order. */
export function patchGrid(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  p: number,
  scale: number,
): void {
  const ctx = image(canvas, pixels, C, H, W, scale);
  ctx.strokeStyle = '#f5b700';
  ctx.lineWidth = 1.5;
  for (let x = 0; x <= W; x += p) line(ctx, x * scale, 0, x * scale, H * scale);
  for (let y = 0; y <= H; y += p) line(ctx, 0, y * scale, W * scale, y * scale);
  ctx.fillStyle = '#f5b700';
  ctx.font = `${Math.max(9, Math.round(p * scale * 0.22))}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  let n = 0;
  for (let y = 0; y < H; y += p) for (let x = 0; x < W; x += p) ctx.fillText(String(n++), x * scale + 3, y * scale + 2);
}

function line(ctx: CanvasRenderingContext2D, x0: number, y0: number, x1: number, y1: number): void {
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

/** The image with a (gh, gw) grid of weights over its patches (attention to each patch), in purple. */
export function overlay(
  canvas: HTMLCanvasElement,
  pixels: ArrayLike<number>,
  C: number,
  H: number,
  W: number,
  p: number,
  weights: ArrayLike<number>,
  scale: number,
): void {
  const ctx = image(canvas, pixels, C, H, W, scale);
  const max = absMax(weights),
    gw = W / p;
  for (let i = 0; i < weights.length; i++) {
    ctx.fillStyle = `rgba(160, 32, 240, ${(0.75 * weights[i]) / (max || 1)})`;
    ctx.fillRect((i % gw) * p * scale, Math.floor(i / gw) * p * scale, p * scale, p * scale);
  }
}

/** Horizontal bars of probabilities with their labels; the largest in a stronger colour. */
export function bars(canvas: HTMLCanvasElement, labels: string[], values: ArrayLike<number>, width = 300): void {
  const rowH = 20,
    ctx = prepare(canvas, width, rowH * labels.length);
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  ctx.font = '12px system-ui, sans-serif';
  ctx.textBaseline = 'middle';
  // room for the longest label (up to 18 characters shown)
  const names = labels.map((l) => (l.length > 18 ? `${l.slice(0, 17)}…` : l));
  const lw = Math.max(...names.map((l) => ctx.measureText(l).width)) + 6;
  names.forEach((l, i) => {
    const y = i * rowH,
      w = (width - lw - 60) * values[i];
    ctx.fillStyle = '#333';
    ctx.textAlign = 'right';
    ctx.fillText(l, lw - 6, y + rowH / 2);
    ctx.fillStyle = i === best ? '#6a1b9a' : '#c9a7e0';
    ctx.fillRect(lw, y + 3, Math.max(1, w), rowH - 6);
    ctx.fillStyle = '#333';
    ctx.textAlign = 'left';
    ctx.fillText(`${(100 * values[i]).toFixed(1)}%`, lw + 4 + Math.max(1, w), y + rowH / 2);
  });
}

/** True when a canvas has any non-white, non-transparent pixel (tests: every picture is drawn). */
export function drawn(canvas: HTMLCanvasElement): boolean {
  if (!canvas.width || !canvas.height) return false;
  const d = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < d.length; i += 4)
    if (d[i + 3] > 0 && (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250)) return true;
  return false;
}
