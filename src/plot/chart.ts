// Paper-style line charts. writeChart renders through Vega-Lite (vl-chart.ts, vega.ts); chartSvg and
// chartPng are the older hand-drawn renderer (SVG, and PNG via Canvas + the bitmap font), kept for now.
import { basename, extname } from 'node:path';
import { Canvas, type Point } from './canvas.js';
import { textWidth } from './font.js';
import { writeAtomicSync } from './figure.js';
import { renderSpecFileSync } from './render-sync.js';
import { OKABE_ITO, chartCsv, chartToVegaLite } from './vl-chart.js';

export type Series = { name: string; x: number[]; y: number[]; band?: { lo: number[]; hi: number[] }; color?: string };
export type ChartSpec = {
  title?: string;
  xlabel: string;
  ylabel: string;
  series: Series[];
  logX?: boolean;
  logY?: boolean;
  width?: number;
  height?: number;
};

/** Okabe-Ito colour-blind-safe palette (yellow last: low contrast on white). */
export const PALETTE = OKABE_ITO;

export interface Ticks {
  lo: number;
  hi: number;
  ticks: number[];
  labels: string[];
  minor: number[];
  log: boolean;
}

const clean = (v: number) => (Math.abs(v) < 1e-300 ? 0 : Number(v.toPrecision(12)));
const expFmt = (v: number) => Number(v.toPrecision(3)).toExponential().replace('e+', 'e');

/** Tick label for v on a linear axis with the given step; `axisMax` = largest |tick| on the axis. */
export function formatTick(v: number, step: number, axisMax = Math.abs(v)): string {
  if (v === 0) return '0';
  const mag = Math.max(axisMax, step);
  if (mag >= 1e5 || mag < 1e-3) return expFmt(v);
  const dec = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(dec);
}

/**
 * Linear ticks with a 1-2-5 step: the smallest step giving at most maxTicks ticks; the axis is
 * extended outward to the nearest ticks. Degenerate ranges are widened.
 */
export function niceTicks(min: number, max: number, maxTicks = 6): Ticks {
  if (!Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [0, 1];
  if (min > max) [min, max] = [max, min];
  if (min === max) {
    const d = Math.abs(min) * 0.1 || 1;
    [min, max] = [min - d, max + d];
  }
  const n = Math.max(2, maxTicks);
  const mag = Math.pow(10, Math.floor(Math.log10((max - min) / n)));
  let step = mag;
  for (let k = 0; ; k++) {
    step = [1, 2, 5][k % 3]! * mag * Math.pow(10, Math.floor(k / 3));
    if (Math.ceil(max / step - 1e-9) - Math.floor(min / step + 1e-9) + 1 <= n) break;
  }
  const i0 = Math.floor(min / step + 1e-9);
  const i1 = Math.ceil(max / step - 1e-9);
  const ticks: number[] = [];
  for (let i = i0; i <= i1; i++) ticks.push(clean(i * step));
  return { lo: ticks[0]!, hi: ticks[ticks.length - 1]!, ticks, labels: ticks.map((t) => formatTick(t, step, Math.max(...ticks.map(Math.abs)))), minor: [], log: false };
}

/** Log ticks: decades (thinned to <= maxTicks) with 2..9 minor ticks, or 1-2-5 ticks on short ranges. */
export function logTicks(min: number, max: number, maxTicks = 8): Ticks {
  if (!(min > 0) || !(max > 0) || !Number.isFinite(min) || !Number.isFinite(max)) [min, max] = [1, 10];
  if (min > max) [min, max] = [max, min];
  if (min === max) [min, max] = [min / 2, max * 2];
  const k0 = Math.floor(Math.log10(min)) - 1;
  const k1 = Math.ceil(Math.log10(max)) + 1;
  const c125: number[] = [];
  for (let k = k0; k <= k1; k++) for (const m of [1, 2, 5]) c125.push(clean(m * Math.pow(10, k)));
  const lo = Math.max(...c125.filter((c) => c <= min * (1 + 1e-9)));
  const hi = Math.min(...c125.filter((c) => c >= max * (1 - 1e-9)));
  const inside = (v: number) => v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9);
  let ticks = c125.filter((c) => inside(c) && Math.log10(c) % 1 === 0);
  const minor: number[] = [];
  if (ticks.length < 3) ticks = c125.filter(inside);
  else {
    const every = Math.ceil(ticks.length / Math.max(2, maxTicks));
    const e0 = Math.round(Math.log10(ticks[0]!));
    ticks = ticks.filter((t) => (Math.round(Math.log10(t)) - e0) % every === 0);
    if (every === 1) {
      for (let k = k0; k <= k1; k++) for (let m = 2; m <= 9; m++) if (inside(m * 10 ** k)) minor.push(clean(m * 10 ** k));
    }
  }
  const labels = ticks.map((t) => (t >= 1e-3 && t < 1e5 ? String(t) : expFmt(t)));
  return { lo, hi, ticks, labels, minor, log: true };
}

type Role = 'tick' | 'label' | 'title' | 'legend';
interface Metrics {
  size: Record<Role, number>;
  width(s: string, role: Role): number;
}
type Anchor = 'start' | 'middle' | 'end';
type Prim =
  | { t: 'line'; x1: number; y1: number; x2: number; y2: number; color: string; width: number; cls?: string }
  | { t: 'path'; segs: Point[][]; color: string; width: number; name: string }
  | { t: 'area'; pts: Point[]; color: string; opacity: number }
  | { t: 'dot'; x: number; y: number; r: number; color: string; cls?: string }
  | { t: 'text'; x: number; cy: number; s: string; anchor: Anchor; role: Role; vertical?: boolean; cls?: string };

const ok = (v: number | undefined, log?: boolean): v is number => Number.isFinite(v) && (!log || v! > 0);
const AXIS = '#333333';
const GRID = '#e6e6e6';
const TEXT = '#222222';

function buildChart(spec: ChartSpec, m: Metrics): { W: number; H: number; prims: Prim[] } {
  const W = Math.round(spec.width ?? 720);
  const H = Math.round(spec.height ?? 450);
  const pad = 12;
  const tickLen = 5;
  const lx = !!spec.logX;
  const ly = !!spec.logY;
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]! }));
  const xs: number[] = [];
  const ys: number[] = [];
  for (const s of series) {
    const n = Math.min(s.x.length, s.y.length);
    for (let i = 0; i < n; i++) if (ok(s.x[i], lx) && ok(s.y[i], ly)) (xs.push(s.x[i]!), ys.push(s.y[i]!));
    if (s.band) for (let i = 0; i < s.x.length; i++) {
      if (!ok(s.x[i], lx) || !ok(s.band.lo[i], ly) || !ok(s.band.hi[i], ly)) continue;
      xs.push(s.x[i]!);
      ys.push(s.band.lo[i]!, s.band.hi[i]!);
    }
  }
  const range = (v: number[]) => (v.length ? v.reduce((a, b) => [Math.min(a[0], b), Math.max(a[1], b)], [Infinity, -Infinity]) : [NaN, NaN]);
  const [xmin, xmax] = range(xs) as [number, number];
  const [ymin, ymax] = range(ys) as [number, number];
  const axisOf = (lo: number, hi: number, log: boolean, n: number) => (log ? logTicks(lo, hi, n) : niceTicks(lo, hi, n));
  const prims: Prim[] = [];
  let top = pad;
  if (spec.title) {
    prims.push({ t: 'text', x: W / 2, cy: top + m.size.title / 2, s: spec.title, anchor: 'middle', role: 'title' });
    top += m.size.title + 10;
  }
  // Legend: centred rows above the plot.
  const items = series.filter((s) => s.name).map((s) => ({ s, w: 26 + m.width(s.name, 'legend') }));
  const hasLine = (s: Series) => s.x.some((_, i) => ok(s.x[i], lx) && ok(s.y[i], ly) && ok(s.x[i + 1], lx) && ok(s.y[i + 1], ly));
  const rows: (typeof items)[] = [];
  for (const it of items) {
    const row = rows[rows.length - 1];
    const used = row ? row.reduce((a, r) => a + r.w + 24, 0) : Infinity;
    if (row && used + it.w <= W - 2 * pad) row.push(it);
    else rows.push([it]);
  }
  const rowH = m.size.legend + 8;
  rows.forEach((row, r) => {
    const total = row.reduce((a, it) => a + it.w, 0) + 24 * (row.length - 1);
    let x = (W - total) / 2;
    const cy = top + r * rowH + m.size.legend / 2;
    for (const { s, w } of row) {
      if (s.band) prims.push({ t: 'area', pts: [[x, cy - 5], [x + 18, cy - 5], [x + 18, cy + 5], [x, cy + 5]], color: s.color, opacity: 0.2 });
      if (hasLine(s)) prims.push({ t: 'line', x1: x, y1: cy, x2: x + 18, y2: cy, color: s.color, width: 2, cls: 'legend-swatch' });
      else prims.push({ t: 'dot', x: x + 9, y: cy, r: 3.5, color: s.color, cls: 'legend-swatch' });
      prims.push({ t: 'text', x: x + 26, cy, s: s.name, anchor: 'start', role: 'legend', cls: 'legend' });
      x += w + 24;
    }
  });
  top += rows.length * rowH + (rows.length ? 4 : 0) + m.size.tick / 2;
  const y1 = H - pad - m.size.label - 8 - m.size.tick - 6 - tickLen;
  const y0 = top;
  const yAx = axisOf(ymin, ymax, ly, Math.min(10, Math.max(3, Math.floor((y1 - y0) / 34))));
  const yTickW = Math.max(0, ...yAx.labels.map((l) => m.width(l, 'tick')));
  const x0 = pad + m.size.label + 10 + yTickW + 6 + tickLen;
  let xAx = axisOf(xmin, xmax, lx, 10);
  let x1 = W - pad;
  for (let n = Math.max(2, Math.floor((W - x0 - pad) / 50)); ; n--) {
    xAx = axisOf(xmin, xmax, lx, n);
    const widths = xAx.labels.map((l) => m.width(l, 'tick'));
    x1 = W - Math.max(pad, widths[widths.length - 1]! / 2 + 4);
    const spacing = (x1 - x0) / Math.max(1, xAx.ticks.length - 1);
    if (n <= 2 || Math.max(...widths) + 14 <= spacing) break;
  }
  const tr = (log: boolean) => (v: number) => (log ? Math.log10(v) : v);
  const [tx, ty] = [tr(lx), tr(ly)];
  const X = (v: number) => x0 + ((tx(v) - tx(xAx.lo)) / (tx(xAx.hi) - tx(xAx.lo))) * (x1 - x0);
  const Y = (v: number) => y1 - ((ty(v) - ty(yAx.lo)) / (ty(yAx.hi) - ty(yAx.lo))) * (y1 - y0);
  const crisp = (v: number) => Math.round(v) + 0.5;
  for (const t of xAx.ticks) prims.push({ t: 'line', x1: crisp(X(t)), y1: y0, x2: crisp(X(t)), y2: y1, color: GRID, width: 1 });
  for (const t of yAx.ticks) prims.push({ t: 'line', x1: x0, y1: crisp(Y(t)), x2: x1, y2: crisp(Y(t)), color: GRID, width: 1 });
  for (const s of series) {
    if (!s.band) continue;
    let seg: number[] = [];
    const flush = () => {
      if (seg.length >= 2) {
        const up = seg.map((i): Point => [X(s.x[i]!), Y(s.band!.hi[i]!)]);
        const dn = seg.map((i): Point => [X(s.x[i]!), Y(s.band!.lo[i]!)]).reverse();
        prims.push({ t: 'area', pts: [...up, ...dn], color: s.color, opacity: 0.2 });
      }
      seg = [];
    };
    for (let i = 0; i < s.x.length; i++) {
      if (ok(s.x[i], lx) && ok(s.band.lo[i], ly) && ok(s.band.hi[i], ly)) seg.push(i);
      else flush();
    }
    flush();
  }
  for (const s of series) {
    const segs: Point[][] = [[]];
    const n = Math.min(s.x.length, s.y.length);
    for (let i = 0; i < n; i++) {
      if (ok(s.x[i], lx) && ok(s.y[i], ly)) segs[segs.length - 1]!.push([X(s.x[i]!), Y(s.y[i]!)]);
      else if (segs[segs.length - 1]!.length) segs.push([]);
    }
    const lines = segs.filter((g) => g.length >= 2);
    if (lines.length) prims.push({ t: 'path', segs: lines, color: s.color, width: 2, name: s.name });
    for (const g of segs) if (g.length === 1) prims.push({ t: 'dot', x: g[0]![0], y: g[0]![1], r: 3.5, color: s.color });
  }
  prims.push({ t: 'line', x1: x0 - 0.5, y1: y0, x2: x0 - 0.5, y2: y1 + 0.5, color: AXIS, width: 1 });
  prims.push({ t: 'line', x1: x0 - 0.5, y1: y1 + 0.5, x2: x1, y2: y1 + 0.5, color: AXIS, width: 1 });
  xAx.ticks.forEach((t, i) => {
    const x = crisp(X(t));
    prims.push({ t: 'line', x1: x, y1: y1 + 0.5, x2: x, y2: y1 + tickLen, color: AXIS, width: 1 });
    prims.push({ t: 'text', x, cy: y1 + tickLen + 5 + m.size.tick / 2, s: xAx.labels[i]!, anchor: 'middle', role: 'tick', cls: 'xtick' });
  });
  yAx.ticks.forEach((t, i) => {
    const y = crisp(Y(t));
    prims.push({ t: 'line', x1: x0 - tickLen, y1: y, x2: x0 - 0.5, y2: y, color: AXIS, width: 1 });
    prims.push({ t: 'text', x: x0 - tickLen - 5, cy: y, s: yAx.labels[i]!, anchor: 'end', role: 'tick', cls: 'ytick' });
  });
  for (const t of xAx.minor) prims.push({ t: 'line', x1: crisp(X(t)), y1: y1 + 0.5, x2: crisp(X(t)), y2: y1 + 3, color: AXIS, width: 1 });
  for (const t of yAx.minor) prims.push({ t: 'line', x1: x0 - 3, y1: crisp(Y(t)), x2: x0 - 0.5, y2: crisp(Y(t)), color: AXIS, width: 1 });
  prims.push({ t: 'text', x: (x0 + x1) / 2, cy: H - pad - m.size.label / 2, s: spec.xlabel, anchor: 'middle', role: 'label' });
  prims.push({ t: 'text', x: pad + m.size.label / 2, cy: (y0 + y1) / 2, s: spec.ylabel, anchor: 'middle', role: 'label', vertical: true });
  return { W, H, prims };
}

const SVG_SIZE: Record<Role, number> = { tick: 12, label: 13, title: 15, legend: 12 };
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const f = (v: number) => String(Math.round(v * 100) / 100);

/** Standalone SVG document for the chart. */
export function chartSvg(spec: ChartSpec): string {
  // Approximate sans-serif advance: 0.58 em per character (digits are ~0.556 em in Helvetica/Arial).
  const metrics: Metrics = { size: SVG_SIZE, width: (s, role) => s.length * SVG_SIZE[role] * 0.58 };
  const { W, H, prims } = buildChart(spec, metrics);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, DejaVu Sans, sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
  ];
  for (const p of prims) {
    if (p.t === 'line') {
      out.push(`<line x1="${f(p.x1)}" y1="${f(p.y1)}" x2="${f(p.x2)}" y2="${f(p.y2)}" stroke="${p.color}" stroke-width="${p.width}"${p.cls ? ` class="${p.cls}"` : ''}/>`);
    } else if (p.t === 'path') {
      const d = p.segs.map((g) => g.map(([x, y], i) => `${i ? 'L' : 'M'}${f(x)} ${f(y)}`).join('')).join('');
      out.push(`<path class="series" data-name="${esc(p.name)}" d="${d}" fill="none" stroke="${p.color}" stroke-width="${p.width}" stroke-linejoin="round" stroke-linecap="round"/>`);
    } else if (p.t === 'area') {
      const d = p.pts.map(([x, y], i) => `${i ? 'L' : 'M'}${f(x)} ${f(y)}`).join('') + 'Z';
      out.push(`<path class="band" d="${d}" fill="${p.color}" fill-opacity="${p.opacity}" stroke="none"/>`);
    } else if (p.t === 'dot') {
      out.push(`<circle${p.cls ? ` class="${p.cls}"` : ' class="marker"'} cx="${f(p.x)}" cy="${f(p.y)}" r="${p.r}" fill="${p.color}"/>`);
    } else {
      const size = SVG_SIZE[p.role];
      const y = p.cy + 0.35 * size;
      const rot = p.vertical ? ` transform="rotate(-90 ${f(p.x)} ${f(p.cy)})"` : '';
      const bold = p.role === 'title' ? ' font-weight="bold"' : '';
      const cls = p.cls ? ` class="${p.cls}"` : '';
      out.push(`<text${cls} x="${f(p.x)}" y="${f(y)}" font-size="${size}" fill="${TEXT}" text-anchor="${p.anchor}"${bold}${rot}>${esc(p.s)}</text>`);
    }
  }
  out.push('</svg>');
  return out.join('\n') + '\n';
}

/** The same chart rasterised with Canvas and the 5x7 bitmap font. */
export function chartPng(spec: ChartSpec): Uint8Array {
  const W = Math.round(spec.width ?? 720);
  const fs = W >= 560 ? 2 : 1;
  const size = { tick: 7 * fs, label: 7 * fs, title: 7 * fs, legend: 7 * fs };
  const { H, prims } = buildChart(spec, { size, width: (s) => textWidth(s, fs) });
  const cv = new Canvas(W, H, '#ffffff');
  for (const p of prims) {
    if (p.t === 'line') cv.line(p.x1, p.y1, p.x2, p.y2, p.color, p.width);
    else if (p.t === 'path') for (const g of p.segs) cv.polyline(g, p.color, p.width);
    else if (p.t === 'area') cv.fillPolygon(p.pts, p.color, p.opacity);
    else if (p.t === 'dot') cv.disc(p.x, p.y, p.r, p.color);
    else {
      const tw = textWidth(p.s, fs);
      const shift = p.anchor === 'start' ? 0 : p.anchor === 'middle' ? tw / 2 : tw;
      if (p.vertical) cv.text(Math.round(p.x - 3.5 * fs), Math.round(p.cy - shift), p.s, TEXT, fs, { vertical: true });
      else {
        const x = Math.round(p.x - shift);
        const y = Math.round(p.cy - 3.5 * fs);
        cv.text(x, y, p.s, TEXT, fs);
        if (p.role === 'title' && fs > 1) cv.text(x + 1, y, p.s, TEXT, fs); // faux bold
      }
    }
  }
  return cv.toPng();
}

/**
 * Writes the chart as a restylable figure: NAME.vl.json (Vega-Lite spec reading NAME.csv),
 * NAME.csv (the plotted numbers exactly) and the rendered image(s), each atomically. A path
 * ending in `.svg` or `.png` gives that one image; any other path gets `${path}.svg` and
 * `${path}.png` (PNG at 2x the spec size). Rendering is vega + resvg with the bundled Inter
 * font (src/plot/vega.ts); the call blocks until the files exist. Returns the written paths,
 * images first.
 */
export function writeChart(path: string, spec: ChartSpec): string[] {
  const ext = extname(path).toLowerCase();
  const single = ext === '.svg' || ext === '.png';
  const base = single ? path.slice(0, -ext.length) : path;
  const images = single ? [path] : [`${path}.svg`, `${path}.png`];
  const specFile = `${base}.vl.json`;
  const csvFile = `${base}.csv`;
  writeAtomicSync(csvFile, chartCsv(spec.series));
  writeAtomicSync(specFile, JSON.stringify(chartToVegaLite(spec, basename(csvFile)), null, 2) + '\n');
  renderSpecFileSync(specFile, images);
  return [...images, specFile, csvFile];
}
