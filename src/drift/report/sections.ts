/** The report's sections as HTML: tables, figures (interactive Vega-Lite charts, inline SVG, PNG) and videos. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DriftlabError } from '../../util/errors.js';
import { csvObjects } from '../../plot/vl-chart.js';
import { dataUri, escapeHtml, readMedia, relLink, sanitizeSvg, slug } from './html.js';
import type { ReportFigure, ReportTable, ReportVideo } from './types.js';

const isNumeric = (v: string | number) => typeof v === 'number' || /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v);

export function tableHtml(t: ReportTable, i: number): string {
  const width = t.columns.length;
  for (const [r, row] of t.rows.entries()) {
    if (row.length !== width) throw new DriftlabError(`report: table '${t.title}' row ${r} has ${row.length} cells, expected ${width} (one per column)`);
  }
  const head = `<tr>${t.columns.map((c) => `<th scope="col">${escapeHtml(c)}</th>`).join('')}</tr>`;
  const body = t.rows.map((row) => `<tr>${row.map((v) => `<td${isNumeric(v) ? ' class="num"' : ''}>${escapeHtml(v)}</td>`).join('')}</tr>`).join('\n');
  return [
    `<section id="tab-${i + 1}"><h3>${escapeHtml(t.title)}</h3>`,
    t.caption ? `<p class="caption">${escapeHtml(t.caption)}</p>` : '',
    `<div class="scroll"><table><thead>${head}</thead><tbody>\n${body}\n</tbody></table></div></section>`,
  ].join('\n');
}

/** The figure's Vega-Lite spec file: f.vl, else NAME.vl.json beside its SVG when present (a PNG-only figure stays a PNG). */
export function specFileOf(f: ReportFigure): string | undefined {
  if (f.vl) return f.vl;
  if (!f.svg) return undefined;
  const guess = f.svg.replace(/\.svg$/i, '.vl.json');
  return guess !== f.svg && fs.existsSync(guess) ? guess : undefined;
}

/** The spec with its (relative, CSV or JSON) data URL replaced by inline values, so the page needs no file access. */
export function inlineSpecData(specFile: string): Record<string, unknown> {
  let spec: any;
  try {
    spec = JSON.parse(readMedia(specFile, 'Vega-Lite spec').toString('utf8'));
  } catch (e) {
    if (e instanceof DriftlabError) throw e;
    throw new DriftlabError(`report: Vega-Lite spec ${specFile} is not valid JSON`);
  }
  const d = spec?.data;
  if (d && typeof d.url === 'string' && !/^[a-z]+:/i.test(d.url)) {
    const file = path.resolve(path.dirname(specFile), d.url);
    const text = readMedia(file, 'chart data').toString('utf8');
    const type = d.format?.type ?? (/\.json$/i.test(d.url) ? 'json' : 'csv');
    const values = type === 'json' ? JSON.parse(text) : csvObjects(text, d.format?.parse ?? {});
    spec.data = { values };
  }
  return spec;
}

export function chartHtml(f: ReportFigure, id: string, specFile: string, baseDir: string): { html: string; json: string } {
  const title = escapeHtml(f.title);
  const spec = inlineSpecData(specFile);
  const link = (file: string | undefined, label: string) => (file && fs.existsSync(file) ? `<a href="${escapeHtml(relLink(baseDir, file))}">${label}</a>` : '');
  const csv = specFile.replace(/\.vl\.json$/i, '.csv');
  const links = [link(f.svg, 'SVG'), link(f.png, 'PNG'), link(specFile, 'Vega-Lite spec'), csv !== specFile ? link(csv, 'CSV') : ''].filter(Boolean);
  return {
    html: [
      `<figure id="fig-${id}"><h3>${title}</h3>`,
      `<div class="media chart-box"><div id="fig-${id}-chart" class="vl-chart" data-spec="fig-${id}-spec" role="img" aria-label="${title}"></div></div>`,
      links.length ? `<div class="links">Files beside this report: ${links.join(' · ')} (restyle: edit the spec, then driftlab plot SPEC --out fig.svg)</div>` : '',
      f.caption ? `<figcaption>${escapeHtml(f.caption)}</figcaption>` : '',
      '</figure>',
    ].join('\n'),
    // a JSON data block never runs; '<' is escaped so no text in it can close the element
    json: `<script type="application/json" id="fig-${id}-spec">${JSON.stringify(spec).replace(/</g, '\\u003c')}</script>`,
  };
}

export function figureHtml(f: ReportFigure, id: string): string {
  const title = escapeHtml(f.title);
  const media: string[] = [];
  const links: string[] = [];
  if (f.svg) {
    const text = readMedia(f.svg, 'SVG').toString('utf8');
    const inline = sanitizeSvg(text, `fig-${id}-`);
    if (inline) {
      media.push(inline.replace(/^<svg/i, `<svg id="fig-${id}-svg" class="inline-svg" role="img" aria-label="${title}"`));
    } else {
      media.push(`<img id="fig-${id}-svg" alt="${title}" src="${dataUri('image/svg+xml', Buffer.from(text, 'utf8'))}">`);
    }
  }
  if (f.png) {
    const png = readMedia(f.png, 'PNG');
    if (f.svg) links.push(`<a href="${dataUri('image/png', png)}" download="${escapeHtml(slug(path.basename(f.png, '.png')))}.png">PNG version</a>`);
    else media.push(`<img id="fig-${id}-png" alt="${title}" src="${dataUri('image/png', png)}">`);
  }
  if (!media.length) throw new DriftlabError(`report: figure '${f.id}' has neither an svg nor a png file`);
  return [
    `<figure id="fig-${id}"><h3>${title}</h3>`,
    `<div class="media">${media.join('\n')}</div>`,
    links.length ? `<div class="links">${links.join(' · ')}</div>` : '',
    f.caption ? `<figcaption>${escapeHtml(f.caption)}</figcaption>` : '',
    '</figure>',
  ].join('\n');
}

export function videoHtml(v: ReportVideo, id: string, baseDir: string, maxInline: number, maxGif: number): string {
  const title = escapeHtml(v.title);
  const media: string[] = [];
  const links: string[] = [];
  if (v.gif) {
    const gif = readMedia(v.gif, 'GIF');
    const src = gif.length <= maxGif ? dataUri('image/gif', gif) : escapeHtml(relLink(baseDir, v.gif));
    media.push(`<img id="vid-${id}-gif" class="pixel" alt="${title} (animated GIF)" src="${src}">`);
    if (gif.length > maxGif) links.push(`GIF (${(gif.length / 1048576).toFixed(1)} MB) is shown from the file beside this report`);
  }
  if (v.mp4) {
    let size: number;
    try {
      size = fs.statSync(v.mp4).size;
    } catch {
      throw new DriftlabError(`report: cannot read MP4 ${v.mp4}: file not found`);
    }
    if (size <= maxInline) {
      const twin = v.gif ? ` data-gif-twin="vid-${id}-gif"` : '';
      const tag = `<video id="vid-${id}-mp4"${twin} class="pixel" controls muted loop playsinline preload="metadata" aria-label="${title} (MP4)"><source src="${dataUri('video/mp4', readMedia(v.mp4, 'MP4'))}" type="video/mp4">MP4 (H.264) playback is not supported by this browser.</video>`;
      // with a GIF beside it the player is folded away (it still loads: the render check sees it)
      media.push(v.gif ? `<details class="player"><summary>MP4 player (pause, seek)</summary>${tag}</details>` : tag);
    } else {
      links.push(`<a href="${escapeHtml(relLink(baseDir, v.mp4))}">MP4 (${(size / 1048576).toFixed(1)} MB, beside this report; too large to embed)</a>`);
    }
  }
  if (!media.length && !links.length) throw new DriftlabError(`report: video '${v.id}' has neither a gif nor an mp4 file`);
  return [
    `<figure id="vid-${id}"><h3>${title}</h3>`,
    media.length ? `<div class="media">${media.join('\n')}</div>` : '',
    links.length ? `<div class="links">${links.join(' · ')}</div>` : '',
    v.caption ? `<figcaption>${escapeHtml(v.caption)}</figcaption>` : '',
    '</figure>',
  ].join('\n');
}

export function uniqueIds(items: { id: string }[], kind: string): string[] {
  const seen = new Map<string, string>();
  return items.map((it) => {
    const s = slug(it.id);
    if (seen.has(s)) throw new DriftlabError(`report: two ${kind}s share the id '${s}' ('${seen.get(s)}' and '${it.id}'); ids must be unique`);
    seen.set(s, it.id);
    return s;
  });
}
