/**
 * driftlab's hand-written encoders against well-kept npm ones, on the kind of outputs the demo
 * writes (issue #16 item 3):
 *
 *   png       src/plot/png.ts encodePng        vs fast-png      digit sheet (demo digits.png), filmstrip
 *   gif       the hand-written GIF encoder (now bench/legacy-gif-encoder.ts) vs gifenc (now
 *             src/video/gif.ts encodeGif), on the study's side-by-side rollout video
 *   onnx      the hand-written ONNX writer (now bench/legacy-onnx-writer.ts) vs protobufjs (now
 *             src/engine/onnx-proto.ts encodeModel), on the exported mnist-small U-Net
 *   progress  src/util/progress.ts Progress    vs cli-progress  10,000 ticks, non-TTY and TTY, into a sink
 *
 * The machine may be shared, so A and B are interleaved in one process: each round times A then
 * B (the order swaps every round), >= 5 rounds after one warm-up each; the table gives the median
 * ms per call of each and two ratios, library / driftlab of the medians and the median of the
 * per-round ratios (robust to load that drifts between rounds). Each library's output is checked
 * against driftlab's: decoded back to the same pixels (PNG, GIF) or byte-identical (ONNX).
 *
 *   node dist/bench/bench-encoders.js [--rounds 7] [--out bench/results/encoders-latest.json]
 *
 * Inputs are made here, deterministically: the bundled MNIST digits and Moving-MNIST clips
 * (32 x 32, as mmnist-small), laid out by driftlab's own grid / filmstrip / tileVideo code, and
 * the mnist-small checkpoint exported by exportOnnx. Not run by the tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { encode as fastPngEncode, decode as fastPngDecode } from 'fast-png';
import cliProgress from 'cli-progress';
import { loadBundledMnist, toFloat } from '../datasets/mnist/index.js';
import { MovingMnist } from '../datasets/moving-mnist/index.js';
import { imageGrid } from '../src/plot/grid.js';
import { encodePng, type PngChannels } from '../src/plot/png.js';
import { decodeGif, encodeGif } from '../src/video/gif.js';
import { encodeGifHandWritten } from './legacy-gif-encoder.js';
import { filmstrip } from '../src/video/writers.js';
import { tileVideo } from '../src/drift/study-video.js';
import { loadCheckpoint } from '../src/diffusion/checkpoint.js';
import { exportOnnx } from '../src/engine/export.js';
import { decodeModel, encodeModel } from '../src/engine/onnx-proto.js';
import { encodeModelHandWritten } from './legacy-onnx-writer.js';
import { Progress } from '../src/util/progress.js';

const argv = process.argv;
const opt = (k: string, d: string | undefined) => { const i = argv.indexOf(`--${k}`); return i >= 0 ? argv[i + 1] : d; };

interface Case { kind: string; input: string; size: string; lib: string; a: () => unknown; b: () => unknown; check: () => string }
interface Row { kind: string; input: string; size: string; lib: string; driftlabMs: number; libMs: number; ratioOfMedians: number; medianRatio: number; rounds: number; check: string }

const median = (v: number[]) => { const s = [...v].sort((x, y) => x - y); const m = s.length >> 1; return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2; };
const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

function time(fn: () => unknown, reps: number): number {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) fn();
  return (performance.now() - t0) / reps;
}

/** Interleaved A/B: one warm-up each, then `rounds` rounds of A,B (B,A on odd rounds). */
function ab(c: Case, rounds: number): Row {
  c.a(); c.b();
  // calls per timed sample: enough for ~50 ms of the slower one, so timer noise does not matter
  const one = Math.max(time(c.a, 1), time(c.b, 1), 1e-3);
  const reps = Math.max(1, Math.min(2000, Math.round(50 / one)));
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) { ta.push(time(c.a, reps)); tb.push(time(c.b, reps)); }
    else { tb.push(time(c.b, reps)); ta.push(time(c.a, reps)); }
  }
  const ma = median(ta), mb = median(tb);
  return { kind: c.kind, input: c.input, size: c.size, lib: c.lib, driftlabMs: +ma.toFixed(4), libMs: +mb.toFixed(4), ratioOfMedians: +(mb / ma).toFixed(3), medianRatio: +median(tb.map((b, i) => b / ta[i]!)).toFixed(3), rounds, check: c.check() };
}

// ---------------------------------------------------------------------------------------------
// inputs
// ---------------------------------------------------------------------------------------------
function pngCases(): Case[] {
  const mn = loadBundledMnist();
  // 100 digits spread over the classes, as the demo's 10 x 10 sheet of samples (scale 2)
  const pick = new Uint8Array(100 * 28 * 28);
  for (let i = 0; i < 100; i++) pick.set(mn.images.subarray(i * 97 * 784, (i * 97 + 1) * 784), i * 784);
  const sheet = imageGrid(toFloat(pick), 100, 28, 28, { nrow: 10, scale: 2 });
  const mm = new MovingMnist({ size: 32 }, 7);
  const K = 8, H = 24;
  const clips = mm.generate(4, K + H).frames;
  const per = (K + H) * 32 * 32;
  const strip = filmstrip({ truth: [0, 1].map((n) => clips.subarray(n * per, (n + 1) * per)), generated: [2, 3].map((n) => clips.subarray(n * per + K * 1024, (n + 1) * per)), generatedStart: K, contextFrames: K, H: 32, W: 32, scale: 2 });
  return [['digits sheet (demo digits.png)', sheet], ['filmstrip (truth + rollout rows)', strip]].map(([name, r]) => {
    const im = r as { pixels: Uint8Array; width: number; height: number; channels: PngChannels };
    let own: Uint8Array = new Uint8Array(0), lib: Uint8Array = new Uint8Array(0);
    return {
      kind: 'png', input: name as string, size: `${im.width}x${im.height}x${im.channels}`, lib: 'fast-png 8.0.0 (zlib level 9)',
      a: () => (own = encodePng(im.pixels, im.width, im.height, im.channels)),
      b: () => (lib = fastPngEncode({ width: im.width, height: im.height, data: im.pixels, channels: im.channels, depth: 8 }, { zlib: { level: 9 } })),
      check: () => `pixels ${same(fastPngDecode(lib).data as Uint8Array, im.pixels) ? 'same' : 'DIFFER'}; bytes driftlab ${own.length}, lib ${lib.length}`,
    };
  });
}

function gifCases(): Case[] {
  // the study's side-by-side video: truth | 4 correctors, 4 rollouts, context 8 + horizon 24
  const K = 8, H = 24, N = 4, S = 32;
  const mm = new MovingMnist({ size: S }, 11);
  const clip = (seed: number) => new MovingMnist({ size: S }, seed).generate(N, K + H).frames;
  const truth = mm.generate(N, K + H).frames;
  const gens = [21, 22, 23, 24].map(clip);
  const tv = tileVideo(truth, gens, ['truth', 'none', 'context-noise', 'kalman', 'controller'], K + H, N, S, { maxFrames: 300, rows: 4, context: K });
  let own: Uint8Array = new Uint8Array(0), lib: Uint8Array = new Uint8Array(0);
  return [{
    kind: 'gif', input: 'side-by-side rollout video', size: `${tv.T}x${tv.H}x${tv.W}`, lib: 'gifenc 1.0.3',
    a: () => (own = encodeGifHandWritten(tv.frames, tv.T, tv.H, tv.W, { fps: 10 })),
    b: () => (lib = encodeGif(tv.frames, tv.T, tv.H, tv.W, { fps: 10 })), // gifenc since this comparison (src/video/gif.ts)
    check: () => {
      const d = decodeGif(lib);
      return `frames ${same(d.frames, tv.frames) ? 'same' : 'DIFFER'}, delays ${d.delaysCs.join() === decodeGif(own).delaysCs.join() ? 'same' : 'DIFFER'}; bytes driftlab ${own.length}, lib ${lib.length}`;
    },
  }];
}

async function onnxCases(): Promise<Case[]> {
  const ck = await loadCheckpoint('checkpoints/mnist-small', { ema: true });
  const bytes = exportOnnx(ck.config.model, ck.ema ?? ck.params).bytes;
  const m = decodeModel(bytes);
  let own: Uint8Array = new Uint8Array(0), lib: Uint8Array = new Uint8Array(0);
  return [{
    kind: 'onnx', input: 'mnist-small U-Net export (encodeModel)', size: `${m.graph.nodes.length} nodes, ${m.graph.initializers.length} initializers, ${(bytes.length / 1e6).toFixed(2)} MB`, lib: 'protobufjs 8.8.1 (reflection, incl. object mapping)',
    a: () => (own = encodeModelHandWritten(m)),
    b: () => (lib = encodeModel(m)), // protobufjs since this comparison (src/engine/onnx-proto.ts)
    check: () => `bytes ${same(own, lib) ? 'identical' : `DIFFER (${own.length} vs ${lib.length})`}`,
  }];
}

function progressCases(): Case[] {
  const sink = { isTTY: false, columns: 100, write: (_s: string) => true, cursorTo: () => true, clearLine: () => true, moveCursor: () => true, on: () => sink, removeListener: () => sink };
  const N = 10_000;
  const cases: Case[] = [];
  for (const tty of [false, true]) {
    const s = { ...sink, isTTY: tty };
    cases.push({
      kind: 'progress', input: `${N} ticks with a loss field, ${tty ? 'TTY' : 'non-TTY'}`, size: `${N}`, lib: 'cli-progress 3.12.0',
      a: () => {
        const p = new Progress({ total: N, label: 'train', unit: 'step', stream: s, tty });
        for (let i = 0; i < N; i++) p.tick(1, { loss: 1 / (i + 1) });
      },
      b: () => {
        const bar = new cliProgress.SingleBar({ stream: s as unknown as NodeJS.WritableStream, format: 'train [{bar}] {percentage}% {value}/{total} loss={loss} ETA {eta_formatted}', noTTYOutput: !tty, notTTYSchedule: 0, fps: 5, hideCursor: false, gracefulExit: false, synchronousUpdate: false });
        bar.start(N, 0, { loss: 0 });
        for (let i = 0; i < N; i++) bar.increment(1, { loss: 1 / (i + 1) });
        bar.stop();
      },
      check: () => 'behaviour compared in docs/BENCHMARKS.md (rate, 10% lines)',
    });
  }
  return cases;
}

async function main() {
  const rounds = Math.max(5, Number(opt('rounds', '7')));
  const only = opt('only', undefined)?.split(',');
  const cases: Case[] = [];
  if (!only || only.includes('png')) cases.push(...pngCases());
  if (!only || only.includes('gif')) cases.push(...gifCases());
  if (!only || only.includes('onnx')) cases.push(...(await onnxCases()));
  if (!only || only.includes('progress')) cases.push(...progressCases());
  const load0 = os.loadavg()[0]!;
  const rows = cases.map((c) => { const r = ab(c, rounds); console.error(`${r.kind} ${r.input}: driftlab ${r.driftlabMs} ms, ${r.lib.split(' ')[0]} ${r.libMs} ms, ratio ${r.medianRatio}`); return r; });
  console.table(rows.map(({ lib: _l, ...r }) => r));
  const cpu = (fs.readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/) ?? [])[1] ?? os.cpus()[0]?.model;
  const out = opt('out', undefined);
  if (out) fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu, cores: os.cpus().length, loadavgStart: load0, loadavgEnd: os.loadavg()[0], rounds, rows }, null, 2) + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
