import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chartPng, chartSvg, logTicks, niceTicks, writeChart, type ChartSpec } from '../../src/plot/chart.js';
import { decodePng } from '../../src/plot/png.js';

/** True if v is k * 10^e with k in {1,2,5} times an integer (a 1-2-5 multiple of some step). */
function isNice(values: number[]): boolean {
  if (values.length < 2) return true;
  const step = values[1]! - values[0]!;
  const e = Math.floor(Math.log10(step) + 1e-9);
  const m = Number((step / 10 ** e).toPrecision(6));
  if (![1, 2, 5].includes(m)) return false;
  return values.every((v) => Math.abs(v / step - Math.round(v / step)) < 1e-6);
}

test('niceTicks: 1-2-5 steps covering the data', () => {
  for (const [lo, hi, n] of [[0, 1, 6], [0.013, 0.0871, 5], [-3.2, 47, 8], [1000, 1e6, 5], [5, 5, 5], [2e-5, 9e-5, 5]] as const) {
    const t = niceTicks(lo, hi, n);
    assert.ok(t.ticks.length <= Math.max(2, n) && t.ticks.length >= 2, `count ${t.ticks.length}`);
    assert.ok(t.lo <= Math.min(lo, hi) && t.hi >= Math.max(lo, hi));
    assert.ok(isNice(t.ticks), `nice ${t.ticks}`);
    assert.is(t.labels.length, t.ticks.length);
  }
  assert.equal(niceTicks(0, 1, 6).labels, ['0', '0.2', '0.4', '0.6', '0.8', '1.0']);
  assert.equal(niceTicks(0, 1e6, 3).labels, ['0', '5e5', '1e6']);
});

test('logTicks: decades, minor ticks, and 1-2-5 for short ranges', () => {
  const a = logTicks(0.003, 250);
  assert.equal(a.ticks, [0.01, 0.1, 1, 10, 100]);
  assert.ok(a.lo <= 0.003 && a.hi >= 250);
  assert.ok(a.minor.includes(20) && a.minor.includes(0.005));
  assert.equal(a.labels, ['0.01', '0.1', '1', '10', '100']);
  const b = logTicks(1.5, 30);
  assert.equal(b.ticks, [1, 2, 5, 10, 20, 50]);
  const c = logTicks(1e-8, 1e8, 5);
  assert.ok(c.ticks.length <= 5 && c.labels.includes('1e-8'));
});

const spec: ChartSpec = {
  title: 'Drift vs steps <test & "quotes">',
  xlabel: 'training step',
  ylabel: 'loss',
  series: [
    { name: 'baseline', x: [0, 100, 200, 300, 400], y: [1, 0.5, 0.3, NaN, 0.2], band: { lo: [0.9, 0.4, 0.25, 0.2, 0.15], hi: [1.1, 0.6, 0.35, 0.3, 0.25] } },
    { name: 'drift-corrected', x: [0, 100, 200, 300, 400], y: [1, 0.4, 0.2, 0.15, 0.1] },
    { name: 'single', x: [250], y: [0.7] },
  ],
};

test('chartSvg structure', () => {
  const svg = chartSvg(spec);
  assert.is(svg.match(/<svg\b/g)?.length, 1);
  assert.ok(svg.trimStart().startsWith('<svg xmlns="http://www.w3.org/2000/svg"'));
  assert.ok(svg.trimEnd().endsWith('</svg>'));
  // every opened element is self-closed or closed
  const opens = (svg.match(/<(text|svg)\b/g) ?? []).length;
  const closes = (svg.match(/<\/(text|svg)>/g) ?? []).length;
  assert.is(opens, closes);
  assert.not.ok(/<(line|path|circle|rect)\b[^>]*[^/]>/.test(svg), 'void elements self-closed');
  const paths = svg.match(/<path class="series"[^>]*>/g) ?? [];
  assert.is(paths.length, 2);
  assert.ok(paths[0]!.includes('data-name="baseline"'));
  // NaN splits the baseline into two sub-paths; the isolated last point becomes a marker
  assert.is((paths[0]!.match(/M/g) ?? []).length, 1);
  assert.is((svg.match(/<circle class="marker"/g) ?? []).length, 2);
  assert.is((svg.match(/<path class="band"[^>]*fill-opacity="0.2"/g) ?? []).length, 2); // the band + its legend swatch
  const legend = [...svg.matchAll(/<text class="legend"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.equal(legend, ['baseline', 'drift-corrected', 'single']);
  assert.ok(svg.includes('&lt;test &amp; &quot;quotes&quot;&gt;'));
  assert.not.ok(/NaN|Infinity/.test(svg));
  const ticks = (cls: string) => [...svg.matchAll(new RegExp(`<text class="${cls}"[^>]*>([^<]*)</text>`, 'g'))].map((m) => Number(m[1]));
  const xt = ticks('xtick');
  const yt = ticks('ytick');
  assert.ok(xt.length >= 3 && isNice(xt), `x ticks ${xt}`);
  assert.ok(yt.length >= 3 && isNice(yt), `y ticks ${yt}`);
  assert.ok(xt[0]! <= 0 && xt[xt.length - 1]! >= 400);
});

test('chartSvg log axes skip non-positive values', () => {
  const svg = chartSvg({
    xlabel: 'steps', ylabel: 'MSE', logX: true, logY: true,
    series: [{ name: 'a', x: [0, 1, 10, 100, 1000], y: [5, 1, 0.1, 0.01, -1] }],
  });
  const yt = [...svg.matchAll(/<text class="ytick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  const xt = [...svg.matchAll(/<text class="xtick"[^>]*>([^<]*)<\/text>/g)].map((m) => m[1]);
  assert.equal(xt, ['1', '10', '100']);
  assert.equal(yt, ['0.01', '0.1', '1']);
  assert.not.ok(/NaN|Infinity/.test(svg));
});

test('chartSvg with no data still renders', () => {
  const svg = chartSvg({ xlabel: 'x', ylabel: 'y', series: [{ name: 'empty', x: [], y: [] }] });
  assert.ok(svg.includes('</svg>'));
  assert.not.ok(/NaN/.test(svg));
});

test('chartPng decodes to requested size and is not blank', () => {
  const png = decodePng(chartPng({ ...spec, width: 500, height: 320 }));
  assert.equal([png.width, png.height, png.channels], [500, 320, 3]);
  const colours = new Set<number>();
  let nonWhite = 0;
  for (let i = 0; i < png.pixels.length; i += 3) {
    const [r, g, b] = [png.pixels[i]!, png.pixels[i + 1]!, png.pixels[i + 2]!];
    if (r + g + b < 765) nonWhite++;
    colours.add((r << 16) | (g << 8) | b);
  }
  assert.ok(nonWhite > 2000, `non-white ${nonWhite}`);
  assert.ok(colours.has(0x0072b2) && colours.has(0xd55e00), 'series colours present');
});

test('writeChart writes atomically by extension, each image beside its Vega-Lite spec and CSV', () => {
  const dir = mkdtempSync(join(tmpdir(), 'chart-'));
  try {
    writeChart(join(dir, 'a.svg'), spec);
    writeChart(join(dir, 'sub', 'b.png'), spec);
    const both = writeChart(join(dir, 'c'), spec);
    assert.equal(both, [join(dir, 'c.svg'), join(dir, 'c.png'), join(dir, 'c.vl.json'), join(dir, 'c.csv')]);
    assert.ok(readFileSync(join(dir, 'a.svg'), 'utf8').startsWith('<svg'));
    assert.is(decodePng(readFileSync(join(dir, 'sub', 'b.png'))).width, 2 * 720, 'PNG at 2x the spec width');
    for (const f of ['a.vl.json', 'a.csv', 'sub/b.vl.json', 'sub/b.csv']) assert.ok(existsSync(join(dir, f)), f);
    assert.not.ok(existsSync(join(dir, 'a.png')), 'a .svg path writes no PNG');
    assert.ok(existsSync(join(dir, 'c.png')));
    assert.not.ok(readdirSync(dir).some((f) => f.includes('.tmp-')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
