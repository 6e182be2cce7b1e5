/**
 * Every drift metric of a rollout folder (video/rollout.ts), per frame index, from the STORED
 * 8-bit frames (frames.npy against truth.npy, both uint8 [T, N, S, S]; frames 0..K-1 are the
 * given context, identical in both). Frame index t counts the context frames.
 *
 * Per frame and rollout, arrays [T*N] with index t*N + n, pixels in [0,1] (uint8 / 255):
 *   mse   mean squared error against the simulator's continuation
 *   psnr  10 log10(1 / mse) dB (data range 1); +Infinity where the frames are identical. For
 *         summaries use PSNR_CAP_DB (summarizeMetrics does): 8-bit frames of side S that differ
 *         at all have PSNR <= 10 log10(255^2 S^2) (90.3 dB at S = 128), so a 100 dB cap only
 *         replaces the Infinity of identical frames and keeps means finite and JSON-safe.
 *   ssim  mean SSIM, eval/frames.ts defaults (11x11 Gaussian window, sigma 1.5, data range 1)
 *   traj  trajectory error (trajectory.ts): mean over digits of the distance (canvas px)
 *         between the digit positions recovered from the frame and the true ones
 *
 * Distribution metrics against REAL Moving-MNIST statistics (fresh simulator frames or clips of
 * the test split, seed distinct from the rollout's, pooled exactly as rollouts store truth):
 *   frechetFrameCurve  Frechet distance of the frames in bins [k, k+bin) over all N rollouts
 *   fvdAtHorizons      Frechet distance of clip-encoder windows starting around horizon h
 * Both are estimated from few samples (bin*N frames, windows*N clips) and are biased UPWARD
 * at small sample sizes (the sample covariance's spread adds to the trace term even for
 * perfect samples). Compare a corrector's curve with the same curve computed on truth.npy:
 * that is the sample-size-matched real baseline (the floor a perfect generator would reach).
 *
 * Network inputs: feature nets take [n, ...inputShape] in [0,1]; frames are converted by the
 * caller's `toInput(u8 [count, S, S], count, S) -> Float32Array [count, ...frameInputShape]`.
 * A clip net's input [n, F, ...frameInputShape] is the per-frame conversion of F consecutive
 * frames (clip-major), so the same toInput serves both.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MovingMnist, MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import type { FeatureNet } from '../eval/features/index.js';
import { mse as mseOf, psnrFromMse, ssim } from '../eval/frames.js';
import { frechetDistance, gaussianStats, GaussianStats } from '../eval/frechet.js';
import { readNpy } from '../io/npy.js';
import { DriftlabError } from '../util/errors.js';
import { poolFrame } from '../video/clips.js';
import { toU8 } from '../video/frames8.js';
import { TrajectoryMatcher } from './trajectory.js';
import { templateGroups, trajectoryError, truthTrajectories } from './trajectory-truth.js';

export { formatHorizon, frameBand, summarizeAt, summarizeMetrics, trackingHorizon, PSNR_CAP_DB, TRACK_THRESHOLD_PX } from './metrics-summary.js';
export type { Band, FrameSummary } from './metrics-summary.js';

export type ToInput = (u8: Uint8Array, count: number, S: number) => Float32Array;
export type MmnistData = Omit<MovingMnistConfig, 'split'> & { pool: number; split?: MovingMnistConfig['split'] };

export interface RunFrameMetrics {
  /** frames scored (context included) */
  T: number;
  N: number;
  K: number;
  S: number;
  /** [T*N], index t*N + n */
  mse: Float64Array;
  psnr: Float64Array;
  ssim: Float64Array;
  traj: Float64Array;
  /** trajectory error of truth.npy itself (the recovery's own floor), when asked for */
  trajFloor?: Float64Array;
}

export interface RunFrameMetricsOptions {
  /** score only the first T frames (default: every frame present in both files) */
  T?: number;
  /** also recover positions from truth.npy (RunFrameMetrics.trajFloor) */
  trajFloor?: boolean;
}

/** A rollout folder's run.json, frames.npy and truth.npy, checked against each other. */
export interface RunArrays {
  dir: string;
  run: { data: MmnistData; rollouts: number; context: number; seed: number };
  /** uint8 [Tf, N, S, S] and [Tt, N, S, S] */
  frames: Uint8Array;
  truth: Uint8Array;
  Tf: number;
  Tt: number;
  N: number;
  S: number;
}

/** Read and check a rollout folder once; scoreRun and the Frechet/FVD and video passes share it. */
export async function readRunArrays(runDir: string): Promise<RunArrays> {
  const runPath = path.join(runDir, 'run.json');
  if (!fs.existsSync(runPath)) throw new DriftlabError(`${runDir} holds no rollout (no run.json); pass a folder written by 'driftlab rollout'`);
  const run = JSON.parse(fs.readFileSync(runPath, 'utf8'));
  if (!run.data || !Number.isInteger(run.rollouts) || !Number.isInteger(run.context)) throw new DriftlabError(`${runPath} lacks data, rollouts or context; it was not written by 'driftlab rollout'`);
  const fr = await readNpy(path.join(runDir, 'frames.npy'));
  const tr = await readNpy(path.join(runDir, 'truth.npy'));
  for (const [a, name] of [[fr, 'frames.npy'], [tr, 'truth.npy']] as const) {
    if (a.dtype !== 'uint8' || a.shape.length !== 4) throw new DriftlabError(`${name} in ${runDir} must be uint8 [T, N, S, S], got ${a.dtype} [${a.shape}]`);
  }
  const [Tf, N, S] = fr.shape, Tt = tr.shape[0];
  if (tr.shape[1] !== N || tr.shape[2] !== S || fr.shape[3] !== S || tr.shape[3] !== S) throw new DriftlabError(`frames.npy [${fr.shape}] and truth.npy [${tr.shape}] in ${runDir} do not match`);
  if (N !== run.rollouts) throw new DriftlabError(`frames.npy holds ${N} rollouts but run.json says ${run.rollouts}`);
  const data = run.data as MmnistData;
  if (data.size / data.pool !== S) throw new DriftlabError(`frames are ${S}x${S} but run.json's data (canvas ${data.size}, pool ${data.pool}) gives ${data.size / data.pool}`);
  return { dir: runDir, run, frames: fr.data as Uint8Array, truth: tr.data as Uint8Array, Tf, Tt, N, S };
}

/** Read a rollout folder's run.json, frames.npy and truth.npy and score every stored frame. */
export async function runFrameMetrics(runDir: string, opts: RunFrameMetricsOptions = {}): Promise<RunFrameMetrics> {
  return scoreRun(await readRunArrays(runDir), opts);
}

/** MSE, PSNR, SSIM and trajectory error of every stored frame of a rollout already in memory. */
export function scoreRun(r: RunArrays, opts: RunFrameMetricsOptions = {}): RunFrameMetrics {
  const { run, Tf, Tt, N, S, frames, truth } = r;
  const data = run.data;
  let T = Math.min(Tf, Tt);
  if (opts.T !== undefined) {
    if (!Number.isInteger(opts.T) || opts.T < 0) throw new DriftlabError(`T must be a non-negative integer, got ${opts.T}`);
    T = Math.min(T, opts.T);
  }
  const P = S * S;
  const out: RunFrameMetrics = {
    T, N, K: run.context, S,
    mse: new Float64Array(T * N), psnr: new Float64Array(T * N), ssim: new Float64Array(T * N), traj: new Float64Array(T * N),
  };
  const a = new Float64Array(P), b = new Float64Array(P);
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    const off = (t * N + n) * P, i = t * N + n;
    for (let j = 0; j < P; j++) { a[j] = frames[off + j] / 255; b[j] = truth[off + j] / 255; }
    const m = mseOf(a, b);
    out.mse[i] = m;
    out.psnr[i] = psnrFromMse(m, 1);
    out.ssim[i] = ssim(a, b, S, S, { dataRange: 1 });
  }
  const truths = truthTrajectories({ data, seed: run.seed, rollouts: N }, T);
  if (opts.trajFloor) out.trajFloor = new Float64Array(T * N);
  for (let n = 0; n < N; n++) {
    const m = new TrajectoryMatcher(S, data.size, data.pool, truths[n].templates);
    const g = templateGroups(truths[n].templates);
    for (let t = 0; t < T; t++) {
      const off = (t * N + n) * P;
      out.traj[t * N + n] = trajectoryError(m.recover(frames.subarray(off, off + P)), truths[n].positions[t], g);
      if (out.trajFloor) out.trajFloor[t * N + n] = trajectoryError(m.recover(truth.subarray(off, off + P)), truths[n].positions[t], g);
    }
  }
  return out;
}

/** Features of count frames (uint8 [count, S, S]) in batches: [count, D] float32. */
export function frameFeatures(u8: Uint8Array, count: number, S: number, net: FeatureNet, toInput: ToInput, batch = 256): Float32Array {
  const P = S * S, out = new Float32Array(count * net.dim);
  for (let i = 0; i < count; i += batch) {
    const c = Math.min(batch, count - i);
    const f = net.features(toInput(u8.subarray(i * P, (i + c) * P), c, S), c);
    if (f.length !== c * net.dim) throw new DriftlabError(`feature net ${net.name} returned ${f.length} values for ${c} inputs of dimension ${net.dim}`);
    out.set(f, i * net.dim);
  }
  return out;
}

/** Features of n clips (uint8 [n, F, S, S], clip-major) with a clip net of F = inputShape[0] frames. */
export function clipFeatures(u8: Uint8Array, n: number, S: number, net: FeatureNet, toInput: ToInput, batch = 32): Float32Array {
  const F = net.inputShape[0], P = S * S, out = new Float32Array(n * net.dim);
  for (let i = 0; i < n; i += batch) {
    const c = Math.min(batch, n - i);
    const f = net.features(toInput(u8.subarray(i * F * P, (i + c) * F * P), c * F, S), c);
    if (f.length !== c * net.dim) throw new DriftlabError(`clip net ${net.name} returned ${f.length} values for ${c} clips of dimension ${net.dim}`);
    out.set(f, i * net.dim);
  }
  return out;
}

export interface FrechetCurve {
  /** first frame index of each bin [start, start + bin) */
  start: number[];
  frechet: number[];
  /** samples behind each value: bin * N */
  samples: number;
}

/**
 * Frechet distance per frame bin: the frames of indices [k, k+bin) of all N rollouts (bin*N
 * samples; frames [T, N, S, S]) against the real reference stats, for k = from, from+bin, ...
 * (full bins only, so every value rests on the same sample size). Biased upward at small
 * bin*N; the same curve on truth.npy is the sample-size-matched real baseline.
 */
export function frechetFrameCurve(
  frames: Uint8Array, T: number, N: number, S: number, net: FeatureNet, ref: GaussianStats, bin: number, toInput: ToInput,
  opts: { from?: number } = {},
): FrechetCurve {
  const P = S * S, from = opts.from ?? 0;
  if (frames.length < T * N * P) throw new DriftlabError(`frames hold ${frames.length} values, fewer than [${T},${N},${S},${S}]`);
  if (!Number.isInteger(bin) || bin < 1) throw new DriftlabError(`Frechet bin must be a positive integer, got ${bin}`);
  if (bin * N < 2) throw new DriftlabError(`a Frechet bin needs at least 2 frames; with ${N} rollout(s) use a bin of ${Math.ceil(2 / N)} or more`);
  const start: number[] = [], frechet: number[] = [];
  for (let k = from; k + bin <= T; k += bin) {
    const x = frameFeatures(frames.subarray(k * N * P, (k + bin) * N * P), bin * N, S, net, toInput);
    start.push(k);
    frechet.push(frechetDistance(gaussianStats(x, bin * N, net.dim), ref).frechet);
  }
  return { start, frechet, samples: bin * N };
}

export interface FvdRow {
  horizon: number;
  /** windows per rollout (start h, h+stride, ... < h+span); 0 when skipped */
  windows: number;
  /** clips behind the value: windows * N */
  samples: number;
  /** null when skipped */
  fvd: number | null;
  skipped: boolean;
  reason?: string;
}

/**
 * FVD around horizons: clip-net windows of F = clipNet.inputShape[0] frames starting at
 * h, h+stride, ... < h+span, over all N rollouts, against real clip stats. A horizon is
 * skipped (fvd null, not zero) unless ALL its windows fit in the T frames, so every reported
 * value rests on the same number of clips. Biased upward at small windows*N, like the curve.
 */
export function fvdAtHorizons(
  frames: Uint8Array, T: number, N: number, S: number, clipNet: FeatureNet, ref: GaussianStats,
  horizons: number[], span: number, stride: number, toInput: ToInput,
): FvdRow[] {
  const F = clipNet.inputShape[0], P = S * S;
  if (!Number.isInteger(F) || F < 1) throw new DriftlabError(`clip net ${clipNet.name} has input shape [${clipNet.inputShape}]; its first axis must be the frame count`);
  if (!Number.isInteger(stride) || stride < 1 || !Number.isInteger(span) || span < 1) throw new DriftlabError(`FVD span and stride must be positive integers, got ${span}, ${stride}`);
  if (frames.length < T * N * P) throw new DriftlabError(`frames hold ${frames.length} values, fewer than [${T},${N},${S},${S}]`);
  const W = Math.ceil(span / stride);
  return horizons.map((h): FvdRow => {
    const last = h + (W - 1) * stride;
    if (!Number.isInteger(h) || h < 0 || last + F > T) {
      return { horizon: h, windows: 0, samples: 0, fvd: null, skipped: true, reason: `windows up to frame ${last + F - 1} do not fit in ${T} frames` };
    }
    if (W * N < 2) return { horizon: h, windows: W, samples: W * N, fvd: null, skipped: true, reason: 'fewer than 2 clips' };
    const u8 = new Uint8Array(W * N * F * P);
    let c = 0;
    for (let w = 0; w < W; w++) for (let n = 0; n < N; n++, c++) {
      for (let f = 0; f < F; f++) {
        const src = ((h + w * stride + f) * N + n) * P;
        u8.set(frames.subarray(src, src + P), (c * F + f) * P);
      }
    }
    const x = clipFeatures(u8, W * N, S, clipNet, toInput);
    return { horizon: h, windows: W, samples: W * N, fvd: frechetDistance(gaussianStats(x, W * N, clipNet.dim), ref).frechet, skipped: false };
  });
}

/** A reference seed for real statistics, distinct from a rollout seed. */
export const referenceSeed = (runSeed: number): number => runSeed + 1_000_003;

function simulator(data: MmnistData, seed: number, S: number): { mm: MovingMnist; S0: number; pool: number } {
  const mm = new MovingMnist({ ...data, split: 'test' }, seed);
  const S0 = mm.config.size, pool = data.pool;
  if (!Number.isInteger(pool) || pool < 1 || S0 / pool !== S) throw new DriftlabError(`canvas ${S0} pooled by ${pool} does not give ${S}x${S} frames`);
  return { mm, S0, pool };
}

/** Simulator frames [t0, t0+F) of clip k, pooled and quantised exactly as rollouts store truth. */
function clipFrames(mm: MovingMnist, S0: number, pool: number, k: number, t0: number, F: number, out: Uint8Array, offset: number): void {
  const S = S0 / pool, P = S * S;
  const clip = mm.clip(k, false);
  const raw = new Uint8Array(S0 * S0), f = new Float32Array(P);
  for (let t = 0; t < t0 + F; t++) {
    clip.next(raw);
    if (t >= t0) { poolFrame(raw, S0, pool, f); out.set(toU8(f), offset + (t - t0) * P); }
  }
}

/**
 * Reference stats of `count` real frames: fresh simulator clips (test split, `seed` - use one
 * distinct from the rollout's, e.g. referenceSeed(run.seed)), perClip frames taken every `gap`
 * frames from each clip, pooled to S exactly as poolFrame + toU8 do for truth.npy.
 */
export function realFrameStats(
  data: MmnistData, seed: number, count: number, S: number, net: FeatureNet, toInput: ToInput,
  opts: { perClip?: number; gap?: number } = {},
): GaussianStats {
  if (!Number.isInteger(count) || count < 2) throw new DriftlabError(`reference frames must be an integer >= 2, got ${count}`);
  const { mm, S0, pool } = simulator(data, seed, S);
  const per = opts.perClip ?? 8, gap = opts.gap ?? 5, P = S * S;
  const u8 = new Uint8Array(count * P), tmp = new Uint8Array(((per - 1) * gap + 1) * P);
  for (let i = 0, k = 0; i < count; k++) {
    clipFrames(mm, S0, pool, k, 0, (per - 1) * gap + 1, tmp, 0);
    for (let j = 0; j < per && i < count; j++, i++) u8.set(tmp.subarray(j * gap * P, (j * gap + 1) * P), i * P);
  }
  return gaussianStats(frameFeatures(u8, count, S, net, toInput), count, net.dim);
}

/** Reference stats of `count` real clips of F = clipNet.inputShape[0] frames (frames [start, start+F) of clips 0..count-1). */
export function realClipStats(
  data: MmnistData, seed: number, count: number, S: number, clipNet: FeatureNet, toInput: ToInput,
  opts: { start?: number } = {},
): GaussianStats {
  if (!Number.isInteger(count) || count < 2) throw new DriftlabError(`reference clips must be an integer >= 2, got ${count}`);
  const { mm, S0, pool } = simulator(data, seed, S);
  const F = clipNet.inputShape[0], P = S * S;
  const u8 = new Uint8Array(count * F * P);
  for (let k = 0; k < count; k++) clipFrames(mm, S0, pool, k, opts.start ?? 0, F, u8, k * F * P);
  return gaussianStats(clipFeatures(u8, count, S, clipNet, toInput), count, clipNet.dim);
}
