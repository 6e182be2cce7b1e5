// A tiny 5x7 bitmap font (plus one descender row for g j p q y ,) for labelling rasters.
//
// Still needed after the charts moved to Vega-Lite (chart.ts): it burns the column/row captions
// into the gray image grids (grid.ts: sample/demo/serve digit sheets) and into every frame of
// the videos (video/writers.ts, drift/study-video.ts). Those are 1-byte-per-pixel rasters of
// 28-64 px digits that go straight to the PNG/GIF/MP4 encoders; an outline font at 7-14 px
// there would need a full SVG render per frame and anti-aliased gray levels that blur into the
// digits, where these glyphs are exact pixels and cost nothing.

/** Anything that can fill an axis-aligned rectangle with a colour (Canvas, gray buffers...). */
export interface FillTarget<C> {
  fillRect(x: number, y: number, w: number, h: number, color: C): void;
}

/** Glyph cell: 5 columns, 7 rows above the baseline + 1 descender row. */
export const GLYPH_W = 5;
export const GLYPH_H = 7;
/** Full line height in font pixels (7 rows + descender). */
export const LINE_H = 8;

// Rows top to bottom; '#' = ink. An optional 8th row is the descender.
const G: Record<string, string> = {
  A: '.###. #...# #...# ##### #...# #...# #...#',
  B: '####. #...# #...# ####. #...# #...# ####.',
  C: '.###. #...# #.... #.... #.... #...# .###.',
  D: '###.. #..#. #...# #...# #...# #..#. ###..',
  E: '##### #.... #.... ####. #.... #.... #####',
  F: '##### #.... #.... ####. #.... #.... #....',
  G: '.###. #...# #.... #.### #...# #...# .####',
  H: '#...# #...# #...# ##### #...# #...# #...#',
  I: '.###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  J: '..### ...#. ...#. ...#. ...#. #..#. .##..',
  K: '#...# #..#. #.#.. ##... #.#.. #..#. #...#',
  L: '#.... #.... #.... #.... #.... #.... #####',
  M: '#...# ##.## #.#.# #.#.# #...# #...# #...#',
  N: '#...# #...# ##..# #.#.# #..## #...# #...#',
  O: '.###. #...# #...# #...# #...# #...# .###.',
  P: '####. #...# #...# ####. #.... #.... #....',
  Q: '.###. #...# #...# #...# #.#.# #..#. .##.#',
  R: '####. #...# #...# ####. #.#.. #..#. #...#',
  S: '.#### #.... #.... .###. ....# ....# ####.',
  T: '##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  U: '#...# #...# #...# #...# #...# #...# .###.',
  V: '#...# #...# #...# #...# #...# .#.#. ..#..',
  W: '#...# #...# #...# #.#.# #.#.# #.#.# .#.#.',
  X: '#...# #...# .#.#. ..#.. .#.#. #...# #...#',
  Y: '#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..',
  Z: '##### ....# ...#. ..#.. .#... #.... #####',
  a: '..... ..... .###. ....# .#### #...# .####',
  b: '#.... #.... #.##. ##..# #...# #...# ####.',
  c: '..... ..... .###. #.... #.... #...# .###.',
  d: '....# ....# .##.# #..## #...# #...# .####',
  e: '..... ..... .###. #...# ##### #.... .###.',
  f: '..##. .#..# .#... ###.. .#... .#... .#...',
  g: '..... ..... .#### #...# #...# .#### ....# .###.',
  h: '#.... #.... #.##. ##..# #...# #...# #...#',
  i: '..#.. ..... .##.. ..#.. ..#.. ..#.. .###.',
  j: '...#. ..... ..##. ...#. ...#. ...#. #..#. .##..',
  k: '#.... #.... #..#. #.#.. ##... #.#.. #..#.',
  l: '.##.. ..#.. ..#.. ..#.. ..#.. ..#.. .###.',
  m: '..... ..... ##.#. #.#.# #.#.# #...# #...#',
  n: '..... ..... #.##. ##..# #...# #...# #...#',
  o: '..... ..... .###. #...# #...# #...# .###.',
  p: '..... ..... ####. #...# #...# ####. #.... #....',
  q: '..... ..... .#### #...# #...# .#### ....# ....#',
  r: '..... ..... #.##. ##..# #.... #.... #....',
  s: '..... ..... .#### #.... .###. ....# ####.',
  t: '.#... .#... ###.. .#... .#... .#..# ..##.',
  u: '..... ..... #...# #...# #...# #..## .##.#',
  v: '..... ..... #...# #...# #...# .#.#. ..#..',
  w: '..... ..... #...# #...# #.#.# #.#.# .#.#.',
  x: '..... ..... #...# .#.#. ..#.. .#.#. #...#',
  y: '..... ..... #...# #...# #...# .#### ....# .###.',
  z: '..... ..... ##### ...#. ..#.. .#... #####',
  '0': '.###. #...# #..## #.#.# ##..# #...# .###.',
  '1': '..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.',
  '2': '.###. #...# ....# ...#. ..#.. .#... #####',
  '3': '##### ...#. ..#.. ...#. ....# #...# .###.',
  '4': '...#. ..##. .#.#. #..#. ##### ...#. ...#.',
  '5': '##### #.... ####. ....# ....# #...# .###.',
  '6': '..##. .#... #.... ####. #...# #...# .###.',
  '7': '##### ....# ...#. ..#.. .#... .#... .#...',
  '8': '.###. #...# #...# .###. #...# #...# .###.',
  '9': '.###. #...# #...# .#### ....# ...#. .##..',
  ' ': '..... ..... ..... ..... ..... ..... .....',
  '.': '..... ..... ..... ..... ..... .##.. .##..',
  ',': '..... ..... ..... ..... ..... .##.. ..#.. .#...',
  '-': '..... ..... ..... .###. ..... ..... .....',
  '+': '..... ..#.. ..#.. ##### ..#.. ..#.. .....',
  '=': '..... ..... ##### ..... ##### ..... .....',
  ':': '..... .##.. .##.. ..... .##.. .##.. .....',
  ';': '..... .##.. .##.. ..... .##.. ..#.. .#...',
  '(': '...#. ..#.. .#... .#... .#... ..#.. ...#.',
  ')': '.#... ..#.. ...#. ...#. ...#. ..#.. .#...',
  '[': '.###. .#... .#... .#... .#... .#... .###.',
  ']': '.###. ...#. ...#. ...#. ...#. ...#. .###.',
  '/': '..... ....# ...#. ..#.. .#... #.... .....',
  '\\': '..... #.... .#... ..#.. ...#. ....# .....',
  '%': '##... ##..# ...#. ..#.. .#... #..## ...##',
  _: '..... ..... ..... ..... ..... ..... #####',
  '!': '..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..',
  '?': '.###. #...# ....# ...#. ..#.. ..... ..#..',
  '*': '..... ..#.. #.#.# .###. #.#.# ..#.. .....',
  '<': '...#. ..#.. .#... #.... .#... ..#.. ...#.',
  '>': '.#... ..#.. ...#. ....# ...#. ..#.. .#...',
  "'": '..#.. ..#.. .#... ..... ..... ..... .....',
  '"': '.#.#. .#.#. ..... ..... ..... ..... .....',
  '|': '..#.. ..#.. ..#.. ..#.. ..#.. ..#.. ..#..',
  '#': '.#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.',
  '^': '..#.. .#.#. #...# ..... ..... ..... .....',
  '~': '..... ..... .#... #.#.# ...#. ..... .....',
  '&': '.##.. #..#. #.#.. .#... #.#.# #..#. .##.#',
  '@': '.###. #...# #.### #.#.# #.### #.... .####',
};

interface Glyph {
  rows: boolean[][]; // up to LINE_H rows of GLYPH_W
  left: number; // first inked column
  advance: number; // horizontal advance in font pixels (includes 1px spacing)
}

const TABULAR = new Set('0123456789'.split(''));

const GLYPHS = new Map<string, Glyph>();
for (const [ch, spec] of Object.entries(G)) {
  const rows = spec.split(' ').map((r) => r.split('').map((c) => c === '#'));
  let lo = GLYPH_W;
  let hi = -1;
  for (const r of rows) r.forEach((on, i) => {
    if (on) {
      lo = Math.min(lo, i);
      hi = Math.max(hi, i);
    }
  });
  if (ch === ' ' || hi < 0) GLYPHS.set(ch, { rows, left: 0, advance: 3 });
  else if (TABULAR.has(ch)) GLYPHS.set(ch, { rows, left: 0, advance: GLYPH_W + 1 });
  else GLYPHS.set(ch, { rows, left: lo, advance: hi - lo + 2 });
}

function glyph(ch: string): Glyph {
  return GLYPHS.get(ch) ?? GLYPHS.get(ch.toUpperCase()) ?? GLYPHS.get('?')!;
}

/** True if the font has a real glyph for this character. */
export function hasGlyph(ch: string): boolean {
  return GLYPHS.has(ch);
}

/** Width in output pixels of `text` drawn at `scale` (no trailing spacing). */
export function textWidth(text: string, scale = 1): number {
  let w = 0;
  for (const ch of text) w += glyph(ch).advance;
  return Math.max(0, w - 1) * scale;
}

/** Height in output pixels of one line (including descender row). */
export function textHeight(scale = 1): number {
  return LINE_H * scale;
}

/** Draws `text` with its top-left corner at (x, y); returns the drawn width. */
export function drawText<C>(
  canvas: FillTarget<C>,
  x: number,
  y: number,
  text: string,
  color: C,
  scale = 1,
): number {
  const s = Math.max(1, Math.round(scale));
  const total = textWidth(text, s);
  let pen = 0; // in font pixels along the text direction
  x = Math.round(x);
  y = Math.round(y);
  for (const ch of text) {
    const g = glyph(ch);
    g.rows.forEach((row, ry) => {
      row.forEach((on, rx) => {
        if (!on) return;
        canvas.fillRect(x + (pen + rx - g.left) * s, y + ry * s, s, s, color);
      });
    });
    pen += g.advance;
  }
  return total;
}
