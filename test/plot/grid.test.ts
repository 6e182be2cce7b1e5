import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { imageGrid, rasterToPng, stripGrid, toByte } from '../../src/plot/grid.js';
import { decodePng } from '../../src/plot/png.js';

test('toByte clips and rounds', () => {
  assert.equal([-1, 0, 0.5, 1 / 255, 1, 2, NaN].map(toByte), [0, 0, 128, 1, 255, 255, 0]);
});

test('grid geometry and pixel values', () => {
  const [n, h, w] = [5, 3, 4];
  const imgs = new Float32Array(n * h * w);
  for (let k = 0; k < n; k++) for (let i = 0; i < h * w; i++) imgs[k * h * w + i] = (k + 1) / 10 + i / 1000;
  const g = imageGrid(imgs, n, h, w, { nrow: 3, pad: 2 });
  assert.is(g.channels, 1);
  assert.is(g.width, 3 * w + 4 * 2);
  assert.is(g.height, 2 * h + 3 * 2);
  assert.is(g.pixels.length, g.width * g.height);
  const at = (x: number, y: number) => g.pixels[y * g.width + x];
  assert.is(at(0, 0), 128); // padding (mid gray)
  assert.is(at(2, 2), toByte(0.1)); // image 0, pixel (0,0)
  assert.is(at(2 + 3, 2 + 2), toByte(0.1 + 11 / 1000)); // image 0, last pixel
  assert.is(at(2 + w + 2, 2), toByte(0.2)); // image 1
  assert.is(at(2, 2 + h + 2), toByte(0.4)); // image 3 (second row)
  assert.is(at(2 + 2 * (w + 2), 2 + h + 2), 128); // empty 6th cell keeps pad value
  assert.is(at(2 + w, 2), 128); // vertical border between images
});

test('grid upscaling and RGB input', () => {
  const rgb = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1]); // one 2x2 RGB image
  const g = imageGrid(rgb, 1, 2, 2, { pad: 1, padValue: 0, scale: 3 });
  assert.is(g.channels, 3);
  assert.is(g.width, 2 * 3 + 2);
  assert.is(g.height, 2 * 3 + 2);
  const px = (x: number, y: number) => [...g.pixels.subarray((y * g.width + x) * 3, (y * g.width + x) * 3 + 3)];
  assert.equal(px(0, 0), [0, 0, 0]);
  assert.equal(px(1, 1), [255, 0, 0]);
  assert.equal(px(3, 3), [255, 0, 0]);
  assert.equal(px(4, 1), [0, 255, 0]);
  assert.equal(px(6, 6), [255, 255, 255]);
  const dec = decodePng(rasterToPng(g));
  assert.equal([dec.width, dec.height, dec.channels], [8, 8, 3]);
  assert.equal([...dec.pixels], [...g.pixels]);
});

test('default nrow is ceil(sqrt(n)); bad sizes throw', () => {
  const g = imageGrid(new Float32Array(10 * 4), 10, 2, 2, { pad: 0 });
  assert.is(g.width, 4 * 2);
  assert.is(g.height, 3 * 2);
  assert.throws(() => imageGrid(new Float32Array(7), 2, 2, 2));
});

test('stripGrid: label band with text above columns', () => {
  const [h, w] = [8, 8];
  const mk = (v: number) => new Float32Array(h * w).fill(v);
  const rows = [[mk(0), mk(0.25), mk(1)], [mk(1), mk(0.5), mk(0)]];
  const s = stripGrid(rows, h, w, { labels: ['t=999', 't=500', 't=0'], pad: 2, scale: 2 });
  const cw = w * 2;
  assert.is(s.width, 3 * cw + 4 * 2);
  const labelH = s.height - (2 * h * 2 + 3 * 2);
  assert.ok(labelH >= 8, 'label band present');
  const band = s.pixels.subarray(0, labelH * s.width);
  assert.ok(band.includes(0), 'some label ink');
  assert.ok(band.includes(255), 'white label background');
  const at = (x: number, y: number) => s.pixels[y * s.width + x];
  assert.is(at(2, labelH + 2), 0); // sample 0, t=999
  assert.is(at(2 + cw + 2, labelH + 2), toByte(0.25));
  assert.is(at(2, labelH + 2 + 2 * h + 2), 255); // sample 1, first column
  assert.is(at(0, labelH), 128); // border
  const none = stripGrid(rows, h, w, { pad: 2 });
  assert.is(none.height, 2 * h + 3 * 2);
});

test.run();
