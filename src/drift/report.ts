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
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { packageFile } from '../plot/vega.js';
import { csvObjects } from '../plot/vl-chart.js';

export interface ReportTable { title: string; caption?: string; columns: string[]; rows: (string | number)[][] }
export interface ReportFigure {
  id: string; title: string; caption?: string; /** SVG file path */ svg?: string; /** PNG file path */ png?: string;
  /** Vega-Lite spec (default: NAME.vl.json beside the SVG, when it exists) drawn as an interactive chart */
  vl?: string;
}
export interface ReportVideo { id: string; title: string; caption?: string; /** GIF file path */ gif?: string; /** MP4 file path */ mp4?: string }
export interface ReportSpec {
  title: string;
  subtitle?: string;
  /** run details: command, checkpoint, engine, seed, horizon, rollouts, date, ... */
  meta: Record<string, string | number>;
  tables: ReportTable[];
  figures: ReportFigure[];
  videos: ReportVideo[];
  /** e.g. what each metric is and is not comparable with */
  notes: string[];
  /** directory the report will be written to, for relative links (writeReport sets it; default cwd) */
  baseDir?: string;
  /** MP4s up to this size are embedded as data: URIs, larger ones linked (default 1 MB) */
  maxInlineVideoBytes?: number;
  /** GIFs up to this size are embedded as data: URIs, larger ones shown by relative URL (default 2 MB) */
  maxInlineGifBytes?: number;
}

const DEFAULT_MAX_INLINE_VIDEO = 1024 * 1024;
const DEFAULT_MAX_INLINE_GIF = 2 * 1024 * 1024;

/** Escape text for HTML element content and double-quoted attribute values. */
export function escapeHtml(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A stable, attribute-safe id fragment: letters, digits, '-', '_' (anything else becomes '-'). */
function slug(id: string): string {
  const s = String(id).trim().replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '');
  return s || 'x';
}

function readMedia(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code;
    throw new DriftlabError(`report: cannot read ${what} ${file}${code === 'ENOENT' ? ': file not found' : `: ${code ?? String(e).split('\n')[0]}`}`);
  }
}

const dataUri = (mime: string, bytes: Uint8Array) => `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;

function relLink(baseDir: string, file: string): string {
  const rel = path.relative(path.resolve(baseDir), path.resolve(file)).split(path.sep).join('/');
  return rel.split('/').map(encodeURIComponent).join('/');
}

/**
 * Inline-safe SVG markup, or null when the file does not look like one SVG document (the caller
 * then embeds it as a data: URI <img>, where scripts never run). Strips the XML prolog, doctype,
 * comments, <script>/<foreignObject>/embedding elements, on* attributes and javascript:/external
 * links; ids are prefixed so several inline SVGs cannot collide.
 */
export function sanitizeSvg(text: string, idPrefix: string): string | null {
  let s = text.replace(/^\uFEFF/, '');
  s = s.replace(/<\?[\s\S]*?\?>/g, '');
  s = s.replace(/<!DOCTYPE[^>[]*(\[[\s\S]*?\])?\s*>/gi, '');
  s = s.replace(/<!--[\s\S]*?-->/g, '');
  for (const tag of ['script', 'foreignObject', 'iframe', 'object', 'embed', 'audio', 'video', 'handler', 'listener']) {
    s = s.replace(new RegExp(`<${tag}\\b[\\s\\S]*?<\\/${tag}\\s*>`, 'gi'), '');
    s = s.replace(new RegExp(`<${tag}\\b[^>]*>`, 'gi'), '');
  }
  s = s.replace(/\s+on[a-z0-9_:-]*\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)/gi, '');
  s = s.replace(/(\s(?:xlink:)?href\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)/gi, (m, pre: string, v: string) => {
    const url = v.replace(/^["']|["']$/g, '').trim();
    return url.startsWith('#') || /^data:image\//i.test(url) ? m : `${pre}"#"`;
  });
  s = s.trim();
  if (!/^<svg[\s>]/i.test(s) || !/<\/svg>$/i.test(s)) return null;
  if (/<script|\son[a-z]+\s*=|javascript:|<foreignObject|<!ENTITY/i.test(s)) return null; // paranoia: fall back to <img>
  s = s.replace(/(\sid\s*=\s*)(["'])([^"']*)\2/gi, (_m, pre: string, q: string, v: string) => `${pre}${q}${idPrefix}${v}${q}`);
  s = s.replace(/url\(\s*(["']?)#/g, (_m, q: string) => `url(${q}#${idPrefix}`);
  s = s.replace(/(\s(?:xlink:)?href\s*=\s*)(["'])#/gi, (_m, pre: string, q: string) => `${pre}${q}#${idPrefix}`);
  return s;
}

// The render check. Kept free of '<' so it can never close its own <script> element early.
const CHECK_SCRIPT = `(function () {
  var H264 = 'video/mp4; codecs="avc1.64001E"';
  var errors = [];
  function note(s) { if (errors.length !== 50) errors.push(String(s).slice(0, 300)); }
  window.addEventListener('error', function (e) { note('error: ' + (e.message || 'script error')); });
  window.addEventListener('unhandledrejection', function (e) { note('unhandled rejection: ' + (e.reason && e.reason.message || e.reason)); });
  document.addEventListener('securitypolicyviolation', function (e) { note('CSP blocked ' + e.violatedDirective + ' ' + (e.blockedURI || '')); });
  var consoleError = console.error;
  console.error = function () { note('console.error: ' + Array.prototype.slice.call(arguments).join(' ')); return consoleError.apply(console, arguments); };
  function idOf(el, i, kind) { return el.id || (el.closest('[id]') ? el.closest('[id]').id + '/' : '') + kind + i; }
  function settled(v) { return v.readyState >= 1 || v.error !== null; }
  function scrollsInBox(el) {
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (getComputedStyle(p).overflowX !== 'visible') return true;
    }
    return false;
  }
  function finish() {
    var out = { images: { ok: 0, bad: [] }, svgs: { ok: 0, bad: [] }, videos: { ok: 0, bad: [], gifFallback: [] }, h264: '', charts: { ok: 0, bad: [] }, errors: errors, layout: { width: 0, scrollWidth: 0, wide: [] } };
    var probe = document.createElement('video');
    out.h264 = probe.canPlayType ? probe.canPlayType(H264) : '';
    var okImg = {};
    Array.prototype.forEach.call(document.images, function (im, i) {
      var id = idOf(im, i, 'img');
      if (im.complete && im.naturalWidth > 0) { out.images.ok++; okImg[im.id] = true; } else out.images.bad.push(id);
    });
    Array.prototype.forEach.call(document.querySelectorAll('svg.inline-svg'), function (sv, i) {
      var r = sv.getBoundingClientRect(), b = { width: 0, height: 0 };
      try { b = sv.getBBox(); } catch (e) { /* not rendered */ }
      if (r.width > 0 && r.height > 0 && (b.width > 0 || b.height > 0)) out.svgs.ok++; else out.svgs.bad.push(idOf(sv, i, 'svg'));
    });
    Array.prototype.forEach.call(document.querySelectorAll('video'), function (v, i) {
      var id = idOf(v, i, 'video');
      if (v.readyState >= 1 && !v.error && v.videoWidth > 0) out.videos.ok++;
      else if (v.dataset.gifTwin && okImg[v.dataset.gifTwin] && !out.h264) { out.videos.ok++; out.videos.gifFallback.push(id); }
      else out.videos.bad.push(id);
    });
    Array.prototype.forEach.call(document.querySelectorAll('div.vl-chart'), function (el, i) {
      var sv = el.querySelector('svg'), r = sv ? sv.getBoundingClientRect() : { width: 0 };
      var marks = el.querySelectorAll('.mark-line path, .mark-area path, .mark-symbol path').length;
      if (el.dataset.chart === 'ok' && r.width > 0 && marks > 0) out.charts.ok++; else out.charts.bad.push(idOf(el, i, 'chart'));
    });
    var W = document.documentElement.clientWidth;
    out.layout.width = W;
    out.layout.scrollWidth = document.documentElement.scrollWidth;
    Array.prototype.forEach.call(document.body.querySelectorAll('*'), function (el, i) {
      var r = el.getBoundingClientRect();
      if ((r.width === 0 && r.height === 0) || !(r.right > W + 1)) return;
      if (!scrollsInBox(el) && out.layout.wide.length !== 20) out.layout.wide.push(idOf(el, i, el.tagName.toLowerCase()) + ' (' + Math.round(r.right) + ' px)');
    });
    var pre = document.getElementById('render-check');
    pre.textContent = JSON.stringify(out);
    document.body.dataset.rendered = '1';
  }
  window.addEventListener('load', function () {
    var t0 = Date.now();
    (function wait() {
      var vids = document.querySelectorAll('video'), charts = window.driftlabCharts;
      var done = Array.prototype.every.call(vids, settled) && (!charts || charts.pending === 0);
      if (done || Date.now() - t0 > 8000) finish(); else setTimeout(wait, 50);
    })();
  });
})();`;

// Draws every div.vl-chart from its JSON spec with vega-embed. Expressions run through vega's
// interpreter (ast: true), so the page needs no 'unsafe-eval'. Kept free of '<' like the check.
const EMBED_SCRIPT = `(function () {
  var els = document.querySelectorAll('div.vl-chart');
  var st = window.driftlabCharts = { pending: els.length };
  Array.prototype.forEach.call(els, function (el) {
    function done(ok) { el.dataset.chart = ok ? 'ok' : 'bad'; st.pending--; }
    try {
      var spec = JSON.parse(document.getElementById(el.dataset.spec).textContent);
      vegaEmbed(el, spec, { renderer: 'svg', ast: true, actions: { export: true, source: true, compiled: false, editor: false } })
        .then(function () { done(true); }, function (e) { console.error('chart ' + el.id + ': ' + (e && e.message || e)); done(false); });
    } catch (e) { console.error('chart ' + el.id + ': ' + (e && e.message || e)); done(false); }
  });
})();`;

/** vega, vega-lite and vega-embed (their UMD builds from node_modules), read once per process. */
let bundle: string[] | null = null;
function chartLibraries(): string[] {
  bundle ??= [['vega', 'build/vega.min.js'], ['vega-lite', 'build/vega-lite.min.js'], ['vega-embed', 'build/vega-embed.min.js']].map(([pkg, rel]) => {
    const js = fs.readFileSync(packageFile(pkg!, rel!), 'utf8').replace(/\/\/# sourceMappingURL=\S+\s*$/, '');
    return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  });
  return bundle;
}
const sha = (js: string) => `'sha256-${createHash('sha256').update(js, 'utf8').digest('base64')}'`;
const csp = (scripts: string[]) => `default-src 'none'; img-src data: blob: 'self'; media-src data: 'self'; style-src 'unsafe-inline'; script-src ${scripts.map(sha).join(' ')}; base-uri 'none'; form-action 'none'`;

const CSS = `
:root { --fg: #1d2330; --muted: #5b6577; --line: #d9dee7; --bg: #ffffff; --soft: #f5f7fa; --accent: #0b5cad; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Helvetica, Arial, sans-serif; }
main { max-width: 62rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .25rem; }
h2 { font-size: 1.35rem; margin: 2.5rem 0 .75rem; padding-bottom: .3rem; border-bottom: 1px solid var(--line); }
h3 { font-size: 1.1rem; margin: 1.75rem 0 .5rem; }
.subtitle { color: var(--muted); margin: 0 0 1.5rem; font-size: 1.05rem; }
a { color: var(--accent); }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: .75rem 1.25rem; margin: 1rem 0 2rem; }
nav.toc ol { margin: .25rem 0; padding-left: 1.4rem; } nav.toc li { margin: .1rem 0; }
.scroll { overflow-x: auto; max-width: 100%; margin: .5rem 0 1rem; }
.chart-box { overflow-x: auto; max-width: 100%; padding-right: 2px; }
.vl-chart { min-height: 2rem; }
.vega-embed .vega-actions a { white-space: nowrap; }
table { border-collapse: collapse; font-size: .92rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid var(--line); padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; }
table.meta th { text-align: right; } table.meta td { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85rem; word-break: break-all; }
figure { margin: 1.25rem 0 2rem; padding: 0; }
figure .media { display: flex; flex-direction: column; gap: .75rem; align-items: flex-start; }
figure svg, figure img, figure video { max-width: 100%; height: auto; border: 1px solid var(--line); background: #fff; }
figure .pixel { image-rendering: pixelated; min-width: min(100%, 24rem); }
details.player summary { cursor: pointer; color: var(--accent); font-size: .9rem; }
figcaption, .caption { color: var(--muted); font-size: .92rem; margin-top: .4rem; }
.links { font-size: .85rem; color: var(--muted); margin-top: .3rem; }
ul.notes li { margin: .35rem 0; }
footer { margin-top: 3rem; color: var(--muted); font-size: .8rem; }
pre#render-check { white-space: pre-wrap; word-break: break-all; font-size: .75rem; color: var(--muted); }
`;

const isNumeric = (v: string | number) => typeof v === 'number' || /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/.test(v);

function tableHtml(t: ReportTable, i: number): string {
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
function specFileOf(f: ReportFigure): string | undefined {
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

function chartHtml(f: ReportFigure, id: string, specFile: string, baseDir: string): { html: string; json: string } {
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

function figureHtml(f: ReportFigure, id: string): string {
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

function videoHtml(v: ReportVideo, id: string, baseDir: string, maxInline: number, maxGif: number): string {
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

function uniqueIds(items: { id: string }[], kind: string): string[] {
  const seen = new Map<string, string>();
  return items.map((it) => {
    const s = slug(it.id);
    if (seen.has(s)) throw new DriftlabError(`report: two ${kind}s share the id '${s}' ('${seen.get(s)}' and '${it.id}'); ids must be unique`);
    seen.set(s, it.id);
    return s;
  });
}

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
