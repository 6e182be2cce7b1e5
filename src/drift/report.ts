/**
 * A self-contained HTML report (one file, no network): run details, tables, figures, videos and
 * notes. A figure with a Vega-Lite spec (f.vl, or NAME.vl.json beside its SVG, as writeChart writes) is an
 * interactive chart drawn by vega-embed, bundled inline with its data, with links to the SVG,
 * PNG, spec and CSV files beside the report; other figures are inline SVG (sanitized) or a PNG.
 * Videos: GIF as a data: URI image when small, else by relative URL; MP4 likewise (data: URI
 * <video> when small, else a link). Tables scroll inside their own box.
 *
 * Every figure is <figure id="fig-ID">, every video <figure id="vid-ID">. A Content-Security-Policy
 * allows only data: images/media, inline styles and the one hashed render-check script, so nothing
 * can load from the network and no injected script or on* handler could run. After window load
 * that script checks every <img> (decoded, naturalWidth > 0), inline <svg> (non-empty bounding
 * box) and <video> (metadata loaded, no error) and writes the tally into
 * <pre id="render-check">{"images":{"ok":n,"bad":[ids]},"svgs":...,"videos":...}</pre>
 * and sets body[data-rendered="1"]; src/util/chromium.ts reads it back from headless Chromium.
 * The tally also lists the charts that vega-embed drew (or failed to), every script error,
 * console.error and CSP violation, and the elements wider than the window (outside a box that
 * scrolls), so one headless load per window width checks the whole page.
 *
 * This file assembles the page; report/sections.ts writes the tables, figures and videos,
 * report/page.ts holds the scripts, CSP and style, report/html.ts escaping and SVG sanitizing.
 */
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { escapeHtml } from './report/html.js';
import { CHECK_SCRIPT, CSS, EMBED_SCRIPT, chartLibraries, csp } from './report/page.js';
import { chartHtml, figureHtml, specFileOf, tableHtml, uniqueIds, videoHtml } from './report/sections.js';
import type { ReportSpec } from './report/types.js';

export type { ReportFigure, ReportSpec, ReportTable, ReportVideo } from './report/types.js';
export { escapeHtml, sanitizeSvg } from './report/html.js';
export { inlineSpecData } from './report/sections.js';

const DEFAULT_MAX_INLINE_VIDEO = 1024 * 1024;
const DEFAULT_MAX_INLINE_GIF = 2 * 1024 * 1024;

/** The report as one self-contained HTML document. Reads the referenced media files (sync). */
export function buildReport(spec: ReportSpec): string {
  const baseDir = spec.baseDir ?? process.cwd();
  const maxInline = spec.maxInlineVideoBytes ?? DEFAULT_MAX_INLINE_VIDEO;
  const maxGif = spec.maxInlineGifBytes ?? DEFAULT_MAX_INLINE_GIF;
  const specBlocks: string[] = [];
  const figIds = uniqueIds(spec.figures, 'figure');
  const vidIds = uniqueIds(spec.videos, 'video');
  const toc: string[] = [];
  const body: string[] = [];
  const metaRows = Object.entries(spec.meta);
  if (metaRows.length) {
    toc.push('<li><a href="#run">Run</a></li>');
    body.push('<section id="run"><h2>Run</h2><div class="scroll"><table class="meta"><tbody>');
    body.push(...metaRows.map(([k, v]) => `<tr><th scope="row">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`));
    body.push('</tbody></table></div></section>');
  }
  if (spec.tables.length) {
    toc.push(`<li><a href="#tables">Tables</a><ol>${spec.tables.map((t, i) => `<li><a href="#tab-${i + 1}">${escapeHtml(t.title)}</a></li>`).join('')}</ol></li>`);
    body.push('<section id="tables"><h2>Tables</h2>', ...spec.tables.map(tableHtml), '</section>');
  }
  if (spec.figures.length) {
    toc.push(`<li><a href="#figures">Figures</a><ol>${spec.figures.map((f, i) => `<li><a href="#fig-${figIds[i]}">${escapeHtml(f.title)}</a></li>`).join('')}</ol></li>`);
    body.push('<section id="figures"><h2>Figures</h2>', ...spec.figures.map((f, i) => {
      const vl = specFileOf(f);
      if (!vl) return figureHtml(f, figIds[i]);
      const c = chartHtml(f, figIds[i], vl, baseDir);
      specBlocks.push(c.json);
      return c.html;
    }), '</section>');
  }
  if (spec.videos.length) {
    toc.push(`<li><a href="#videos">Videos</a><ol>${spec.videos.map((v, i) => `<li><a href="#vid-${vidIds[i]}">${escapeHtml(v.title)}</a></li>`).join('')}</ol></li>`);
    body.push('<section id="videos"><h2>Videos</h2>', ...spec.videos.map((v, i) => videoHtml(v, vidIds[i], baseDir, maxInline, maxGif)), '</section>');
  }
  if (spec.notes.length) {
    toc.push('<li><a href="#notes">Notes</a></li>');
    body.push('<section id="notes"><h2>Notes</h2><ul class="notes">', ...spec.notes.map((n) => `<li>${escapeHtml(n)}</li>`), '</ul></section>');
  }
  const scripts = [CHECK_SCRIPT, ...(specBlocks.length ? [...chartLibraries(), EMBED_SCRIPT] : [])];
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<meta http-equiv="Content-Security-Policy" content="${csp(scripts)}">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="generator" content="driftlab">',
    `<title>${escapeHtml(spec.title)}</title>`,
    `<style>${CSS}</style>`,
    `<script>${CHECK_SCRIPT}</script>`,
    '</head><body><main>',
    `<header><h1>${escapeHtml(spec.title)}</h1>${spec.subtitle ? `<p class="subtitle">${escapeHtml(spec.subtitle)}</p>` : ''}</header>`,
    toc.length ? `<nav class="toc" aria-label="Contents"><strong>Contents</strong><ol>${toc.join('\n')}</ol></nav>` : '',
    ...body,
    '<footer>Generated by driftlab. Self-contained: charts (vega-embed, bundled), images and small videos are embedded in this file; large videos and the figure files are linked beside it.',
    '<pre id="render-check">pending</pre></footer>',
    '</main>',
    ...specBlocks,
    ...scripts.slice(1).map((js) => `<script>${js}</script>`),
    '</body></html>',
    '',
  ].join('\n');
}

/** buildReport, written atomically; relative links are resolved against the report's directory. */
export async function writeReport(file: string, spec: ReportSpec): Promise<void> {
  const html = buildReport({ ...spec, baseDir: spec.baseDir ?? path.dirname(path.resolve(file)) });
  await writeFileAtomic(file, html);
}
