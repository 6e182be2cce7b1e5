/**
 * The fixed parts of every report page: the render-check script, the vega-embed bootstrap, the
 * chart libraries bundled inline, the Content-Security-Policy that allows only those scripts
 * (by hash), and the style sheet.
 */
import * as fs from 'node:fs';
import { createHash } from 'node:crypto';
import { packageFile } from '../../plot/vega.js';

// The render check. Kept free of '<' so it can never close its own <script> element early.
export const CHECK_SCRIPT = `(function () {
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
export const EMBED_SCRIPT = `(function () {
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
export function chartLibraries(): string[] {
  bundle ??= [['vega', 'build/vega.min.js'], ['vega-lite', 'build/vega-lite.min.js'], ['vega-embed', 'build/vega-embed.min.js']].map(([pkg, rel]) => {
    const js = fs.readFileSync(packageFile(pkg!, rel!), 'utf8').replace(/\/\/# sourceMappingURL=\S+\s*$/, '');
    return js.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
  });
  return bundle;
}
const sha = (js: string) => `'sha256-${createHash('sha256').update(js, 'utf8').digest('base64')}'`;
export const csp = (scripts: string[]) => `default-src 'none'; img-src data: blob: 'self'; media-src data: 'self'; style-src 'unsafe-inline'; script-src ${scripts.map(sha).join(' ')}; base-uri 'none'; form-action 'none'`;

export const CSS = `
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
