// Minimal PNG encoder/decoder (8-bit, non-interlaced gray / RGB / RGBA) using node's zlib.
// It writes the digit sheets and filmstrips (grid.ts, video/writers.ts; the charts' PNGs come
// from resvg). Kept hand-written after issue #16 item 3 measured fast-png 8.0 against it on
// those outputs (bench/bench-encoders.ts, docs/BENCHMARKS.md "Encoders"): fast-png was faster
// on the 582x582 digit sheet (0.59-0.77x the time) but slower on the 2171x285 filmstrip
// (1.24-1.35x, three runs), so it is not at least as fast on the demo's outputs; its files were 5-7%
// smaller (pako at level 9 with no per-row filter choice against node's zlib after adaptive
// filtering here).
import { deflateSync, inflateSync } from 'node:zlib';

export type PngChannels = 1 | 2 | 3 | 4;

export interface DecodedPng {
  width: number;
  height: number;
  channels: PngChannels;
  pixels: Uint8Array;
}

const SIGNATURE = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);

const CRC_TABLE: Uint32Array = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309 / PNG) of bytes[start, end). */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const COLOR_TYPE: Record<PngChannels, number> = { 1: 0, 2: 4, 3: 2, 4: 6 };

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out, 4, 8 + data.length));
  return out;
}

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  if (pa <= pb && pa <= pc) return a;
  return pb <= pc ? b : c;
}

/**
 * Applies PNG filtering to raw rows. Each output row is `filterByte, ...filtered`.
 * filter: 'adaptive' picks per row the filter with the smallest sum of |signed bytes|
 * (the standard libpng heuristic); a number forces that filter type (0..4) for every row.
 */
export function filterScanlines(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: number,
  filter: 'adaptive' | 0 | 1 | 2 | 3 | 4 = 'adaptive',
): Uint8Array {
  const bpp = channels;
  const stride = width * channels;
  const out = new Uint8Array(height * (stride + 1));
  const cand = [0, 1, 2, 3, 4].map(() => new Uint8Array(stride));
  const zero = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = pixels.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? pixels.subarray((y - 1) * stride, y * stride) : zero;
    const types = filter === 'adaptive' ? [0, 1, 2, 3, 4] : [filter];
    let best = types[0]!;
    let bestScore = Infinity;
    for (const ft of types) {
      const buf = cand[ft]!;
      let score = 0;
      for (let i = 0; i < stride; i++) {
        const a = i >= bpp ? row[i - bpp]! : 0;
        const b = prev[i]!;
        const c = i >= bpp ? prev[i - bpp]! : 0;
        const x = row[i]!;
        let v: number;
        switch (ft) {
          case 0: v = x; break;
          case 1: v = x - a; break;
          case 2: v = x - b; break;
          case 3: v = x - ((a + b) >> 1); break;
          default: v = x - paeth(a, b, c); break;
        }
        v &= 0xff;
        buf[i] = v;
        score += v < 128 ? v : 256 - v;
      }
      if (score < bestScore) {
        bestScore = score;
        best = ft;
      }
    }
    const o = y * (stride + 1);
    out[o] = best;
    out.set(cand[best]!, o + 1);
  }
  return out;
}

/** Encodes 8-bit pixels (row-major, interleaved channels) as a PNG file. */
export function encodePng(
  pixels: Uint8Array,
  width: number,
  height: number,
  channels: PngChannels,
  opts: { filter?: 'adaptive' | 0 | 1 | 2 | 3 | 4; level?: number } = {},
): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`encodePng: bad size ${width}x${height}`);
  }
  if (!(channels in COLOR_TYPE)) throw new Error(`encodePng: bad channel count ${channels}`);
  if (pixels.length !== width * height * channels) {
    throw new Error(`encodePng: expected ${width * height * channels} bytes, got ${pixels.length}`);
  }
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8; // bit depth
  ihdr[9] = COLOR_TYPE[channels];
  ihdr[10] = 0; // compression
  ihdr[11] = 0; // filter method
  ihdr[12] = 0; // no interlace
  const raw = filterScanlines(pixels, width, height, channels, opts.filter ?? 'adaptive');
  const idat = new Uint8Array(deflateSync(raw, { level: opts.level ?? 9 }));
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export interface PngChunk {
  type: string;
  data: Uint8Array;
  crc: number;
}

/** Splits a PNG file into chunks, verifying the signature and every CRC. */
export function readChunks(bytes: Uint8Array): PngChunk[] {
  for (let i = 0; i < 8; i++) {
    if (bytes[i] !== SIGNATURE[i]) throw new Error('decodePng: not a PNG file');
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const chunks: PngChunk[] = [];
  let off = 8;
  while (off + 12 <= bytes.length) {
    const len = dv.getUint32(off);
    if (off + 12 + len > bytes.length) throw new Error('decodePng: truncated chunk');
    const type = String.fromCharCode(...bytes.subarray(off + 4, off + 8));
    const data = bytes.subarray(off + 8, off + 8 + len);
    const crc = dv.getUint32(off + 8 + len);
    if (crc !== crc32(bytes, off + 4, off + 8 + len)) throw new Error(`decodePng: bad CRC in ${type}`);
    chunks.push({ type, data, crc });
    off += 12 + len;
    if (type === 'IEND') break;
  }
  return chunks;
}

/** Decodes 8-bit non-interlaced gray (0), gray+alpha (4), RGB (2) or RGBA (6) PNGs. */
export function decodePng(bytes: Uint8Array): DecodedPng {
  const chunks = readChunks(bytes);
  const ihdr = chunks[0];
  if (!ihdr || ihdr.type !== 'IHDR') throw new Error('decodePng: missing IHDR');
  const hv = new DataView(ihdr.data.buffer, ihdr.data.byteOffset, ihdr.data.byteLength);
  const width = hv.getUint32(0);
  const height = hv.getUint32(4);
  const depth = ihdr.data[8]!;
  const colorType = ihdr.data[9]!;
  const interlace = ihdr.data[12]!;
  if (depth !== 8) throw new Error(`decodePng: unsupported bit depth ${depth}`);
  if (interlace !== 0) throw new Error('decodePng: interlaced PNGs not supported');
  const channelsByType: Record<number, PngChannels> = { 0: 1, 4: 2, 2: 3, 6: 4 };
  const channels = channelsByType[colorType];
  if (!channels) throw new Error(`decodePng: unsupported color type ${colorType}`);
  const idatParts = chunks.filter((c) => c.type === 'IDAT').map((c) => c.data);
  const raw = new Uint8Array(inflateSync(Buffer.concat(idatParts)));
  const stride = width * channels;
  if (raw.length < height * (stride + 1)) throw new Error('decodePng: image data too short');
  const pixels = new Uint8Array(height * stride);
  const bpp = channels;
  for (let y = 0; y < height; y++) {
    const ft = raw[y * (stride + 1)]!;
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    for (let i = 0; i < stride; i++) {
      const x = raw[src + i]!;
      const a = i >= bpp ? pixels[dst + i - bpp]! : 0;
      const b = y > 0 ? pixels[dst - stride + i]! : 0;
      const c = i >= bpp && y > 0 ? pixels[dst - stride + i - bpp]! : 0;
      let v: number;
      switch (ft) {
        case 0: v = x; break;
        case 1: v = x + a; break;
        case 2: v = x + b; break;
        case 3: v = x + ((a + b) >> 1); break;
        case 4: v = x + paeth(a, b, c); break;
        default: throw new Error(`decodePng: bad filter type ${ft} in row ${y}`);
      }
      pixels[dst + i] = v & 0xff;
    }
  }
  return { width, height, channels, pixels };
}
