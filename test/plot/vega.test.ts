/**
 * Vega-Lite figures: every kind of chart driftlab writes (drift curves with bands, FID against
 * guidance, loss on a log axis, a 1000-step schedule, a log-x sweep) validates against the
 * vega-lite JSON schema, renders to SVG and PNG of the spec's size, keeps the plotted numbers
 * exactly in its CSV, and the same input gives byte-identical files. `driftlab plot`
 * re-renders an edited spec.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inflateSync } from 'node:zlib';
import { writeChart, type ChartSpec, type Series } from '../../src/plot/chart.js';
import { decodePng } from '../../src/plot/png.js';
import { chartCsv, parseChartCsv } from '../../src/plot/vl-chart.js';
import { validateVegaLite } from '../../src/plot/vl-schema.js';
import { plotCommand } from '../../src/commands/plot.js';
import { rejectsDriftlab } from '../helpers/common.js';

const CLI = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');
const dir = mkdtempSync(join(tmpdir(), 'vega-'));
const frames = Array.from({ length: 24 }, (_, i) => i + 1);
const band = (y: number[], f: number) => ({ lo: y.map((v) => v * (1 - f)), hi: y.map((v) => v * (1 + f)) });
const mse = frames.map((k) => 0.003 * k ** 1.3 + 0.1 / 3);

const CHARTS: Record<string, ChartSpec> = {
  drift: {
    title: 'MSE against frame index', xlabel: 'generated frame k', ylabel: 'MSE', logY: true,
    series: [
      { name: 'none', x: frames, y: mse, band: band(mse, 0.3) },
      { name: 'kalman, "tuned"', x: frames, y: mse.map((v) => v * 0.7), band: band(mse, 0.2) },
      { name: 'real (recovery floor)', x: frames, y: frames.map(() => 0.02), color: '#000000' },
    ],
  },
  fid: { title: 'FID against guidance scale', xlabel: 'guidance scale w', ylabel: 'FID', series: [{ name: 'DDIM 50 steps', x: [0, 1, 2, 3, 5], y: [41.2, 25.03, 19.9, 22.1, 30.7] }, { name: 'single', x: [1.5], y: [33] }] },
  loss: { title: 'training loss', xlabel: 'step', ylabel: 'loss', logY: true, width: 640, height: 360, series: [{ name: 'target frames', x: frames.map((k) => k * 50), y: frames.map((k) => 1 / k + 0.01) }] },
  schedule: {
    title: 'cosine schedule (T = 1000)', xlabel: 'timestep t', ylabel: 'alphaBar', series: [
      { name: 'alphaBar', x: Array.from({ length: 1000 }, (_, t) => t), y: Array.from({ length: 1000 }, (_, t) => Math.cos(((t / 1000 + 0.008) / 1.008) * (Math.PI / 2)) ** 2) },
    ],
  },
  sweep: { title: 'MSE against context noise', xlabel: 'noise level', ylabel: 'MSE', logX: true, series: [{ name: 'k=8', x: [0.001, 0.01, 0.1, 0.3], y: [0.2, 0.15, 0.1, 0.12] }] },
};

const written: Record<string, string[]> = {};
test.before(() => {
  for (const [name, spec] of Object.entries(CHARTS)) written[name] = writeChart(join(dir, 'a', name), spec);
});
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('each spec validates against the Vega-Lite schema; log axes where asked', async () => {
  for (const name of Object.keys(CHARTS)) {
    const spec = JSON.parse(readFileSync(join(dir, 'a', `${name}.vl.json`), 'utf8'));
    assert.equal(await validateVegaLite(spec), [], name);
    assert.is(spec.data.url, `${name}.csv`, 'data read from the CSV beside the spec');
    const text = JSON.stringify(spec);
    assert.is(text.includes('"type":"log"'), !!(CHARTS[name]!.logX || CHARTS[name]!.logY), `${name} log axis`);
  }
  assert.ok((await validateVegaLite({ mark: 'lin', data: { values: [] } })).length > 0, 'a bad mark is caught');
});

test('renders to SVG of the spec size and PNG at 2x, with titles, legend and palette', () => {
  for (const [name, spec] of Object.entries(CHARTS)) {
    const W = spec.width ?? 720;
    const H = spec.height ?? 450;
    assert.equal(written[name], ['svg', 'png', 'vl.json', 'csv'].map((e) => join(dir, 'a', `${name}.${e}`)));
    const svg = readFileSync(join(dir, 'a', `${name}.svg`), 'utf8');
    assert.match(svg, new RegExp(`^<svg[^>]* width="${W}" height="${H}"`), `${name} svg size`);
    for (const s of [spec.xlabel, spec.ylabel, spec.title!]) assert.ok(svg.includes(s.replace(/&/g, '&amp;')), `${name}: ${s}`);
    assert.match(svg, /font-family="Inter/);
    const png = decodePng(readFileSync(join(dir, 'a', `${name}.png`)));
    assert.equal([png.width, png.height], [2 * W, 2 * H], `${name} png size`);
  }
  const drift = readFileSync(join(dir, 'a', 'drift.svg'), 'utf8');
  assert.ok(drift.includes('kalman, &quot;tuned&quot;') || drift.includes('kalman, "tuned"'), 'legend label');
  assert.ok(drift.includes('#0072B2') && drift.includes('#D55E00'), 'Okabe-Ito colours');
});

test('the CSV holds the plotted numbers exactly (non-finite values left empty)', () => {
  for (const [name, spec] of Object.entries(CHARTS)) {
    const rows = parseChartCsv(readFileSync(join(dir, 'a', `${name}.csv`), 'utf8'));
    assert.is(rows.length, spec.series.reduce((n, s) => n + s.x.length, 0), name);
    let r = 0;
    for (const s of spec.series) {
      for (let k = 0; k < s.x.length; k++, r++) {
        const row = rows[r]!;
        assert.is(row.series, s.name);
        assert.ok(Object.is(row.x, s.x[k]) && Object.is(row.y, s.y[k]), `${name} row ${r}: ${JSON.stringify(row)}`);
        assert.is(row.lo, s.band ? s.band.lo[k]! : null);
        assert.is(row.hi, s.band ? s.band.hi[k]! : null);
      }
    }
  }
  const odd: Series[] = [{ name: 'a,b\n"c"', x: [0.1 + 0.2, 1e-300, 5e-324, -0], y: [NaN, Infinity, Math.PI, 1 / 3] }];
  const back = parseChartCsv(chartCsv(odd));
  assert.equal(back.map((r) => r.series), Array(4).fill('a,b\n"c"'));
  assert.equal(back.map((r) => r.x), [0.1 + 0.2, 1e-300, 5e-324, 0]);
  assert.equal(back.map((r) => r.y), [null, null, Math.PI, 1 / 3]);
});

test('same input, byte-identical data and image files', () => {
  writeChart(join(dir, 'b', 'drift'), CHARTS.drift!);
  for (const ext of ['vl.json', 'csv', 'svg', 'png']) {
    assert.ok(readFileSync(join(dir, 'a', `drift.${ext}`)).equals(readFileSync(join(dir, 'b', `drift.${ext}`))), ext);
  }
});

/**
 * A small PDF reader, independent of pdfkit: the page MediaBox, the embedded font files and the
 * text of each BT..ET block, decoded from the content streams' glyph codes through each font's
 * ToUnicode CMap (the map a viewer uses to copy and search text).
 */
function readPdf(buf: Buffer) {
  const s = buf.toString('latin1');
  const objs = new Map<number, { dict: string; stream?: string }>();
  for (const m of s.matchAll(/(\d+) 0 obj\s*([\s\S]*?)endobj/g)) {
    const body = m[2]!;
    const k = body.indexOf('stream');
    if (k < 0) { objs.set(Number(m[1]), { dict: body }); continue; }
    const start = m.index! + m[0].indexOf(body) + k + 'stream'.length + (body[k + 6] === '\r' ? 2 : 1);
    const len = Number(/\/Length (\d+)/.exec(body)![1]);
    const raw = buf.subarray(start, start + len);
    objs.set(Number(m[1]), { dict: body.slice(0, k), stream: /\/FlateDecode/.test(body.slice(0, k)) ? inflateSync(raw).toString('latin1') : raw.toString('latin1') });
  }
  const ref = (d: string, key: string) => { const r = new RegExp(`/${key} (\\d+) 0 R`).exec(d); return r ? objs.get(Number(r[1])) : undefined; };
  const pages = [...objs.values()].filter((o) => /\/Type \/Page\b/.test(o.dict));
  const box = /\/MediaBox \[([^\]]*)\]/.exec(pages[0]!.dict)![1]!.trim().split(/\s+/).map(Number);
  const fontNames = new Map<string, Map<number, string>>(); // resource name -> code -> text
  const fonts = /\/Font <<([\s\S]*?)>>/.exec(pages[0]!.dict + (ref(pages[0]!.dict, 'Resources')?.dict ?? ''))?.[1] ?? '';
  const embedded: string[] = [];
  for (const [, res, no] of fonts.matchAll(/\/(\w+) (\d+) 0 R/g)) {
    const font = objs.get(Number(no))!.dict;
    const cmap = new Map<number, string>();
    const uni = ref(font, 'ToUnicode')?.stream ?? '';
    const hex = (h: string) => String.fromCodePoint(...(h.match(/..../g) ?? []).map((c) => parseInt(c, 16)));
    for (const [, a, b, list] of uni.matchAll(/<([0-9a-f]+)>\s*<([0-9a-f]+)>\s*\[([^\]]*)\]/gi)) {
      const dst = [...list!.matchAll(/<([0-9a-f]+)>/gi)].map((x) => hex(x[1]!));
      for (let c = parseInt(a!, 16); c <= parseInt(b!, 16); c++) cmap.set(c, dst[c - parseInt(a!, 16)]!);
    }
    fontNames.set(res!, cmap);
    const desc = ref(objs.get(Number(/\/DescendantFonts \[(\d+) 0 R/.exec(font)?.[1]))?.dict ?? font, 'FontDescriptor');
    if (desc && ref(desc.dict, 'FontFile2')?.stream?.length) embedded.push(/\/FontName \/(\S+)/.exec(desc.dict)![1]!);
  }
  const texts: string[] = [];
  const contents = [...objs.values()].filter((o) => o.stream && /\bBT\b/.test(o.stream)).map((o) => o.stream!).join('\n');
  for (const [, block] of contents.matchAll(/\bBT\b([\s\S]*?)\bET\b/g)) {
    let map = new Map<number, string>();
    let t = '';
    for (const [, font, codes] of block!.matchAll(/\/(\w+) [\d.]+ Tf|<([0-9a-f]+)> Tj/gi)) {
      if (font) map = fontNames.get(font)!;
      else for (const c of codes!.match(/..../g)!) t += map.get(parseInt(c, 16)) ?? '\ufffd';
    }
    texts.push(t);
  }
  return { header: s.slice(0, 8), box, embedded, texts, trailerEnd: s.trimEnd().endsWith('%%EOF') };
}

test('driftlab plot writes a vector PDF: page of the spec size, Inter embedded, title and axis text as text', async () => {
  const spec = JSON.parse(readFileSync(join(dir, 'a', 'drift.vl.json'), 'utf8'));
  spec.width = 500;
  spec.height = 320;
  writeFileSync(join(dir, 'a', 'drift-pdf.vl.json'), JSON.stringify(spec));
  const plot = (out: string) => (plotCommand.handler as (a: unknown) => Promise<void>)({ spec: join(dir, 'a', 'drift-pdf.vl.json'), out: join(dir, out), scale: 1, validate: true, overwrite: true });
  await plot('drift.pdf');
  const buf = readFileSync(join(dir, 'drift.pdf'));
  const pdf = readPdf(buf);
  assert.match(pdf.header, /^%PDF-1\.\d/);
  assert.ok(pdf.trailerEnd, 'ends with %%EOF');
  assert.equal(pdf.box, [0, 0, 500, 320], 'one page of the spec size, 1 px = 1 pt');
  assert.ok(pdf.embedded.some((n) => /^[A-Z]{6}\+Inter-Regular$/.test(n)), `Inter subset embedded: ${pdf.embedded}`);
  assert.ok(pdf.embedded.some((n) => /^[A-Z]{6}\+Inter-Bold$/.test(n)), 'bold title face embedded');
  const c = CHARTS.drift!;
  for (const s of [c.title!, c.xlabel, c.ylabel, 'kalman, "tuned"', 'real (recovery floor)']) assert.ok(pdf.texts.includes(s), `text ${JSON.stringify(s)} in ${JSON.stringify(pdf.texts.slice(0, 12))}`);
  // the same words appear in the SVG rendered from the same spec; no raster image in the PDF
  assert.not.ok(/\/Subtype \/Image/.test(buf.toString('latin1')), 'vector only');
  await plot('drift-2.pdf');
  assert.ok(buf.equals(readFileSync(join(dir, 'drift-2.pdf'))), 'same spec, same PDF bytes');
});

test('driftlab plot re-renders an edited spec (svg, png); bad paths and specs give clear errors', async () => {
  const spec = JSON.parse(readFileSync(join(dir, 'a', 'fid.vl.json'), 'utf8'));
  spec.title = 'Edited title';
  spec.width = 400;
  spec.height = 300;
  writeFileSync(join(dir, 'a', 'fid-edit.vl.json'), JSON.stringify(spec));
  // the CLI once, end to end; the other cases through the command's handler (the CLI loads tfjs: slow)
  const r = spawnSync(process.execPath, [CLI, 'plot', join('a', 'fid-edit.vl.json'), '--out', 'edit.svg'], { encoding: 'utf8', cwd: dir });
  assert.is(r.status, 0, r.stderr);
  const svg = readFileSync(join(dir, 'edit.svg'), 'utf8');
  assert.ok(svg.includes('Edited title') && svg.includes('DDIM 50 steps'), 'new title, data from a/fid.csv');
  assert.match(svg, /^<svg[^>]* width="400" height="300"/);
  const plot = (spec: string, out: string, more: Record<string, unknown> = {}) =>
    (plotCommand.handler as (a: unknown) => Promise<void>)({ spec: join(dir, spec), out: join(dir, out), scale: 1, validate: true, overwrite: false, ...more });
  await plot(join('a', 'fid-edit.vl.json'), 'edit.png');
  assert.is(decodePng(readFileSync(join(dir, 'edit.png'))).width, 400);
  await rejectsDriftlab(plot(join('a', 'fid-edit.vl.json'), 'edit.svg'), /already exists; pass --overwrite/);
  await rejectsDriftlab(plot(join('a', 'fid-edit.vl.json'), 'edit.jpg'), /^cannot tell the figure format of .*edit\.jpg: end it in \.svg, \.png or \.pdf$/);
  const bad = spawnSync(process.execPath, [CLI, 'plot', join('a', 'fid-edit.vl.json'), '--out', 'edit.tiff'], { encoding: 'utf8', cwd: dir });
  assert.ok(bad.status !== 0 && bad.status !== null, 'an unknown extension fails');
  assert.equal(bad.stderr.trim().split('\n').filter((l) => l.trim()), [`driftlab: error: cannot tell the figure format of edit.tiff: end it in .svg, .png or .pdf`], bad.stderr);
  writeFileSync(join(dir, 'bad.vl.json'), JSON.stringify({ mark: 'lin', data: { values: [] } }));
  await rejectsDriftlab(plot('bad.vl.json', 'bad.svg'), /bad\.vl\.json is not valid Vega-Lite \(.*\/mark/);
  await rejectsDriftlab(plot('missing.vl.json', 'x.svg'), /cannot read spec .*missing\.vl\.json: file not found/);
  writeFileSync(join(dir, 'nodata.vl.json'), JSON.stringify({ ...spec, data: { url: 'gone.csv' } }));
  await rejectsDriftlab(plot('nodata.vl.json', 'x.svg'), /data file is missing|vega/);
});

test.run();
