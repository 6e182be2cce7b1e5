// writeChart's file layout (the figures themselves are checked in vega.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeChart, type ChartSpec } from '../../src/plot/chart.js';
import { decodePng } from '../../src/plot/png.js';

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
