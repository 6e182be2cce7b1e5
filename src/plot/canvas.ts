// A small RGB raster canvas with antialiased lines, polygons, discs and bitmap text.
import { drawText, type DrawTextOptions } from './font.js';
import { encodePng } from './png.js';

export type RGB = readonly [number, number, number];
/** '#rgb', '#rrggbb', or an [r, g, b] triple of 0..255 integers. */
export type Color = string | RGB;

export function parseColor(c: Color): RGB {
  if (typeof c !== 'string') return c;
  const m = /^#?([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c.trim());
  if (!m) throw new Error(`parseColor: unsupported colour ${JSON.stringify(c)}`);
  let hex = m[1]!;
  if (hex.length === 3) hex = hex.split('').map((h) => h + h).join('');
  const n = parseInt(hex, 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

export type Point = readonly [number, number];

export class Canvas {
  readonly width: number;
  readonly height: number;
  /** Row-major RGB bytes. */
  readonly data: Uint8Array;

  constructor(width: number, height: number, bg: Color = '#ffffff') {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
      throw new Error(`Canvas: bad size ${width}x${height}`);
    }
    this.width = width;
    this.height = height;
    this.data = new Uint8Array(width * height * 3);
    const [r, g, b] = parseColor(bg);
    for (let i = 0; i < this.data.length; i += 3) {
      this.data[i] = r;
      this.data[i + 1] = g;
      this.data[i + 2] = b;
    }
  }

  getPixel(x: number, y: number): RGB {
    const i = (y * this.width + x) * 3;
    return [this.data[i]!, this.data[i + 1]!, this.data[i + 2]!];
  }

  setPixel(x: number, y: number, color: Color): void {
    x = Math.floor(x);
    y = Math.floor(y);
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const [r, g, b] = parseColor(color);
    const i = (y * this.width + x) * 3;
    this.data[i] = r;
    this.data[i + 1] = g;
    this.data[i + 2] = b;
  }

  /** Alpha-blends `color` over the pixel (alpha in [0, 1]). */
  blendPixel(x: number, y: number, color: Color, alpha: number): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height || !(alpha > 0)) return;
    const [r, g, b] = parseColor(color);
    const a = Math.min(1, alpha);
    const i = (y * this.width + x) * 3;
    const d = this.data;
    d[i] = Math.round(d[i]! + (r - d[i]!) * a);
    d[i + 1] = Math.round(d[i + 1]! + (g - d[i + 1]!) * a);
    d[i + 2] = Math.round(d[i + 2]! + (b - d[i + 2]!) * a);
  }

  fillRect(x: number, y: number, w: number, h: number, color: Color, alpha = 1): void {
    const rgb = parseColor(color);
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    for (let yy = y0; yy < y1; yy++) {
      for (let xx = x0; xx < x1; xx++) {
        if (alpha >= 1) {
          const i = (yy * this.width + xx) * 3;
          this.data[i] = rgb[0];
          this.data[i + 1] = rgb[1];
          this.data[i + 2] = rgb[2];
        } else this.blendPixel(xx, yy, rgb, alpha);
      }
    }
  }

  /** Crisp 1-pixel-aligned rectangle outline of the given integer line width. */
  rect(x: number, y: number, w: number, h: number, color: Color, lineWidth = 1): void {
    const lw = Math.max(1, Math.round(lineWidth));
    this.fillRect(x, y, w, lw, color);
    this.fillRect(x, y + h - lw, w, lw, color);
    this.fillRect(x, y, lw, h, color);
    this.fillRect(x + w - lw, y, lw, h, color);
  }

  /** Antialiased line segment (pixel centres are at integer + 0.5). */
  line(x0: number, y0: number, x1: number, y1: number, color: Color, width = 1): void {
    this.polyline([[x0, y0], [x1, y1]], color, width);
  }

  /**
   * Antialiased polyline with round joins/caps. Coverage is the max over segments, so joints are
   * not double-blended. Non-finite points break the line.
   */
  polyline(points: readonly Point[], color: Color, width = 1, alpha = 1): void {
    const rgb = parseColor(color);
    const r = Math.max(0.5, width / 2);
    const cov = new Map<number, number>();
    const add = (idx: number, c: number) => {
      if (c > (cov.get(idx) ?? 0)) cov.set(idx, c);
    };
    for (let k = 0; k + 1 < points.length || (k === 0 && points.length === 1); k++) {
      const [ax, ay] = points[k]!;
      const [bx, by] = points[Math.min(k + 1, points.length - 1)]!;
      if (![ax, ay, bx, by].every(Number.isFinite)) continue;
      const dx = bx - ax;
      const dy = by - ay;
      const len2 = dx * dx + dy * dy;
      const xmin = Math.max(0, Math.floor(Math.min(ax, bx) - r - 1));
      const xmax = Math.min(this.width - 1, Math.ceil(Math.max(ax, bx) + r + 1));
      const ymin = Math.max(0, Math.floor(Math.min(ay, by) - r - 1));
      const ymax = Math.min(this.height - 1, Math.ceil(Math.max(ay, by) + r + 1));
      const steep = Math.abs(dy) > Math.abs(dx);
      // Walk the major axis and visit only a band around the segment.
      const band = (r + 1.5) * (len2 > 0 ? Math.sqrt(len2) / Math.max(Math.abs(steep ? dy : dx), 1e-9) : 1);
      const [m0, m1] = steep ? [ymin, ymax] : [xmin, xmax];
      for (let m = m0; m <= m1; m++) {
        const mc = m + 0.5;
        let t = len2 > 0 ? (steep ? (mc - ay) / dy : (mc - ax) / dx) : 0;
        if (!Number.isFinite(t)) t = 0;
        t = Math.min(1, Math.max(0, t));
        const centre = steep ? ax + t * dx : ay + t * dy;
        const lo = Math.max(steep ? xmin : ymin, Math.floor(centre - Math.min(band, 1e6)));
        const hi = Math.min(steep ? xmax : ymax, Math.ceil(centre + Math.min(band, 1e6)));
        for (let n = lo; n <= hi; n++) {
          const px = (steep ? n : m) + 0.5;
          const py = (steep ? m : n) + 0.5;
          let u = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
          u = Math.min(1, Math.max(0, u));
          const ex = px - (ax + u * dx);
          const ey = py - (ay + u * dy);
          const d = Math.sqrt(ex * ex + ey * ey);
          const c = Math.min(1, r + 0.5 - d);
          if (c > 0) add((steep ? m : n) * this.width + (steep ? n : m), c);
        }
      }
    }
    for (const [idx, c] of cov) this.blendPixel(idx % this.width, Math.floor(idx / this.width), rgb, c * alpha);
  }

  /** Antialiased filled disc. */
  disc(cx: number, cy: number, radius: number, color: Color, alpha = 1): void {
    const rgb = parseColor(color);
    for (let y = Math.floor(cy - radius - 1); y <= Math.ceil(cy + radius + 1); y++) {
      for (let x = Math.floor(cx - radius - 1); x <= Math.ceil(cx + radius + 1); x++) {
        const d = Math.hypot(x + 0.5 - cx, y + 0.5 - cy);
        const c = Math.min(1, radius + 0.5 - d);
        if (c > 0) this.blendPixel(x, y, rgb, c * alpha);
      }
    }
  }

  /** Even-odd scanline fill of a polygon (sampled at pixel centres), blended with `alpha`. */
  fillPolygon(points: readonly Point[], color: Color, alpha = 1): void {
    const pts = points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (pts.length < 3) return;
    const rgb = parseColor(color);
    const ys = pts.map((p) => p[1]);
    const y0 = Math.max(0, Math.floor(Math.min(...ys)));
    const y1 = Math.min(this.height - 1, Math.ceil(Math.max(...ys)));
    const xs: number[] = [];
    for (let y = y0; y <= y1; y++) {
      const sy = y + 0.5;
      xs.length = 0;
      for (let i = 0; i < pts.length; i++) {
        const [ax, ay] = pts[i]!;
        const [bx, by] = pts[(i + 1) % pts.length]!;
        if ((ay <= sy && by > sy) || (by <= sy && ay > sy)) xs.push(ax + ((sy - ay) / (by - ay)) * (bx - ax));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        const xa = Math.max(0, Math.round(xs[k]!));
        const xb = Math.min(this.width, Math.round(xs[k + 1]!));
        for (let x = xa; x < xb; x++) this.blendPixel(x, y, rgb, alpha);
      }
    }
  }

  /** Bitmap-font text with top-left at (x, y); returns the text width in pixels. */
  text(x: number, y: number, text: string, color: Color, scale = 1, opts: DrawTextOptions = {}): number {
    return drawText(this, x, y, text, parseColor(color), scale, opts);
  }

  toPng(): Uint8Array {
    return encodePng(this.data, this.width, this.height, 3);
  }
}
