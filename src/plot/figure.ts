/**
 * Figure files: render a Vega-Lite spec file (its data read relative to the spec) to SVG, PNG or
 * PDF. Used by `driftlab plot` and, through a worker (render-sync.ts), by writeChart.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DriftlabError } from '../util/errors.js';
import { svgToPdf } from './pdf.js';
import { renderSvg, svgToPng } from './vega.js';

export const FIGURE_FORMATS = ['svg', 'png', 'pdf'] as const;
export type FigureFormat = (typeof FIGURE_FORMATS)[number];

/** Format of an output path from its extension, or a DriftlabError naming the choices. */
export function figureFormat(file: string): FigureFormat {
  const ext = path.extname(file).slice(1).toLowerCase();
  if ((FIGURE_FORMATS as readonly string[]).includes(ext)) return ext as FigureFormat;
  throw new DriftlabError(`cannot tell the figure format of ${file}: end it in .svg, .png or .pdf`);
}

/** Writes data atomically (temp file in the same folder + rename). */
export function writeAtomicSync(target: string, data: string | Uint8Array): void {
  mkdirSync(path.dirname(path.resolve(target)), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, target);
}

/** Reads and parses a .vl.json file with errors a user can act on. */
export function readSpec(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    throw new DriftlabError(`cannot read spec ${file}${code === 'ENOENT' ? ': file not found' : `: ${code}`}`);
  }
  try {
    const j = JSON.parse(text);
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not a JSON object');
    return j;
  } catch (e) {
    throw new DriftlabError(`spec ${file} is not valid JSON: ${(e as Error).message.split('\n')[0]}`);
  }
}

export interface RenderFilesOptions {
  /** PNG device pixels per SVG pixel (default 2) */
  scale?: number;
}

/** Renders the spec file once and writes each output (format from its extension). */
export async function renderSpecFile(specFile: string, outputs: string[], opts: RenderFilesOptions = {}): Promise<void> {
  const formats = outputs.map(figureFormat);
  const spec = readSpec(specFile);
  const svg = await renderSvg(spec, { baseDir: path.dirname(path.resolve(specFile)) });
  for (const [i, out] of outputs.entries()) {
    const f = formats[i]!;
    if (f === 'svg') writeAtomicSync(out, svg);
    else if (f === 'png') writeAtomicSync(out, await svgToPng(svg, opts.scale ?? 2));
    else writeAtomicSync(out, await svgToPdf(svg, { title: specTitle(spec) }));
  }
}

/** The spec's title as plain text (a string, or the text of a title object), if any. */
function specTitle(spec: Record<string, unknown>): string | undefined {
  const t = spec.title as unknown;
  const text = typeof t === 'object' && t !== null && !Array.isArray(t) ? (t as { text?: unknown }).text : t;
  if (typeof text === 'string') return text;
  if (Array.isArray(text)) return text.join(' ');
  return undefined;
}
