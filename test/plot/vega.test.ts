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

test('driftlab plot re-renders an edited spec (svg, png); pdf and bad specs give clear errors', async () => {
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
  await rejectsDriftlab(plot(join('a', 'fid-edit.vl.json'), 'edit.pdf'), /PDF output/);
  await rejectsDriftlab(plot(join('a', 'fid-edit.vl.json'), 'edit.jpg'), /end it in \.svg, \.png or \.pdf/);
  writeFileSync(join(dir, 'bad.vl.json'), JSON.stringify({ mark: 'lin', data: { values: [] } }));
  await rejectsDriftlab(plot('bad.vl.json', 'bad.svg'), /bad\.vl\.json is not valid Vega-Lite \(.*\/mark/);
  await rejectsDriftlab(plot('missing.vl.json', 'x.svg'), /cannot read spec .*missing\.vl\.json: file not found/);
  writeFileSync(join(dir, 'nodata.vl.json'), JSON.stringify({ ...spec, data: { url: 'gone.csv' } }));
  await rejectsDriftlab(plot('nodata.vl.json', 'x.svg'), /data file is missing|vega/);
});

test.run();
