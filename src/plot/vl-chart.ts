/**
 * driftlab's line charts (series with optional min..max bands) as Vega-Lite: a spec that reads
 * its numbers from a CSV beside it, so a researcher can restyle the figure (edit NAME.vl.json,
 * re-render with `driftlab plot`) or re-plot the numbers elsewhere (NAME.csv).
 *
 * CSV columns: series,x,y,lo,hi (long format, one row per point; lo/hi empty without a band).
 * Numbers are written with JavaScript's shortest round-trip form, so parsing them back gives
 * the plotted float64 values exactly; non-finite values are written empty (not plotted).
 */
import type { ChartSpec, Series } from './chart.js';

/** Okabe-Ito colour-blind-safe palette (yellow last: low contrast on white). */
export const OKABE_ITO = ['#0072B2', '#D55E00', '#009E73', '#E69F00', '#CC79A7', '#56B4E9', '#000000', '#F0E442'];

export const VL_SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
export const CSV_COLUMNS = ['series', 'x', 'y', 'lo', 'hi'] as const;

const num = (v: number | undefined) => (v !== undefined && Number.isFinite(v) ? String(v) : '');
const quote = (s: string) => (/[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s);

/** Series names made unique (a repeated name gets " (2)", " (3)", ...), in order. */
export function seriesNames(series: Series[]): string[] {
  const seen = new Map<string, number>();
  return series.map((s) => {
    const n = (seen.get(s.name) ?? 0) + 1;
    seen.set(s.name, n);
    return n === 1 ? s.name : `${s.name} (${n})`;
  });
}

/** The plotted numbers as CSV text (header + one row per point, in series order). */
export function chartCsv(series: Series[]): string {
  const names = seriesNames(series);
  const rows = [CSV_COLUMNS.join(',')];
  series.forEach((s, i) => {
    const n = Math.min(s.x.length, s.y.length);
    for (let k = 0; k < n; k++) {
      rows.push([quote(names[i]!), num(s.x[k]), num(s.y[k]), num(s.band?.lo[k]), num(s.band?.hi[k])].join(','));
    }
  });
  return rows.join('\n') + '\n';
}

/** CSV text -> rows of cells (RFC 4180 quoting, LF or CRLF line ends). */
export function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (q) {
      if (c === '"' && text[i + 1] === '"') (cell += '"', i++);
      else if (c === '"') q = false;
      else cell += c;
    } else if (c === '"') q = true;
    else if (c === ',') (row.push(cell), (cell = ''));
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(cell);
      records.push(row);
      (row = []), (cell = '');
    } else cell += c;
  }
  if (cell || row.length) (row.push(cell), records.push(row));
  return records;
}

/**
 * CSV text -> objects keyed by the header; columns typed 'number' in `parse` (Vega-Lite's
 * data.format.parse) become number | null (empty), the rest stay strings.
 */
export function csvObjects(text: string, parse: Record<string, string> = {}): Record<string, string | number | null>[] {
  const [head, ...body] = parseCsv(text);
  if (!head) return [];
  return body.map((r) => Object.fromEntries(head.map((h, j) => {
    const v = r[j] ?? '';
    return [h, parse[h] === 'number' ? (v === '' ? null : Number(v)) : v];
  })));
}

/** Parses the CSV that chartCsv writes; x, y, lo, hi become number | null. */
export function parseChartCsv(text: string): Record<string, string | number | null>[] {
  return csvObjects(text, { x: 'number', y: 'number', lo: 'number', hi: 'number' });
}

/**
 * The Vega-Lite spec for a chart whose data is `dataUrl` (the CSV from chartCsv, relative to the
 * spec file). Size: width x height px in total (autosize fit), like the hand-drawn charts were.
 */
export function chartToVegaLite(spec: ChartSpec, dataUrl: string): Record<string, unknown> {
  const W = Math.round(spec.width ?? 720);
  const H = Math.round(spec.height ?? 450);
  const names = seriesNames(spec.series);
  const colors = spec.series.map((s, i) => s.color ?? OKABE_ITO[i % OKABE_ITO.length]!);
  const hasBand = spec.series.some((s) => s.band);
  const longest = Math.max(0, ...spec.series.map((s) => Math.min(s.x.length, s.y.length)));
  // markers on short series (a sweep over a few guidance scales), plain lines on long curves
  const points = longest <= 30;
  // log axes fit the data (plus a few px) instead of widening to whole decades
  const scale = (log?: boolean) => (log ? { type: 'log', nice: false, padding: 6 } : { zero: false, nice: true });
  const color = (legend: unknown) => ({ field: 'series', type: 'nominal', title: null, sort: null, scale: { domain: names, range: colors }, legend });
  // legend rows above the plot: as many columns as fit in the width (Inter ~0.55 em per char at 12 px)
  const itemW = Math.max(40, ...names.map((n) => 30 + 6.6 * n.length));
  const columns = Math.max(1, Math.min(names.length, Math.floor((W - 20) / (itemW + 16))));
  const legend = { orient: 'top', direction: 'horizontal', columns, symbolType: 'stroke', symbolStrokeWidth: 2.5, symbolSize: 240, symbolOpacity: 1, labelLimit: 260 };
  const logFilter = (f: string) => `isValid(datum.${f}) && isFinite(datum.${f})${spec.logY ? ` && datum.${f} > 0` : ''}`;
  const xFilter = `isValid(datum.x) && isFinite(datum.x)${spec.logX ? ' && datum.x > 0' : ''}`;
  const y = { type: 'quantitative', title: spec.ylabel, scale: scale(spec.logY), axis: { format: spec.logY ? '~g' : undefined, tickCount: spec.logY ? undefined : Math.max(3, Math.round(H / 60)) } };
  const layers: Record<string, unknown>[] = [];
  if (hasBand) {
    layers.push({
      transform: [{ filter: `${xFilter} && ${logFilter('lo')} && ${logFilter('hi')}` }],
      mark: { type: 'area', opacity: 0.2, interpolate: 'linear' },
      encoding: { y: { field: 'lo', ...y, stack: null }, y2: { field: 'hi' }, color: color(legend) },
    });
  }
  layers.push({
    transform: [{ filter: `${xFilter} && ${logFilter('y')}` }],
    params: [
      { name: 'pick', select: { type: 'point', fields: ['series'] }, bind: 'legend' },
      { name: 'zoom', select: { type: 'interval', encodings: ['x', 'y'] }, bind: 'scales' },
    ],
    mark: { type: 'line', strokeWidth: 2, ...(points ? { point: { filled: true, size: 30 } } : {}) },
    encoding: {
      y: { field: 'y', ...y },
      color: color(legend),
      opacity: { condition: { param: 'pick', value: 1 }, value: 0.15 },
      tooltip: [
        { field: 'series', type: 'nominal', title: 'series' },
        { field: 'x', type: 'quantitative', title: spec.xlabel },
        { field: 'y', type: 'quantitative', title: spec.ylabel, format: '.4~g' },
      ],
    },
  });
  const out: Record<string, unknown> = {
    $schema: VL_SCHEMA,
    description: `driftlab chart; the plotted numbers are in ${dataUrl} (columns ${CSV_COLUMNS.join(', ')}; lo..hi = band)`,
    ...(spec.title ? { title: spec.title } : {}),
    width: W,
    height: H,
    autosize: { type: 'fit', contains: 'padding' },
    background: '#ffffff',
    data: { url: dataUrl, format: { type: 'csv', parse: { series: 'string', x: 'number', y: 'number', lo: 'number', hi: 'number' } } },
    encoding: { x: { field: 'x', type: 'quantitative', title: spec.xlabel, scale: scale(spec.logX), axis: { format: spec.logX ? '~g' : undefined, tickCount: spec.logX ? undefined : Math.max(3, Math.round(W / 90)) } } },
    layer: layers,
    config: CHART_CONFIG,
  };
  return JSON.parse(JSON.stringify(out)); // drops the undefined axis formats
}

/** Paper style: Inter, dark text, light grid, no chart border. */
export const CHART_CONFIG = {
  font: 'Inter, Helvetica, Arial, sans-serif',
  padding: 8,
  view: { stroke: null },
  title: { fontSize: 15, fontWeight: 'bold', color: '#222222', anchor: 'middle', offset: 8 },
  axis: { labelFontSize: 12, titleFontSize: 13, titleFontWeight: 'normal', labelColor: '#333333', titleColor: '#222222', gridColor: '#e6e6e6', domainColor: '#333333', tickColor: '#333333', labelFlush: false },
  legend: { labelFontSize: 12, labelColor: '#222222', padding: 2, offset: 10, columnPadding: 16, rowPadding: 4 },
  line: { strokeCap: 'round', strokeJoin: 'round' },
};
