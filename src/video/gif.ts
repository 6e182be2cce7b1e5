// GIF89a for grayscale clips. The encoder writes what every browser plays: a 256-level gray
// global palette (palette index = gray level, so uint8 frames survive exactly), a NETSCAPE2.0
// loop block, one Graphic Control Extension per frame for its delay; the LZW coding and the
// container are gifenc's, which replaced a hand-written encoder because it is faster on the
// study's side-by-side video (0.78-0.93x the time in three runs, same decoded frames and delays:
// bench/bench-encoders.ts, docs/BENCHMARKS.md "Encoders"). The decoder (hand-written, lzw.ts)
// reads our own files back (and plain GIFs generally) for tests and tools.
import { toByte } from '../plot/grid.js';
import { DriftlabError } from '../util/errors.js';
import gifenc from 'gifenc';
import { lzwDecode } from './lzw.js';

export { lzwDecode } from './lzw.js';
export type { LzwStats } from './lzw.js';

/** 256 gray levels: palette index = gray level, so uint8 frames survive exactly. */
const GRAY_PALETTE = Array.from({ length: 256 }, (_, v) => [v, v, v]);

/** A grayscale clip [T,H,W]: floats in [0,1] (clipped, Math.round(v*255)) or bytes. */
export type GrayFrames = Float32Array | Uint8Array;

export interface GifOptions {
  /** Frames per second (default 10). GIF delays are in 1/100 s and browsers slow any delay
   *  under 2/100 s to 1/10 s, so fps must be in (0, 50]. */
  fps?: number;
  /** Integer nearest-neighbour upscaling (default 1). */
  scale?: number;
  /** NETSCAPE2.0 loop count: 0 = forever (default), n = play n+1 times; false omits the block. */
  loop?: number | false;
}

export interface DecodedGif {
  /** Palette indices [T,H,W]; for our files index = gray level. */
  frames: Uint8Array;
  T: number;
  H: number;
  W: number;
  /** Per-frame delay in 1/100 s (0 when a frame has no Graphic Control Extension). */
  delaysCs: number[];
  /** NETSCAPE2.0 loop count, or null when the block is absent. */
  loopCount: number | null;
  /** Global palette (RGB triples), or the first local palette if there is no global one. */
  palette: Uint8Array;
}


/** Checks a [T,H,W] clip's size; throws a one-line DriftlabError naming `what`. */
export function checkClip(frames: GrayFrames, T: number, H: number, W: number, what: string): void {
  for (const [k, v] of [['T', T], ['H', H], ['W', W]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new DriftlabError(`${what}: ${k} must be a positive integer, got ${v}`);
  }
  if (frames.length !== T * H * W) {
    throw new DriftlabError(`${what}: expected ${T}x${H}x${W} = ${T * H * W} values, got ${frames.length}`);
  }
}

/** Gray bytes of a clip: uint8 input as is, floats through toByte (clip, round(v*255), NaN -> 0). */
export function toGrayBytes(frames: GrayFrames): Uint8Array {
  if (frames instanceof Uint8Array) return frames;
  const out = new Uint8Array(frames.length);
  for (let i = 0; i < frames.length; i++) out[i] = toByte(frames[i]!);
  return out;
}

/** Integer scale option -> validated integer >= 1. */
export function checkScale(scale: number | undefined, what: string): number {
  const s = scale ?? 1;
  if (!Number.isInteger(s) || s < 1) throw new DriftlabError(`${what}: scale must be an integer >= 1, got ${s}`);
  return s;
}

/**
 * Per-frame delays in centiseconds for `fps`, spreading the rounding so the average rate is
 * exact: delay_i = round(100(i+1)/fps) - round(100 i/fps), e.g. 30 fps -> 3,4,3,3,4,3,...
 */
export function gifDelays(T: number, fps: number): number[] {
  if (!(fps > 0 && fps <= 50)) {
    throw new DriftlabError(`GIF fps must be in (0, 50] (delays are 1/100 s; browsers slow faster GIFs), got ${fps}`);
  }
  if (100 / fps > 65535) throw new DriftlabError(`GIF fps ${fps} is too slow: a frame delay must fit 655 s`);
  const d: number[] = [];
  for (let i = 0; i < T; i++) d.push(Math.round((100 * (i + 1)) / fps) - Math.round((100 * i) / fps));
  return d;
}

/** Encodes a gray clip [T,H,W] as an animated GIF89a (LZW and container by gifenc). */
export function encodeGif(frames: GrayFrames, T: number, H: number, W: number, opts: GifOptions = {}): Uint8Array {
  checkClip(frames, T, H, W, 'encodeGif');
  const s = checkScale(opts.scale, 'encodeGif');
  const [h2, w2] = [H * s, W * s];
  if (h2 > 65535 || w2 > 65535) throw new DriftlabError(`encodeGif: ${w2}x${h2} exceeds the GIF limit of 65535 pixels a side`);
  const delays = gifDelays(T, opts.fps ?? 10);
  const loop = opts.loop === false ? -1 : opts.loop ?? 0; // gifenc: repeat -1 = no NETSCAPE2.0 block
  if (opts.loop !== false && (!Number.isInteger(loop) || loop < 0 || loop > 65535)) throw new DriftlabError(`encodeGif: loop must be 0..65535, got ${opts.loop}`);
  const gray = toGrayBytes(frames);
  // room for ~0.25 byte per pixel up front: past 1 MB gifenc grows its buffer by only 1/8 a step
  const enc = gifenc.GIFEncoder({ initialCapacity: Math.max(4096, Math.min(1 << 26, Math.floor((T * h2 * w2) / 4))) });
  const idx = new Uint8Array(h2 * w2);
  for (let t = 0; t < T; t++) {
    const base = t * H * W;
    let frame: Uint8Array;
    if (s === 1) frame = gray.subarray(base, base + H * W);
    else {
      for (let y = 0; y < h2; y++) {
        const row = base + Math.floor(y / s) * W;
        for (let x = 0; x < w2; x++) idx[y * w2 + x] = gray[row + Math.floor(x / s)]!;
      }
      frame = idx;
    }
    // the first frame carries the global palette (and the loop block); every frame covers the
    // whole canvas, disposal 1 = keep; delays in ms, which gifenc rounds back to our centiseconds
    enc.writeFrame(frame, w2, h2, { palette: t === 0 ? GRAY_PALETTE : undefined, delay: delays[t]! * 10, repeat: loop, dispose: 1 });
  }
  enc.finish();
  return enc.bytes();
}

/** Row order of an interlaced GIF image: passes start at 0,4,2,1 with steps 8,8,4,2. */
function interlacedRows(h: number): number[] {
  const rows: number[] = [];
  for (const [start, step] of [[0, 8], [4, 8], [2, 4], [1, 2]] as const) {
    for (let y = start; y < h; y += step) rows.push(y);
  }
  return rows;
}

/**
 * Decodes a GIF into palette-index frames [T,H,W] composited on the logical screen
 * (frame rectangles, transparency, disposal 0-3 and interlacing are handled).
 */
export function decodeGif(bytes: Uint8Array): DecodedGif {
  const sig = String.fromCharCode(...bytes.subarray(0, 6));
  if (sig !== 'GIF89a' && sig !== 'GIF87a') throw new DriftlabError('decodeGif: not a GIF file (bad signature)');
  let p = 6;
  const need = (n: number) => {
    if (p + n > bytes.length) throw new DriftlabError('decodeGif: file is truncated');
  };
  const u8 = (): number => {
    need(1);
    return bytes[p++]!;
  };
  const u16 = (): number => u8() | (u8() << 8);
  const W = u16();
  const H = u16();
  const screen = u8();
  const bg = u8();
  u8(); // aspect
  let palette = new Uint8Array(0);
  if (screen & 0x80) {
    const n = 3 * (2 << (screen & 7));
    need(n);
    palette = bytes.slice(p, p + n);
    p += n;
  }
  const subBlocks = (): Uint8Array => {
    const parts: Uint8Array[] = [];
    for (let n = u8(); n > 0; n = u8()) {
      need(n);
      parts.push(bytes.subarray(p, p + n));
      p += n;
    }
    return parts.length === 1 ? parts[0]! : new Uint8Array(Buffer.concat(parts));
  };
  const canvas = new Uint8Array(W * H).fill(palette.length ? bg : 0);
  const frames: Uint8Array[] = [];
  const delaysCs: number[] = [];
  let loopCount: number | null = null;
  let gce = { delay: 0, disposal: 0, transparent: -1, seen: false };
  for (;;) {
    const b = u8();
    if (b === 0x3b) break;
    if (b === 0x21) {
      const label = u8();
      if (label === 0xf9) {
        const block = subBlocks();
        if (block.length < 4) throw new DriftlabError('decodeGif: short Graphic Control Extension');
        const packed = block[0]!;
        gce = { delay: block[1]! | (block[2]! << 8), disposal: (packed >> 2) & 7, transparent: packed & 1 ? block[3]! : -1, seen: true };
      } else if (label === 0xff) {
        const id = subBlocks(); // the first sub-block holds the application id; the rest follow
        if (String.fromCharCode(...id.subarray(0, 11)) === 'NETSCAPE2.0' && id[11] === 1) loopCount = id[12]! | (id[13]! << 8);
      } else subBlocks();
      continue;
    }
    if (b !== 0x2c) throw new DriftlabError(`decodeGif: unexpected block 0x${b.toString(16)} at byte ${p - 1}`);
    const [x0, y0, w, h, packed] = [u16(), u16(), u16(), u16(), u8()];
    if (packed & 0x80) {
      const n = 3 * (2 << (packed & 7));
      need(n);
      if (!palette.length) palette = bytes.slice(p, p + n);
      p += n;
    }
    const mcs = u8();
    const pix = lzwDecode(subBlocks(), mcs, w * h);
    const saved = gce.disposal === 3 ? canvas.slice() : null;
    const rows = packed & 0x40 ? interlacedRows(h) : null;
    for (let r = 0; r < h; r++) {
      const y = y0 + (rows ? rows[r]! : r);
      if (y >= H) continue;
      for (let x = 0; x < w && x0 + x < W; x++) {
        const v = pix[r * w + x]!;
        if (v !== gce.transparent) canvas[y * W + x0 + x] = v;
      }
    }
    frames.push(canvas.slice());
    delaysCs.push(gce.seen ? gce.delay : 0);
    if (gce.disposal === 2) {
      for (let y = y0; y < Math.min(H, y0 + h); y++) canvas.fill(palette.length ? bg : 0, y * W + x0, y * W + Math.min(W, x0 + w));
    } else if (saved) canvas.set(saved);
    gce = { delay: 0, disposal: 0, transparent: -1, seen: false };
  }
  const T = frames.length;
  const all = new Uint8Array(T * H * W);
  frames.forEach((f, t) => all.set(f, t * H * W));
  return { frames: all, T, H, W, delaysCs, loopCount, palette };
}
