/**
 * The self-contained HTML report: built from real charts (SVG + PNG), a GIF and (with ffmpeg) an
 * H.264 MP4, then opened in headless Chromium, whose render check must see every plot and video
 * rendered; a corrupt PNG must come back as bad; hostile text must stay text. Without chromium
 * the browser tests fail under CI and are skipped (with a message) elsewhere.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tempDir, rejectsDriftlab, throwsDriftlab } from '../helpers/common.js';
import { writeChart } from '../../src/plot/chart.js';
import { findFfmpeg, writeGif, writeMp4 } from '../../src/video/writers.js';
import { buildReport, sanitizeSvg, writeReport, type ReportSpec } from '../../src/drift/report.js';
import { checkRender, findChromium, parseRenderCheck } from '../../src/util/chromium.js';

const dir = tempDir('driftlab-report-');
const chromium = findChromium();
const ffmpeg = findFfmpeg();
const HOSTILE = `<script>document.body.dataset.pwned='1'</script><img src=x onerror="document.body.dataset.pwned='2'">`;

/** A moving bright square, [T,H,W] bytes. */
function clip(T: number, H: number, W: number): Uint8Array {
  const f = new Uint8Array(T * H * W);
  for (let t = 0; t < T; t++) for (let y = 0; y < 6; y++) for (let x = 0; x < 6; x++) f[t * H * W + (4 + y) * W + ((2 * t + x) % W)] = 255;
  return f;
}

let spec: ReportSpec;
test.before(async () => {
  const xs = [1, 2, 3, 4, 5, 6];
  writeChart(path.join(dir, 'mse'), { title: 'MSE', xlabel: 'frame', ylabel: 'MSE', series: [{ name: 'none', x: xs, y: xs.map((k) => 0.01 * k) }, { name: 'kalman', x: xs, y: xs.map((k) => 0.008 * k) }] });
  writeChart(path.join(dir, 'ssim'), { title: 'SSIM', xlabel: 'frame', ylabel: 'SSIM', series: [{ name: 'none', x: xs, y: xs.map((k) => 1 - 0.05 * k) }] });
  // an SVG from elsewhere (no NAME.vl.json beside it): a polyline and a title
  fs.writeFileSync(path.join(dir, 'plain.svg'), `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200" viewBox="0 0 320 200"><rect width="320" height="200" fill="#ffffff"/><text x="160" y="20" text-anchor="middle" font-size="14">plain</text><polyline fill="none" stroke="#0072B2" stroke-width="2" points="${xs.map((x) => `${40 + 40 * x},${190 - 25 * x}`).join(' ')}"/></svg>\n`);
  await writeGif(path.join(dir, 'clip.gif'), clip(8, 16, 20), 8, 16, 20, { fps: 5, scale: 2 });
  if (ffmpeg) await writeMp4(path.join(dir, 'clip.mp4'), clip(8, 16, 20), 8, 16, 20, { fps: 5, scale: 2 });
  spec = {
    title: 'Drift study <test>', subtitle: 'two correctors & one "clip"',
    meta: { command: 'driftlab drift --horizon 6', checkpoint: 'checkpoints/x', engine: 'tfjs', seed: 3, horizon: 6, rollouts: 2, date: '2025-01-01' },
    tables: [{ title: 'Summary', caption: 'means over rollouts', columns: ['corrector', 'MSE@6', 'note'], rows: [['none', 0.06, 'a<b'], ['kalman', '0.048', '-']] },
      { title: 'Wide', caption: 'more columns than fit: scrolls inside its box', columns: Array.from({ length: 18 }, (_, i) => `metric number ${i}`), rows: [Array.from({ length: 18 }, (_, i) => 1234.56789 * (i + 1))] }],
    figures: [
      { id: 'mse', title: 'MSE per frame', caption: 'line: mean', svg: path.join(dir, 'mse.svg'), png: path.join(dir, 'mse.png') },
      { id: 'ssim', title: 'SSIM per frame', svg: path.join(dir, 'ssim.svg') },
      { id: 'ssim-png', title: 'SSIM (PNG only)', png: path.join(dir, 'ssim.png') },
      { id: 'plain', title: 'An SVG without a Vega-Lite spec', svg: path.join(dir, 'plain.svg') },
    ],
    videos: [{ id: 'side-by-side', title: 'Side by side', caption: 'truth | none', gif: path.join(dir, 'clip.gif'), mp4: ffmpeg ? path.join(dir, 'clip.mp4') : undefined }],
    notes: ['FVD here is not comparable with I3D-based FVD.'],
  };
});

/** Skip (or, under CI, fail) the browser tests when there is no chromium. */
function needChromium(): boolean {
  if (chromium) return true;
  if (process.env.CI) assert.unreachable('chromium not found: .ci/run installs Debian\'s chromium; set CHROMIUM_PATH otherwise');
  console.log('  (skipped: no chromium found; install chromium or set CHROMIUM_PATH to run the render checks)');
  return false;
}

test('report HTML: self-contained, stable ids, table of contents, escaped text', async () => {
  const file = path.join(dir, 'report.html');
  await writeReport(file, spec);
  const html = fs.readFileSync(file, 'utf8');
  for (const id of ['fig-mse', 'fig-ssim', 'fig-ssim-png', 'vid-side-by-side', 'render-check']) assert.ok(html.includes(`id="${id}"`), id);
  for (const id of ['fig-mse', 'fig-ssim', 'vid-side-by-side', 'tab-1', 'run', 'notes']) assert.ok(html.includes(`href="#${id}"`), `toc -> ${id}`);
  assert.not.match(html, /(src|href)="(https?:)?\/\//, 'no external URLs');
  assert.match(html, /Content-Security-Policy/);
  assert.ok(html.includes('Drift study &lt;test&gt;') && html.includes('two correctors &amp; one &quot;clip&quot;') && html.includes('a&lt;b'));
  assert.ok(html.includes('<svg id="fig-plain-svg" class="inline-svg"'), 'SVG without a spec: inline');
  assert.not.ok(html.includes('<?xml'), 'no XML prolog');
  assert.match(html, /<img id="fig-ssim-png-png"[^>]+src="data:image\/png;base64,/);
  // charts: a vega-embed target, the spec with its CSV data inline, links to the files beside the report
  assert.ok(html.includes('<div id="fig-mse-chart" class="vl-chart" data-spec="fig-mse-spec"'), 'chart target');
  const block = /<script type="application\/json" id="fig-mse-spec">([^<]*)<\/script>/.exec(html);
  assert.ok(block, 'spec block');
  const inline = JSON.parse(block![1]!);
  assert.equal(inline.data.values.slice(0, 2), [{ series: 'none', x: 1, y: 0.01, lo: null, hi: null }, { series: 'none', x: 2, y: 0.02, lo: null, hi: null }]);
  for (const f of ['mse.svg', 'mse.png', 'mse.vl.json', 'mse.csv']) assert.ok(html.includes(`<a href="${f}">`), `link to ${f}`);
  assert.not.ok(html.includes('data:image/png;base64') && html.includes('download="mse.png"'), 'chart PNG not inlined');
  assert.ok(html.length < 2.5e6, `report size ${html.length}`);
  assert.match(html, /<img id="vid-side-by-side-gif"[^>]+src="data:image\/gif;base64,/);
  if (ffmpeg) assert.match(html, /<video id="vid-side-by-side-mp4" data-gif-twin="vid-side-by-side-gif" class="pixel" controls muted loop[^>]*><source src="data:video\/mp4;base64,/);
  // a large MP4 is linked relative to the report, not embedded
  if (ffmpeg) {
    const big = buildReport({ ...spec, baseDir: path.dirname(dir), maxInlineVideoBytes: 10 });
    assert.ok(big.includes(`<a href="${path.basename(dir)}/clip.mp4">`), 'relative link');
    assert.not.ok(big.includes('data:video/mp4'));
  }
});

test('SVG sanitizer: scripts, handlers, prolog, external links removed; ids prefixed', () => {
  const evil = `<?xml version="1.0"?>\n<!DOCTYPE svg>\n<!-- c --><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)" width="10" height="10">` +
    `<script>alert(2)</script><defs><clipPath id="c"><rect width="5" height="5"/></clipPath></defs>` +
    `<a href="javascript:alert(3)"><rect ONCLICK='x()' clip-path="url(#c)" width="10" height="10"/></a><image href="https://example.com/x.png"/>` +
    `<foreignObject><div>hi</div></foreignObject></svg>`;
  const s = sanitizeSvg(evil, 'fig-a-')!;
  assert.ok(s, 'still inline');
  assert.ok(s.startsWith('<svg') && s.endsWith('</svg>'));
  assert.not.match(s, /script|onload|onclick|javascript|example\.com|foreignObject|<\?xml|DOCTYPE/i);
  assert.ok(s.includes('id="fig-a-c"') && s.includes('url(#fig-a-c)'));
  assert.is(sanitizeSvg('<html>not svg</html>', 'p'), null);
});

test('bad input: missing media, duplicate ids, ragged rows; render-check parsing', async () => {
  throwsDriftlab(() => buildReport({ ...spec, figures: [{ id: 'x', title: 'x', png: path.join(dir, 'nope.png') }] }), /cannot read PNG .*nope\.png: file not found/);
  throwsDriftlab(() => buildReport({ ...spec, figures: [spec.figures[0], { ...spec.figures[1], id: 'mse' }] }), /two figures share the id 'mse'/);
  throwsDriftlab(() => buildReport({ ...spec, tables: [{ title: 't', columns: ['a', 'b'], rows: [[1]] }] }), /row 0 has 1 cells, expected 2/);
  throwsDriftlab(() => parseRenderCheck('<html><body></body></html>'), /no <pre id="render-check">/);
  throwsDriftlab(() => parseRenderCheck('<pre id="render-check">pending</pre>'), /did not finish its render check/);
  const r = parseRenderCheck('<pre id="render-check">{"images":{"ok":1,"bad":["a&amp;b"]},"svgs":{"ok":0,"bad":[]},"videos":{"ok":0,"bad":[],"gifFallback":[]},"h264":"probably"}</pre>');
  assert.equal(r.images.bad, ['a&b']);
  await rejectsDriftlab(checkRender(path.join(dir, 'missing.html')), /missing\.html is not a readable file/);
  await rejectsDriftlab(checkRender(path.join(dir, 'report.html'), { chromium: path.join(dir, 'no-such-chromium') }), /cannot run chromium/);
  assert.is(findChromium({ PATH: '' }), null);
  assert.is(findChromium({ PATH: '', CHROMIUM_PATH: process.execPath }), process.execPath);
});

test('headless Chromium: every plot and video present and rendered', async () => {
  if (!needChromium()) return;
  const r = await checkRender(path.join(dir, 'report.html'), { timeoutMs: 30_000 });
  assert.equal(r.images.bad, [], `broken images: ${r.raw}`);
  assert.equal(r.svgs.bad, [], `empty svgs: ${r.raw}`);
  assert.equal(r.videos.bad, [], `videos that did not load: ${r.raw}`);
  assert.equal(r.charts.bad, [], `charts vega-embed did not draw: ${r.raw}`);
  assert.is(r.charts.ok, 2, 'two Vega-Lite charts');
  assert.equal(r.errors, [], 'no script errors, console errors or CSP violations');
  assert.is(r.svgs.ok, 1, 'one inline SVG');
  assert.is(r.images.ok, 2, 'PNG-only chart and the GIF');
  assert.is(r.videos.ok, ffmpeg ? 1 : 0);
  if (ffmpeg) assert.equal(r.videos.gifFallback, [], `H.264 decodes in this chromium (canPlayType: '${r.h264}')`);
});

test('headless Chromium at 1,300 and 800 px: every chart drawn, no console errors, nothing wider than the page', async () => {
  if (!needChromium()) return;
  for (const w of [1300, 800]) {
    const r = await checkRender(path.join(dir, 'report.html'), { timeoutMs: 60_000, windowWidth: w });
    assert.is(r.layout.width, w, r.raw);
    assert.equal(r.layout.wide, [], `elements wider than ${w} px: ${r.raw}`);
    assert.ok(r.layout.scrollWidth <= w, `page scrolls sideways at ${w} px: ${r.layout.scrollWidth}`);
    assert.is(r.charts.ok, 2, r.raw);
    assert.equal(r.errors, [], r.raw);
  }
});

test('headless Chromium: a GIF too large to inline is shown from the file beside the report', async () => {
  const file = path.join(dir, 'linked.html');
  await writeReport(file, { ...spec, figures: [], tables: [], maxInlineGifBytes: 10, maxInlineVideoBytes: 10 });
  const html = fs.readFileSync(file, 'utf8');
  assert.match(html, /<img id="vid-side-by-side-gif"[^>]+src="clip.gif">/);
  assert.not.ok(html.includes('data:image/gif'));
  if (!needChromium()) return;
  const r = await checkRender(file, { timeoutMs: 60_000 });
  assert.equal(r.images.bad, [], r.raw);
  assert.is(r.images.ok, 1, 'the linked GIF loads');
  assert.equal(r.errors, [], r.raw);
});

test('headless Chromium: a corrupt PNG is reported as bad; hostile titles stay text', async () => {
  if (!needChromium()) return;
  const bad = path.join(dir, 'corrupt.png');
  const png = fs.readFileSync(path.join(dir, 'ssim.png'));
  const corrupt = Buffer.concat([png.subarray(0, 40), Buffer.alloc(200, 0x5a)]); // valid signature + IHDR, garbage after
  fs.writeFileSync(bad, corrupt);
  const file = path.join(dir, 'bad.html');
  await writeReport(file, {
    ...spec, title: HOSTILE, subtitle: HOSTILE, meta: { [HOSTILE]: HOSTILE }, notes: [HOSTILE],
    figures: [{ id: 'broken', title: HOSTILE, png: bad }, spec.figures[1]], videos: [{ id: 'v', title: HOSTILE, gif: path.join(dir, 'clip.gif') }],
  });
  const r = await checkRender(file, { timeoutMs: 30_000, keepDom: true });
  assert.equal(r.images.bad, ['fig-broken-png'], r.raw);
  assert.is(r.images.ok, 1, 'the GIF');
  assert.is(r.charts.ok, 1);
  assert.not.match(r.dom!, /data-pwned/, 'injected script or handler ran');
  assert.ok(r.dom!.includes('&lt;script&gt;document.body.dataset.pwned'), 'the title shows as text');
  // the render check, the chart libraries + embedder, and one JSON spec block: nothing injected
  assert.is((r.dom!.match(/<script\b/g) ?? []).length, 1 + 4 + 1, 'only driftlab\'s scripts');
});

test.run();
