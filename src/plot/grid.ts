// Image grids (torchvision make_grid style) and labelled denoising-progression strips.
import { drawText, textHeight, textWidth, type FillTarget } from './font.js';
import { encodePng } from './png.js';

export interface Raster {
  pixels: Uint8Array;
  width: number;
  height: number;
  /** 1 (gray) or 3 (RGB). */
  channels: 1 | 3;
}

export interface GridOptions {
  /** Images per row (default ceil(sqrt(n))). */
  nrow?: number;
  /** Border width in output pixels (not scaled), default 2. */
  pad?: number;
  /** Border/empty-cell value in [0, 1], default 0.5 (mid gray: visible around white-on-black digits). */
  padValue?: number;
  /** Integer nearest-neighbour upscaling of each image, default 1. */
  scale?: number;
}

/** Maps a [0,1] float to a byte: clip, then Math.round(v*255); NaN -> 0. */
export function toByte(v: number): number {
  if (!(v > 0)) return 0;
  if (v >= 1) return 255;
  return Math.round(v * 255);
}

function inferChannels(len: number, n: number, h: number, w: number): number {
  const c = len / (n * h * w);
  if (![1, 3, 4].includes(c)) {
    throw new Error(`imageGrid: ${len} values do not match [${n},${h},${w}] or [${n},${h},${w},C] with C in 1,3,4`);
  }
  return c;
}

/** Mutable raster with fillRect (for the bitmap font) and image blitting. */
class RasterBuilder implements FillTarget<number[]> {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number, readonly channels: 1 | 3, bg: number) {
    this.pixels = new Uint8Array(width * height * channels).fill(toByte(bg));
  }
  fillRect(x: number, y: number, w: number, h: number, color: number[]): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      for (let xx = Math.max(0, x); xx < Math.min(this.width, x + w); xx++) {
        const o = (yy * this.width + xx) * this.channels;
        for (let c = 0; c < this.channels; c++) this.pixels[o + c] = color[c] ?? color[0]!;
      }
    }
  }
  /** Copies image `k` of a [N,H,W,C] array to (x0, y0) with integer upscaling. */
  blit(src: Float32Array, k: number, h: number, w: number, c: number, x0: number, y0: number, scale: number): void {
    const base = k * h * w * c;
    for (let y = 0; y < h * scale; y++) {
      const sy = Math.floor(y / scale);
      const ty = y0 + y;
      if (ty < 0 || ty >= this.height) continue;
      for (let x = 0; x < w * scale; x++) {
        const tx = x0 + x;
        if (tx < 0 || tx >= this.width) continue;
        const si = base + (sy * w + Math.floor(x / scale)) * c;
        const o = (ty * this.width + tx) * this.channels;
        if (this.channels === 1) this.pixels[o] = toByte(src[si]!);
        else if (c === 1) this.pixels[o] = this.pixels[o + 1] = this.pixels[o + 2] = toByte(src[si]!);
        else for (let ch = 0; ch < 3; ch++) this.pixels[o + ch] = toByte(src[si + ch]!);
      }
    }
  }
  toRaster(): Raster {
    return { pixels: this.pixels, width: this.width, height: this.height, channels: this.channels };
  }
}

/**
 * Tiles N images ([N,H,W] or [N,H,W,C], values in [0,1]) into one raster:
 * width = nrow*w*scale + (nrow+1)*pad, height = rows*h*scale + (rows+1)*pad, rows = ceil(n/nrow).
 * Gray input gives a gray raster; RGB/RGBA input gives RGB (alpha dropped).
 */
export function imageGrid(images: Float32Array, n: number, h: number, w: number, opts: GridOptions = {}): Raster {
  const c = inferChannels(images.length, n, h, w);
  const nrow = Math.max(1, Math.min(n, Math.floor(opts.nrow ?? Math.ceil(Math.sqrt(n)))));
  const rows = Math.ceil(n / nrow);
  const pad = Math.max(0, Math.floor(opts.pad ?? 2));
  const scale = Math.max(1, Math.floor(opts.scale ?? 1));
  const cw = w * scale;
  const ch = h * scale;
  const out = new RasterBuilder(nrow * cw + (nrow + 1) * pad, rows * ch + (rows + 1) * pad, c === 1 ? 1 : 3, opts.padValue ?? 0.5);
  for (let k = 0; k < n; k++) {
    const col = k % nrow;
    const row = Math.floor(k / nrow);
    out.blit(images, k, h, w, c, pad + col * (cw + pad), pad + row * (ch + pad), scale);
  }
  return out.toRaster();
}

export interface StripOptions {
  /** Label drawn above each column (e.g. `t=999`). Omit for no label row. */
  labels?: (string | number)[];
  /** Optional label drawn left of each row. */
  rowLabels?: (string | number)[];
  pad?: number;
  padValue?: number;
  scale?: number;
  /** Font scale for labels (default: 2 if every label fits its column with a margin, else 1). */
  labelScale?: number;
  /** Background of the label band, default 1 (white). */
  labelBg?: number;
  /** Label ink, default 0 (black). */
  labelColor?: number;
}

/**
 * Denoising-progression strip: rows[i][j] is sample i at chosen timestep j, each an [H,W] or
 * [H,W,C] Float32Array in [0,1]. Labels are drawn in a band above the columns.
 */
export function stripGrid(rows: Float32Array[][], h: number, w: number, opts: StripOptions = {}): Raster {
  const nr = rows.length;
  const nc = Math.max(0, ...rows.map((r) => r.length));
  if (nr === 0 || nc === 0) throw new Error('stripGrid: no images');
  const c = inferChannels(rows[0]![0]!.length, 1, h, w);
  const pad = Math.max(0, Math.floor(opts.pad ?? 2));
  const scale = Math.max(1, Math.floor(opts.scale ?? 1));
  const cw = w * scale;
  const chh = h * scale;
  const labels = opts.labels?.map(String);
  const widest = (sc: number) => Math.max(0, ...(labels ?? []).map((l) => textWidth(l, sc)));
  const ls = Math.max(1, Math.round(opts.labelScale ?? (widest(2) <= cw - 4 ? 2 : 1)));
  const rowLabels = opts.rowLabels?.map(String);
  const labelH = labels ? textHeight(ls) + 3 * ls + 2 : 0;
  const rowLabelW = rowLabels ? Math.max(...rowLabels.map((s) => textWidth(s, ls))) + 4 * ls : 0;
  const gridW = nc * cw + (nc + 1) * pad;
  const gridH = nr * chh + (nr + 1) * pad;
  const out = new RasterBuilder(rowLabelW + gridW, labelH + gridH, c === 1 ? 1 : 3, opts.padValue ?? 0.5);
  const bg = toByte(opts.labelBg ?? 1);
  const ink = toByte(opts.labelColor ?? 0);
  if (labels) out.fillRect(0, 0, out.width, labelH, [bg, bg, bg]);
  if (rowLabels) out.fillRect(0, 0, rowLabelW, out.height, [bg, bg, bg]);
  for (let j = 0; j < nc; j++) {
    const x0 = rowLabelW + pad + j * (cw + pad);
    const lab = labels?.[j];
    if (lab !== undefined) {
      const tw = textWidth(lab, ls);
      drawText(out, Math.round(x0 + (cw - tw) / 2), 2 * ls + 1, lab, [ink, ink, ink], ls);
    }
    for (let i = 0; i < nr; i++) {
      const img = rows[i]![j];
      if (!img) continue;
      if (img.length !== h * w * c) throw new Error(`stripGrid: image [${i}][${j}] has ${img.length} values, expected ${h * w * c}`);
      out.blit(img, 0, h, w, c, x0, labelH + pad + i * (chh + pad), scale);
    }
  }
  rowLabels?.forEach((lab, i) => {
    const y = labelH + pad + i * (chh + pad) + Math.round((chh - 7 * ls) / 2);
    drawText(out, rowLabelW - 2 * ls - textWidth(lab, ls), y, lab, [ink, ink, ink], ls);
  });
  return out.toRaster();
}

/** Encodes a grid raster as PNG bytes. */
export function rasterToPng(r: Raster): Uint8Array {
  return encodePng(r.pixels, r.width, r.height, r.channels);
}
