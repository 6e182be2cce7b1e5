// Variable-width LZW decoding as GIF uses it (9..12-bit codes, a clear code when the 4096-entry
// table is full), for decodeGif. Encoding is gifenc's (src/video/gif.ts).
import { DriftlabError } from '../util/errors.js';

export interface LzwStats {
  /** Clear codes seen (the leading one included). */
  clears: number;
  /** Widest code read, in bits. */
  maxCodeSize: number;
}

const MAX_CODES = 4096; // 12-bit codes

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
