// Paper-style line charts, written as Vega-Lite figures (vl-chart.ts builds the spec, vega.ts
// renders it with vega + resvg and the Inter font). The hand-drawn renderer that came before
// (chartSvg/chartPng, Canvas, the bitmap-font axis labels) is gone: every caller uses writeChart.
import { basename, extname } from 'node:path';
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
