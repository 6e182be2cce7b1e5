/**
 * The hand-written GIF encoder (variable-width LZW and the GIF89a writer) that src/video/gif.ts
 * used before gifenc replaced it (issue #16 item 3). Kept outside driftlab's sources for two
 * jobs only: bench-encoders.ts repeats the comparison with it, and test/video/writers.test.ts
 * uses lzwEncode as a second, independent LZW encoder to stress driftlab's GIF decoder
 * (table resets, 12-bit codes, every length around the code-size boundaries).
 */
import { DriftlabError } from '../src/util/errors.js';
import { checkClip, checkScale, gifDelays, toGrayBytes, type GifOptions, type GrayFrames } from '../src/video/gif.js';

const MAX_CODES = 4096; // 12-bit codes

export class Bytes {
  buf = new Uint8Array(1 << 16);
  len = 0;
  private room(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  push(...xs: number[]): void {
    this.room(xs.length);
    for (const x of xs) this.buf[this.len++] = x & 0xff;
  }
  u16(v: number): void {
    this.push(v & 0xff, v >>> 8);
  }
  ascii(s: string): void {
    for (let i = 0; i < s.length; i++) this.push(s.charCodeAt(i));
  }
  append(b: Uint8Array): void {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

/** Scratch tables for the LZW encoder, allocated once per GIF and reused across frames. */
export class LzwTable {
  /** code of string (prefix code, next byte) at index prefix << 8 | byte; 0 = absent. */
  readonly codes = new Uint16Array(MAX_CODES << 8);
  readonly keys = new Int32Array(MAX_CODES);
  used = 0;
  reset(): void {
    for (let i = 0; i < this.used; i++) this.codes[this.keys[i]!] = 0;
    this.used = 0;
  }
}

/**
 * LZW-compresses palette indices (each < 2^minCodeSize) into the GIF code stream (LSB-first,
 * before sub-block framing). Starts with a clear code; codes grow from minCodeSize+1 bits to 12;
 * when all 4096 codes are taken a clear code resets the table (the "deferred clear" is not used).
 */
export function lzwEncode(indices: Uint8Array, minCodeSize = 8, table = new LzwTable()): Uint8Array {
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const out = new Bytes();
  let acc = 0;
  let nbits = 0;
  let codeSize = minCodeSize + 1;
  let next = eoi + 1;
  const write = (code: number) => {
    acc |= code << nbits;
    nbits += codeSize;
    while (nbits >= 8) {
      out.push(acc & 0xff);
      acc >>>= 8;
      nbits -= 8;
    }
  };
  // The decoder adds a table entry one code later than we do, and widens its codes once its
  // next free code reaches 2^codeSize. Widening right after emitting, while `next` is the
  // code we are about to add, keeps both sides in step (also before the final EOI).
  const emit = (code: number) => {
    write(code);
    if (next >= 1 << codeSize && codeSize < 12) codeSize++;
  };
  table.reset();
  write(clear);
  if (indices.length > 0) {
    let prefix = indices[0]!;
    for (let i = 1; i < indices.length; i++) {
      const c = indices[i]!;
      const key = (prefix << 8) | c;
      const code = table.codes[key]!;
      if (code !== 0) {
        prefix = code;
        continue;
      }
      emit(prefix);
      if (next < MAX_CODES) {
        table.codes[key] = next++;
        table.keys[table.used++] = key;
      } else {
        write(clear); // table full: start over at minCodeSize+1 bits
        table.reset();
        next = eoi + 1;
        codeSize = minCodeSize + 1;
      }
      prefix = c;
    }
    emit(prefix);
  }
  write(eoi);
  if (nbits > 0) out.push(acc & 0xff);
  return out.bytes();
}


/** Encodes a gray clip [T,H,W] as an animated GIF89a. */
export function encodeGifHandWritten(frames: GrayFrames, T: number, H: number, W: number, opts: GifOptions = {}): Uint8Array {
  checkClip(frames, T, H, W, 'encodeGif');
  const s = checkScale(opts.scale, 'encodeGif');
  const [h2, w2] = [H * s, W * s];
  if (h2 > 65535 || w2 > 65535) throw new DriftlabError(`encodeGif: ${w2}x${h2} exceeds the GIF limit of 65535 pixels a side`);
  const delays = gifDelays(T, opts.fps ?? 10);
  const gray = toGrayBytes(frames);
  const out = new Bytes();
  out.ascii('GIF89a');
  out.u16(w2);
  out.u16(h2);
  out.push(0xf7, 0, 0); // global table of 2^(7+1) colours, 8-bit colour resolution; bg 0; square pixels
  for (let v = 0; v < 256; v++) out.push(v, v, v);
  if (opts.loop !== false) {
    const loop = opts.loop ?? 0;
    if (!Number.isInteger(loop) || loop < 0 || loop > 65535) throw new DriftlabError(`encodeGif: loop must be 0..65535, got ${loop}`);
    out.push(0x21, 0xff, 11);
    out.ascii('NETSCAPE2.0');
    out.push(3, 1);
    out.u16(loop);
    out.push(0);
  }
  const table = new LzwTable();
  const idx = new Uint8Array(h2 * w2);
  for (let t = 0; t < T; t++) {
    // Graphic Control Extension: disposal 1 (keep; every frame covers the canvas), no transparency.
    out.push(0x21, 0xf9, 4, 1 << 2);
    out.u16(delays[t]!);
    out.push(0, 0);
    out.push(0x2c);
    out.u16(0);
    out.u16(0);
    out.u16(w2);
    out.u16(h2);
    out.push(0); // no local palette, not interlaced
    const base = t * H * W;
    for (let y = 0; y < h2; y++) {
      const row = base + Math.floor(y / s) * W;
      for (let x = 0; x < w2; x++) idx[y * w2 + x] = gray[row + Math.floor(x / s)]!;
    }
    const lzw = lzwEncode(idx, 8, table);
    out.push(8);
    for (let o = 0; o < lzw.length; o += 255) {
      const n = Math.min(255, lzw.length - o);
      out.push(n);
      out.append(lzw.subarray(o, o + n));
    }
    out.push(0);
  }
  out.push(0x3b);
  return out.bytes();
}
