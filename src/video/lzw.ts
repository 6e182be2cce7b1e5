// Variable-width LZW as GIF uses it (9..12-bit codes, a clear code when the 4096-entry table
// is full), and the growable byte buffer the GIF writer shares.
import { DriftlabError } from '../util/errors.js';

export interface LzwStats {
  /** Clear codes seen (the leading one included). */
  clears: number;
  /** Widest code read, in bits. */
  maxCodeSize: number;
}

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

/** Decodes a GIF LZW code stream (sub-blocks already joined) into exactly `pixelCount` indices. */
export function lzwDecode(data: Uint8Array, minCodeSize: number, pixelCount: number, stats?: LzwStats): Uint8Array {
  if (minCodeSize < 2 || minCodeSize > 8) throw new DriftlabError(`GIF: bad LZW minimum code size ${minCodeSize}`);
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const prefix = new Uint16Array(MAX_CODES);
  const suffix = new Uint8Array(MAX_CODES);
  const first = new Uint8Array(MAX_CODES);
  for (let c = 0; c < clear; c++) suffix[c] = first[c] = c;
  const stack = new Uint8Array(MAX_CODES + 1);
  const out = new Uint8Array(pixelCount);
  let pos = 0;
  let codeSize = minCodeSize + 1;
  let next = eoi + 1;
  let prev = -1;
  let acc = 0;
  let nbits = 0;
  let p = 0;
  if (stats) stats.maxCodeSize = codeSize;
  /** Writes the string of `code` (+ `extra` char if >= 0); returns its first char. */
  const put = (code: number, extra: number): number => {
    let n = 0;
    if (extra >= 0) stack[n++] = extra;
    while (code > eoi) {
      stack[n++] = suffix[code]!;
      code = prefix[code]!;
    }
    stack[n++] = code;
    while (n > 0) {
      const v = stack[--n]!;
      if (pos < pixelCount) out[pos++] = v;
    }
    return code;
  };
  for (;;) {
    while (nbits < codeSize && p < data.length) {
      acc |= data[p++]! << nbits;
      nbits += 8;
    }
    if (nbits < codeSize) break; // ran out of data without an end code (tolerated if complete)
    const code = acc & ((1 << codeSize) - 1);
    acc >>>= codeSize;
    nbits -= codeSize;
    if (code === clear) {
      codeSize = minCodeSize + 1;
      next = eoi + 1;
      prev = -1;
      if (stats) stats.clears++;
      continue;
    }
    if (code === eoi) break;
    if (prev < 0) {
      if (code > clear) throw new DriftlabError(`GIF: corrupt LZW data (code ${code} right after a clear)`);
      put(code, -1);
      prev = code;
      continue;
    }
    let head: number;
    if (code < next) head = put(code, -1);
    else if (code === next) head = put(prev, first[prev]!); // the KwKwK case: prev + prev[0]
    else throw new DriftlabError(`GIF: corrupt LZW data (code ${code} beyond table size ${next})`);
    if (next < MAX_CODES) {
      prefix[next] = prev;
      suffix[next] = head;
      first[next] = first[prev]!;
      next++;
      if (next >= 1 << codeSize && codeSize < 12) {
        codeSize++;
        if (stats) stats.maxCodeSize = Math.max(stats.maxCodeSize, codeSize);
      }
    }
    prev = code;
  }
  if (pos < pixelCount) throw new DriftlabError(`GIF: image data ends after ${pos} of ${pixelCount} pixels`);
  return out;
}
