import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Canvas, parseColor } from '../../src/plot/canvas.js';
import { drawText, hasGlyph, textWidth } from '../../src/plot/font.js';
import { decodePng } from '../../src/plot/png.js';

test('parseColor', () => {
  assert.equal(parseColor('#ff8000'), [255, 128, 0]);
  assert.equal(parseColor('#fff'), [255, 255, 255]);
  assert.equal(parseColor([1, 2, 3]), [1, 2, 3]);
  assert.throws(() => parseColor('red'));
});

test('font covers required characters', () => {
  const req = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,-+=:()/%_ ';
  for (const ch of req) assert.ok(hasGlyph(ch), `glyph ${JSON.stringify(ch)}`);
  assert.is(textWidth('8', 1), 5);
  assert.is(textWidth('88', 2), 22);
});

test('drawText inks pixels within the text box, vertical too', () => {
  const cv = new Canvas(40, 40, '#ffffff');
  const w = drawText(cv, 2, 3, 'E1', [0, 0, 0], 1);
  assert.is(w, textWidth('E1'));
  assert.equal(cv.getPixel(2, 3), [0, 0, 0]); // top-left of 'E'
  assert.equal(cv.getPixel(2, 2), [255, 255, 255]);
  const v = new Canvas(20, 20, '#ffffff');
  v.text(1, 1, 'L', '#000000', 1, { vertical: true });
  // 'L' rotated CCW: its foot (bottom row) becomes the right column x = 1+6
  for (let y = 1; y <= 5; y++) assert.equal(v.getPixel(7, y), [0, 0, 0]);
});

test('canvas primitives and PNG output', () => {
  const cv = new Canvas(30, 20, '#000000');
  cv.fillRect(1, 1, 3, 2, '#ff0000');
  assert.equal(cv.getPixel(3, 2), [255, 0, 0]);
  assert.equal(cv.getPixel(4, 2), [0, 0, 0]);
  cv.line(5.5, 10.5, 25.5, 10.5, '#ffffff', 1);
  assert.equal(cv.getPixel(15, 10), [255, 255, 255]);
  assert.equal(cv.getPixel(15, 12), [0, 0, 0]);
  cv.rect(0, 0, 30, 20, '#00ff00');
  assert.equal(cv.getPixel(29, 19), [0, 255, 0]);
  cv.fillPolygon([[10, 2], [20, 2], [20, 8], [10, 8]], '#0000ff', 0.5);
  assert.equal(cv.getPixel(15, 5), [0, 0, 128]);
  cv.disc(5, 15, 2, '#ffffff');
  assert.equal(cv.getPixel(4, 14), [255, 255, 255]);
  const dec = decodePng(cv.toPng());
  assert.equal([dec.width, dec.height, dec.channels], [30, 20, 3]);
  assert.equal([...dec.pixels], [...cv.data]);
});

test.run();
