/**
 * The side-by-side video of a drift study: columns = ground truth then each corrector, rows =
 * rollouts, a header with the column names and the frame index. Frames are drawn at 2x so the
 * 5x7 bitmap font fits above 32-pixel columns.
 */
import { drawText, textWidth, type FillTarget } from '../plot/font.js';

export interface TiledVideo {
  /** uint8 [T, H, W] */
  frames: Uint8Array;
  T: number;
  H: number;
  W: number;
  rows: number;
  /** one source frame in `step` */
  step: number;
}

class Gray implements FillTarget<number> {
  constructor(readonly buf: Uint8Array, readonly W: number, readonly H: number, readonly off: number) {}
  fillRect(x: number, y: number, w: number, h: number, v: number): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.H, y + h); yy++) for (let xx = Math.max(0, x); xx < Math.min(this.W, x + w); xx++) this.buf[this.off + yy * this.W + xx] = v;
  }
}

/**
 * sources: uint8 [T, N, S, S] each (truth first). Frame t of the video shows source index
 * t * step; `context` frames are marked as real context in the header.
 */
export function tileVideo(
  truth: Uint8Array, gens: Uint8Array[], labels: string[], T: number, N: number, S: number,
  o: { maxFrames: number; rows: number; context: number; scale?: number },
): TiledVideo {
  const srcs = [truth, ...gens];
  if (labels.length !== srcs.length) throw new Error('tileVideo: one label per source');
  const sc = o.scale ?? 2, gap = 2 * sc, cell = S * sc, rows = Math.max(1, Math.min(o.rows, N));
  const colW = Math.max(cell, textWidth(labels.reduce((a, b) => (a.length >= b.length ? a : b), ''), 1) + 2);
  const header = 22;
  const W = srcs.length * colW + (srcs.length - 1) * gap, H = header + rows * cell + (rows - 1) * gap;
  const step = Math.max(1, Math.ceil(T / Math.max(1, o.maxFrames)));
  const F = Math.ceil(T / step);
  const frames = new Uint8Array(F * H * W).fill(64);
  for (let f = 0; f < F; f++) {
    const t = f * step, off = f * H * W;
    const g = new Gray(frames, W, H, off);
    g.fillRect(0, 0, W, header, 0);
    srcs.forEach((_, c) => drawText(g, c * (colW + gap) + 1, 2, labels[c], 255, 1));
    drawText(g, 1, 12, t < o.context ? `context ${t + 1}/${o.context}` : `frame ${t - o.context + 1}`, 200, 1);
    for (let c = 0; c < srcs.length; c++) {
      const src = srcs[c], x0 = c * (colW + gap) + Math.floor((colW - cell) / 2);
      for (let r = 0; r < rows; r++) {
        const y0 = header + r * (cell + gap), base = (t * N + r) * S * S;
        for (let y = 0; y < cell; y++) {
          const row = off + (y0 + y) * W + x0, srow = base + Math.floor(y / sc) * S;
          for (let x = 0; x < cell; x++) frames[row + x] = src[srow + Math.floor(x / sc)];
        }
      }
    }
  }
  return { frames, T: F, H, W, rows, step };
}
