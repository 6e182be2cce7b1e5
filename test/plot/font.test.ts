// The bitmap font that labels image grids and video frames (charts use Inter through Vega-Lite).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { drawText, hasGlyph, textHeight, textWidth } from '../../src/plot/font.js';

/** A 1-byte-per-pixel raster, as the grids and video frames are. */
function gray(w: number, h: number) {
  const px = new Uint8Array(w * h);
  return {
    px,
    at: (x: number, y: number) => px[y * w + x]!,
    fillRect(x: number, y: number, rw: number, rh: number, c: number) {
      for (let j = y; j < y + rh; j++) for (let i = x; i < x + rw; i++) if (i >= 0 && j >= 0 && i < w && j < h) px[j * w + i] = c;
    },
  };
}

test('font covers required characters', () => {
  const req = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,-+=:()/%_ ';
  for (const ch of req) assert.ok(hasGlyph(ch), `glyph ${JSON.stringify(ch)}`);
  assert.is(textWidth('8', 1), 5);
  assert.is(textWidth('88', 2), 22);
  assert.is(textHeight(2), 16);
});

test('drawText inks pixels within the text box only', () => {
  const g = gray(40, 20);
  const w = drawText(g, 2, 3, 'E1', 255, 1);
  assert.is(w, textWidth('E1'));
  // 'E' is a 5x7 glyph: full top row, full left column
  for (let x = 2; x < 7; x++) assert.is(g.at(x, 3), 255, `top row x=${x}`);
  for (let y = 3; y < 10; y++) assert.is(g.at(2, y), 255, `left column y=${y}`);
  assert.is(g.at(2, 2), 0);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) {
    if (g.at(x, y)) assert.ok(x >= 2 && x < 2 + w && y >= 3 && y < 3 + textHeight(1), `ink at ${x},${y} outside the box`);
  }
  const g2 = gray(40, 20);
  drawText(g2, 0, 0, 'E', 9, 2);
  assert.is(g2.at(9, 1), 9, 'scale 2: top row is 10 px wide, 2 px tall');
  assert.is(g2.at(10, 0), 0);
});

test.run();
