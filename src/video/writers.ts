// Video output for gray clips [T,H,W]: animated GIF (in-process, ./gif.ts), a PNG filmstrip
// (time along x, ground truth over generated), and MP4 through an ffmpeg binary.
//
// MP4: the issue names fluent-ffmpeg; we spawn ffmpeg directly with node:child_process instead.
// fluent-ffmpeg is deprecated (archived upstream) and would only wrap the one command line we
// build here: raw gray frames on stdin -> libx264/yuv420p MP4, written to a temp file and renamed.
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { drawText, textHeight, textWidth, type FillTarget } from '../plot/font.js';
import { toByte, type Raster } from '../plot/grid.js';
import { encodePng } from '../plot/png.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { findExecutable, isExecutableFile } from '../util/which.js';
import { checkClip, checkScale, encodeGif, toGrayBytes, type GifOptions, type GrayFrames } from './gif.js';

export { decodeGif, encodeGif, gifDelays, lzwDecode, toGrayBytes } from './gif.js';
export type { DecodedGif, GifOptions, GrayFrames, LzwStats } from './gif.js';

/** Writes a gray clip [T,H,W] as an animated, looping GIF (atomically). */
export async function writeGif(file: string, frames: GrayFrames, T: number, H: number, W: number, opts: GifOptions = {}): Promise<void> {
  await writeFileAtomic(file, encodeGif(frames, T, H, W, opts));
}

// ---------------------------------------------------------------- filmstrip

export interface FilmstripOptions {
  /** Generated clips, each [T_i,H,W] (floats in [0,1] or bytes); one row per clip. */
  generated: GrayFrames[];
  /** Ground-truth clips, drawn in the row above the matching generated clip. */
  truth?: GrayFrames[];
  H: number;
  W: number;
  /** Frame index of each generated clip's first frame (e.g. K when only targets were generated). Default 0. */
  generatedStart?: number;
  /** Context length K: the gap before frame K is painted white to mark where prediction starts. */
  contextFrames?: number;
  /** Show every step-th frame (default 1); labels keep the real frame indices. */
  step?: number;
  /** Integer upscaling of each frame (default 1). */
  scale?: number;
  /** Gap between frames and rows in pixels (default 2); clips are separated by 3*pad. */
  pad?: number;
  /** Gap colour in [0,1] (default 0.5). */
  padValue?: number;
  /** Font scale (default 1: 5x7 glyphs). */
  labelScale?: number;
  /** Label every n-th shown column (default: the smallest of 1,2,5,10,20,50,... that fits). */
  labelEvery?: number;
  /** Optional per-clip name, prefixed to its row labels. */
  clipLabels?: string[];
}

export interface FilmstripLayout {
  width: number;
  height: number;
  /** Shown columns and the frame index of each. */
  cols: number;
  frameOf: (col: number) => number;
  rowsPerClip: 1 | 2;
  cellW: number;
  cellH: number;
  /** Gap between cells in pixels. */
  pad: number;
  /** Top-left pixel of a frame cell; row 0 = truth when present, else generated. */
  cellX: (col: number) => number;
  cellY: (clip: number, row: number) => number;
  labelBandH: number;
  rowLabelW: number;
  labelEvery: number;
  labelScale: number;
  rowLabels: string[];
}

function framesIn(clip: GrayFrames, H: number, W: number, what: string): number {
  const t = clip.length / (H * W);
  if (!Number.isInteger(t) || t < 1) throw new DriftlabError(`filmstrip: ${what} has ${clip.length} values, not a whole number of ${H}x${W} frames`);
  return t;
}

/** Geometry of a filmstrip (exported so callers and tests can find cells). */
export function filmstripLayout(o: FilmstripOptions): FilmstripLayout {
  const { H, W } = o;
  if (!Number.isInteger(H) || !Number.isInteger(W) || H <= 0 || W <= 0) throw new DriftlabError(`filmstrip: bad frame size ${H}x${W}`);
  const n = o.generated.length;
  if (n === 0) throw new DriftlabError('filmstrip: no generated clips');
  if (o.truth && o.truth.length !== n) throw new DriftlabError(`filmstrip: ${o.truth.length} truth clips for ${n} generated clips`);
  const start = o.generatedStart ?? 0;
  let frames = 0;
  o.generated.forEach((c, i) => (frames = Math.max(frames, start + framesIn(c, H, W, `generated clip ${i}`))));
  o.truth?.forEach((c, i) => (frames = Math.max(frames, framesIn(c, H, W, `truth clip ${i}`))));
  const step = o.step ?? 1;
  if (!Number.isInteger(step) || step < 1) throw new DriftlabError(`filmstrip: step must be an integer >= 1, got ${step}`);
  const scale = checkScale(o.scale, 'filmstrip');
  const pad = Math.max(0, Math.floor(o.pad ?? 2));
  const ls = Math.max(1, Math.round(o.labelScale ?? 1));
  const cols = Math.ceil(frames / step);
  const [cellW, cellH] = [W * scale, H * scale];
  const colStep = cellW + pad;
  const frameOf = (col: number) => col * step;
  const widest = textWidth(String(frameOf(cols - 1)), ls) + 3 * ls;
  let labelEvery = o.labelEvery ?? 0;
  for (let k = 0; !labelEvery; k++) {
    const cand = [1, 2, 5][k % 3]! * 10 ** Math.floor(k / 3);
    if (cand * colStep >= widest || cand >= cols) labelEvery = cand;
  }
  const rowsPerClip = o.truth ? 2 : 1;
  const roles = o.truth ? ['truth', 'generated'] : ['generated'];
  const rowLabels: string[] = [];
  for (let c = 0; c < n; c++) for (const r of roles) rowLabels.push(o.clipLabels?.[c] ? `${o.clipLabels[c]} ${r}` : r);
  const rowLabelW = Math.max(...rowLabels.map((s) => textWidth(s, ls))) + 4 * ls;
  const labelBandH = textHeight(ls) + 3 * ls + 2;
  const clipH = rowsPerClip * (cellH + pad);
  const clipGap = 3 * pad;
  const width = rowLabelW + pad + cols * colStep;
  const height = labelBandH + pad + n * clipH + (n - 1) * clipGap;
  if (width * height > 2 ** 28) {
    throw new DriftlabError(`filmstrip: ${width}x${height} pixels is too large; show fewer frames with a larger step`);
  }
  return {
    width, height, cols, frameOf, rowsPerClip, cellW, cellH, pad, labelBandH, rowLabelW, labelEvery, labelScale: ls, rowLabels,
    cellX: (col) => rowLabelW + pad + col * colStep,
    cellY: (clip, row) => labelBandH + pad + clip * (clipH + clipGap) + row * (cellH + pad),
  };
}

class GrayCanvas implements FillTarget<number> {
  readonly pixels: Uint8Array;
  constructor(readonly width: number, readonly height: number, fill: number) {
    this.pixels = new Uint8Array(width * height).fill(fill);
  }
  fillRect(x: number, y: number, w: number, h: number, v: number): void {
    for (let yy = Math.max(0, y); yy < Math.min(this.height, y + h); yy++) {
      this.pixels.fill(v, yy * this.width + Math.max(0, x), yy * this.width + Math.min(this.width, x + w));
    }
  }
}

/**
 * Filmstrip raster (gray): one column per shown frame, labelled with frame indices on top;
 * per clip a "truth" row (when given) over a "generated" row, labelled on the left.
 */
export function filmstrip(o: FilmstripOptions): Raster {
  const L = filmstripLayout(o);
  const { H, W } = o;
  const scale = L.cellW / W;
  const cv = new GrayCanvas(L.width, L.height, toByte(o.padValue ?? 0.5));
  cv.fillRect(0, 0, L.width, L.labelBandH, 255);
  cv.fillRect(0, 0, L.rowLabelW, L.height, 255);
  const ls = L.labelScale;
  const K = o.contextFrames;
  if (K !== undefined && K > 0) {
    const col = Math.ceil(K / (o.step ?? 1));
    if (col < L.cols) {
      cv.fillRect(L.cellX(col) - L.pad, L.labelBandH, L.pad, L.height - L.labelBandH, 255);
    }
  }
  for (let col = 0; col < L.cols; col += L.labelEvery) {
    const s = String(L.frameOf(col));
    const tw = textWidth(s, ls);
    const x = Math.min(L.width - tw, Math.max(L.rowLabelW, Math.round(L.cellX(col) + (L.cellW - tw) / 2)));
    drawText(cv, x, 2 * ls + 1, s, 0, ls);
  }
  const blit = (clip: Uint8Array, t: number, x0: number, y0: number) => {
    for (let y = 0; y < L.cellH; y++) {
      const src = t * H * W + Math.floor(y / scale) * W;
      const dst = (y0 + y) * L.width + x0;
      for (let x = 0; x < L.cellW; x++) cv.pixels[dst + x] = clip[src + Math.floor(x / scale)]!;
    }
  };
  const start = o.generatedStart ?? 0;
  o.generated.forEach((g, c) => {
    const rows: [Uint8Array, number][] = [];
    if (o.truth) rows.push([toGrayBytes(o.truth[c]!), 0]);
    rows.push([toGrayBytes(g), start]);
    rows.forEach(([clip, first], r) => {
      const T = clip.length / (H * W);
      for (let col = 0; col < L.cols; col++) {
        const t = L.frameOf(col) - first;
        if (t >= 0 && t < T) blit(clip, t, L.cellX(col), L.cellY(c, r));
      }
      const label = L.rowLabels[c * L.rowsPerClip + r]!;
      const y = L.cellY(c, r) + Math.round((L.cellH - 7 * ls) / 2);
      drawText(cv, L.rowLabelW - 2 * ls - textWidth(label, ls), y, label, 0, ls);
    });
  });
  return { pixels: cv.pixels, width: L.width, height: L.height, channels: 1 };
}

/** Writes filmstrip(o) as a gray PNG (atomically). */
export async function writeFilmstrip(file: string, o: FilmstripOptions): Promise<void> {
  const r = filmstrip(o);
  await writeFileAtomic(file, encodePng(r.pixels, r.width, r.height, 1));
}

// ---------------------------------------------------------------- MP4 via ffmpeg

export interface FindFfmpegOptions {
  /** Environment to read FFMPEG_PATH and PATH from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Consult the optional ffmpeg-static package first (default true). */
  ffmpegStatic?: boolean;
}

/**
 * Path of the binary from the optional ffmpeg-static package, or null when it is not installed
 * (or its download failed). ffmpeg-static is CommonJS, so a require() from createRequire finds it
 * synchronously (a dynamic import() would make findFfmpeg async); it is never a hard dependency.
 */
function ffmpegStaticPath(): string | null {
  try {
    const mod: unknown = createRequire(import.meta.url)('ffmpeg-static');
    const p = typeof mod === 'string' ? mod : (mod as { path?: unknown } | null)?.path;
    return typeof p === 'string' && isExecutableFile(p) ? p : null;
  } catch {
    return null;
  }
}

/** ffmpeg to use: ffmpeg-static if installed, else $FFMPEG_PATH, else `ffmpeg` on $PATH; null if none. */
export function findFfmpeg(opts: FindFfmpegOptions = {}): string | null {
  const env = opts.env ?? process.env;
  if (opts.ffmpegStatic !== false) {
    const p = ffmpegStaticPath();
    if (p) return p;
  }
  return findExecutable(['ffmpeg'], 'FFMPEG_PATH', env);
}

export interface Mp4Options extends FindFfmpegOptions {
  /** Frames per second (default 10). */
  fps?: number;
  /** Integer nearest-neighbour upscaling done by ffmpeg (default 1). */
  scale?: number;
  /** libx264 constant rate factor, 0 (lossless) .. 51 (default 18: visually lossless). */
  crf?: number;
  /** Use this ffmpeg binary instead of searching. */
  ffmpegPath?: string;
}

/**
 * Writes a gray clip [T,H,W] as an H.264 MP4 (yuv420p, so it plays everywhere): raw gray frames
 * go to ffmpeg's stdin; odd sizes are padded (black, right/bottom) to even, as yuv420p needs.
 * ffmpeg writes a temp file beside `file` that is fsynced and renamed over it on success.
 * Throws a one-line DriftlabError when no ffmpeg is found or ffmpeg fails.
 */
export async function writeMp4(file: string, frames: GrayFrames, T: number, H: number, W: number, opts: Mp4Options = {}): Promise<void> {
  checkClip(frames, T, H, W, 'writeMp4');
  const fps = opts.fps ?? 10;
  if (!(fps > 0 && Number.isFinite(fps))) throw new DriftlabError(`writeMp4: fps must be a positive number, got ${fps}`);
  const s = checkScale(opts.scale, 'writeMp4');
  const crf = opts.crf ?? 18;
  if (!Number.isInteger(crf) || crf < 0 || crf > 51) throw new DriftlabError(`writeMp4: crf must be an integer 0..51, got ${crf}`);
  const ffmpeg = opts.ffmpegPath ?? findFfmpeg(opts);
  if (!ffmpeg) {
    const env = opts.env ?? process.env;
    const bad = env.FFMPEG_PATH ? ` (FFMPEG_PATH=${env.FFMPEG_PATH} is not an executable file)` : '';
    throw new DriftlabError(
      `cannot write ${file}: no ffmpeg found${bad}; install ffmpeg (Debian/Ubuntu: apt-get install ffmpeg), ` +
        'set FFMPEG_PATH, or npm install ffmpeg-static; GIF and PNG output need no ffmpeg',
    );
  }
  const dir = path.dirname(path.resolve(file));
  const st = await fsp.stat(dir).catch(() => null);
  if (!st?.isDirectory()) throw new DriftlabError(`cannot write ${file}: directory ${dir} does not exist; create it first`);
  const tmp = `${file}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  const vf = [...(s > 1 ? [`scale=iw*${s}:ih*${s}:flags=neighbor`] : []), 'pad=ceil(iw/2)*2:ceil(ih/2)*2'].join(',');
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'rawvideo', '-pix_fmt', 'gray', '-s', `${W}x${H}`, '-r', String(fps), '-i', '-',
    '-vf', vf, '-c:v', 'libx264', '-crf', String(crf), '-pix_fmt', 'yuv420p',
    '-movflags', '+faststart', '-f', 'mp4', tmp,
  ];
  const gray = toGrayBytes(frames);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(ffmpeg, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => {
        if (err.length < 1 << 16) err += d.toString();
      });
      child.on('error', (e) => reject(new DriftlabError(`cannot run ffmpeg at ${ffmpeg}: ${e.message.split('\n')[0]}`)));
      child.on('close', (code, signal) => (code === 0 ? resolve() : reject(ffmpegFailure(ffmpeg, file, err, code, signal))));
      child.stdin.on('error', () => undefined); // EPIPE when ffmpeg exits early; its exit status says why
      child.stdin.end(Buffer.from(gray.buffer, gray.byteOffset, gray.byteLength));
    });
    const fh = await fsp.open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, file);
  } catch (e) {
    await fsp.unlink(tmp).catch(() => undefined);
    if (e instanceof DriftlabError) throw e;
    throw new DriftlabError(`cannot write ${file}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
  }
}

function ffmpegFailure(ffmpeg: string, file: string, stderr: string, code: number | null, signal: string | null): DriftlabError {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines[lines.length - 1] ?? 'no message';
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const hint = /libx264|Unknown encoder/i.test(stderr) ? '; this ffmpeg lacks libx264: install a full build' : '';
  return new DriftlabError(`ffmpeg (${ffmpeg}) ${how} writing ${file}: ${last}${hint}`);
}

// ---------------------------------------------------------------- by extension

export type VideoOptions = GifOptions & Mp4Options & Pick<FilmstripOptions, 'step' | 'pad' | 'labelScale'>;

/** Writes a gray clip [T,H,W] as .gif, .mp4 (needs ffmpeg) or .png (a one-row filmstrip), by extension. */
export async function writeVideo(file: string, frames: GrayFrames, T: number, H: number, W: number, opts: VideoOptions = {}): Promise<void> {
  const ext = path.extname(file).toLowerCase();
  if (ext === '.gif') return writeGif(file, frames, T, H, W, opts);
  if (ext === '.mp4') return writeMp4(file, frames, T, H, W, opts);
  if (ext === '.png') {
    checkClip(frames, T, H, W, 'writeVideo');
    return writeFilmstrip(file, { generated: [frames], H, W, scale: opts.scale, step: opts.step, pad: opts.pad, labelScale: opts.labelScale });
  }
  throw new DriftlabError(`cannot write ${file}: unknown video extension '${ext}'; use .gif, .mp4 or .png`);
}
