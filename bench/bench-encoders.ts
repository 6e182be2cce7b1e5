/**
 * Hand-written encoders against well-kept npm ones, on the demo's own outputs (issue #16 item 3):
 * PNG (src/plot/png.ts encodePng vs fast-png) and GIF (src/video/gif.ts encodeGif vs gifenc).
 * Each encoder runs on the same pixels; the table gives median ms per file over --reps runs and
 * the output size, and each library's output is decoded back to check it holds the same pixels.
 * Keep a hand-written encoder only where this says it is faster (docs/BENCHMARKS.md).
 *
 *   node dist/bench/bench-encoders.js --from results/demo/<run-id> [--reps 5] [--out bench/results/encoders-latest.json]
 *
 * --from reads videos/side-by-side.gif, digits.png and plots/*.png of a demo run; without it the
 * inputs are synthetic (moving squares, 300 frames of 224x160), so the script runs anywhere.
 * Not run by the tests: timing needs an idle machine.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { encode as fastPngEncode, decode as fastPngDecode } from 'fast-png';
import { GIFEncoder } from 'gifenc';
import { decodePng, encodePng, type PngChannels } from '../src/plot/png.js';
import { decodeGif, encodeGif } from '../src/video/gif.js';

const argv = process.argv;
const opt = (k: string, d: string | undefined) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };

interface Img { name: string; pixels: Uint8Array; width: number; height: number; channels: PngChannels }
interface Clip { name: string; frames: Uint8Array; T: number; H: number; W: number }

function synthetic(): { images: Img[]; clips: Clip[] } {
  const T = 300, H = 160, W = 224;
  const frames = new Uint8Array(T * H * W);
  for (let t = 0; t < T; t++) for (let y = 0; y < 20; y++) for (let x = 0; x < 20; x++) {
    frames[t * H * W + ((y + 3 * t) % H) * W + ((x + 5 * t) % W)] = 255 - y * 4;
  }
  const rgb = new Uint8Array(1440 * 900 * 3).map((_, i) => (i % 3 === 0 ? (i >> 10) & 255 : 255));
  return { images: [{ name: 'synthetic-chart', pixels: rgb, width: 1440, height: 900, channels: 3 }], clips: [{ name: 'synthetic-clip', frames, T, H, W }] };
}

function fromDemo(dir: string): { images: Img[]; clips: Clip[] } {
  const images: Img[] = [];
  const pngs = [path.join(dir, 'digits.png'), ...fs.readdirSync(path.join(dir, 'plots')).filter((f) => f.endsWith('.png')).map((f) => path.join(dir, 'plots', f))];
  for (const f of pngs.filter((p) => fs.existsSync(p))) {
    const d = decodePng(fs.readFileSync(f));
    images.push({ name: path.relative(dir, f), pixels: d.pixels, width: d.width, height: d.height, channels: d.channels as PngChannels });
  }
  const g = decodeGif(fs.readFileSync(path.join(dir, 'videos', 'side-by-side.gif')));
  return { images, clips: [{ name: 'videos/side-by-side.gif', frames: g.frames, T: g.T, H: g.H, W: g.W }] };
}

/** gifenc with a 256-level gray palette: index = gray level, as encodeGif writes. */
function gifencGray(c: Clip, fps = 10): Uint8Array {
  const palette = Array.from({ length: 256 }, (_, v) => [v, v, v]);
  const gif = GIFEncoder();
  const n = c.H * c.W;
  for (let t = 0; t < c.T; t++) gif.writeFrame(c.frames.subarray(t * n, (t + 1) * n), c.W, c.H, { palette: t === 0 ? palette : undefined, delay: Math.round(1000 / fps), repeat: 0 });
  gif.finish();
  return gif.bytes();
}

function median(fn: () => Uint8Array, reps: number): { ms: number; bytes: number; out: Uint8Array } {
  let out = fn(); // warm-up
  const ms: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    out = fn();
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return { ms: ms[Math.floor(reps / 2)]!, bytes: out.length, out };
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

function main() {
  const reps = Number(opt('reps', '5'));
  const from = opt('from', undefined);
  const { images, clips } = from ? fromDemo(from) : synthetic();
  const rows: Record<string, unknown>[] = [];
  for (const im of images) {
    const own = median(() => encodePng(im.pixels, im.width, im.height, im.channels), reps);
    const lib = median(() => fastPngEncode({ width: im.width, height: im.height, data: im.pixels, channels: im.channels, depth: 8 }), reps);
    const back = fastPngDecode(lib.out);
    rows.push({ kind: 'png', input: im.name, size: `${im.width}x${im.height}x${im.channels}`, driftlabMs: own.ms, driftlabBytes: own.bytes, fastPngMs: lib.ms, fastPngBytes: lib.bytes, fastPngRoundTrip: same(back.data as Uint8Array, im.pixels) });
  }
  for (const c of clips) {
    const own = median(() => encodeGif(c.frames, c.T, c.H, c.W, { fps: 10 }), reps);
    const lib = median(() => gifencGray(c), reps);
    const back = decodeGif(lib.out);
    rows.push({ kind: 'gif', input: c.name, size: `${c.T}x${c.H}x${c.W}`, driftlabMs: own.ms, driftlabBytes: own.bytes, gifencMs: lib.ms, gifencBytes: lib.bytes, gifencRoundTrip: same(back.frames, c.frames) });
  }
  console.table(rows);
  const out = opt('out', undefined);
  if (out) fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, reps, from: from ?? 'synthetic', rows }, null, 2) + '\n');
}

main();
