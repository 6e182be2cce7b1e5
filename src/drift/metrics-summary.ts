/**
 * Summaries of per-frame metrics [T*N] (index t*N + n) over the N rollouts.
 *
 * summarizeAt: mean, std (population, over rollouts), min, max at chosen frame indices.
 * frameBand:   a mean curve with a lo/hi band for plots. Default band: min..max over rollouts
 *              (with the handful of rollouts of a drift study, typically 4, a standard deviation
 *              is itself noisy and mean +- std can leave the range of the data, e.g. SSIM > 1
 *              or a negative MSE; min/max shows exactly where every rollout lies). 'std' gives
 *              mean +- std instead.
 * Values above `cap` are clamped to it first (PSNR: PSNR_CAP_DB turns the +Infinity of
 * identical frames into a finite number); `capped` counts them.
 */
import { DriftlabError } from '../util/errors.js';

/** PSNR (dB) used for identical frames in summaries: above any finite 8-bit PSNR for S <= 128. */
export const PSNR_CAP_DB = 100;

export interface FrameSummary {
  frame: number;
  mean: number;
  std: number;
  min: number;
  max: number;
  /** values clamped to the cap */
  capped: number;
}

function check(metric: ArrayLike<number>, T: number, N: number): void {
  if (!Number.isInteger(T) || !Number.isInteger(N) || T < 0 || N < 1) throw new DriftlabError(`summaries need T >= 0 frames and N >= 1 rollouts, got T=${T}, N=${N}`);
  if (metric.length < T * N) throw new DriftlabError(`metric holds ${metric.length} values, fewer than T*N = ${T * N}`);
}

function stats(metric: ArrayLike<number>, N: number, t: number, cap: number): FrameSummary {
  let s = 0, lo = Infinity, hi = -Infinity, capped = 0;
  for (let n = 0; n < N; n++) {
    let v = metric[t * N + n];
    if (v > cap) { v = cap; capped++; }
    s += v; lo = Math.min(lo, v); hi = Math.max(hi, v);
  }
  const mean = s / N;
  let q = 0;
  for (let n = 0; n < N; n++) q += (Math.min(metric[t * N + n], cap) - mean) ** 2;
  return { frame: t, mean, std: Math.sqrt(q / N), min: lo, max: hi, capped };
}

/** Statistics over rollouts at each requested frame index (frames outside 0..T-1 are an error). */
export function summarizeAt(metric: ArrayLike<number>, T: number, N: number, frames: number[], opts: { cap?: number } = {}): FrameSummary[] {
  check(metric, T, N);
  const cap = opts.cap ?? Infinity;
  return frames.map((t) => {
    if (!Number.isInteger(t) || t < 0 || t >= T) throw new DriftlabError(`frame ${t} is outside the ${T} scored frames`);
    return stats(metric, N, t, cap);
  });
}

export interface Band {
  mean: number[];
  lo: number[];
  hi: number[];
  kind: 'minmax' | 'std';
}

/** Mean and a lo/hi band per frame index (default min/max over rollouts; see the module note). */
export function frameBand(metric: ArrayLike<number>, T: number, N: number, opts: { kind?: 'minmax' | 'std'; cap?: number } = {}): Band {
  check(metric, T, N);
  const kind = opts.kind ?? 'minmax', cap = opts.cap ?? Infinity;
  const b: Band = { mean: [], lo: [], hi: [], kind };
  for (let t = 0; t < T; t++) {
    const s = stats(metric, N, t, cap);
    b.mean.push(s.mean);
    b.lo.push(kind === 'std' ? s.mean - s.std : s.min);
    b.hi.push(kind === 'std' ? s.mean + s.std : s.max);
  }
  return b;
}

/** summarizeAt for every per-frame metric, PSNR capped at PSNR_CAP_DB. */
export function summarizeMetrics(
  m: { T: number; N: number; mse: ArrayLike<number>; psnr: ArrayLike<number>; ssim: ArrayLike<number>; traj: ArrayLike<number> },
  frames: number[],
): Record<'mse' | 'psnr' | 'ssim' | 'traj', FrameSummary[]> {
  return {
    mse: summarizeAt(m.mse, m.T, m.N, frames),
    psnr: summarizeAt(m.psnr, m.T, m.N, frames, { cap: PSNR_CAP_DB }),
    ssim: summarizeAt(m.ssim, m.T, m.N, frames),
    traj: summarizeAt(m.traj, m.T, m.N, frames),
  };
}

/** Default trajectory-error threshold (canvas px) of the tracking horizon. */
export const TRACK_THRESHOLD_PX = 8;

/**
 * Tracking horizon: the first generated frame k (1-based; frame index K + k - 1 of traj [T*N])
 * at which the MEAN trajectory error over the N rollouts exceeds thresholdPx; null when it
 * stays at or below it for all H generated frames (report as "> H"). Non-finite errors count as
 * lost tracking.
 */
export function trackingHorizon(traj: ArrayLike<number>, K: number, N: number, H: number, thresholdPx = TRACK_THRESHOLD_PX): number | null {
  if (!(thresholdPx > 0)) throw new DriftlabError(`the tracking threshold must be a positive number of pixels, got ${thresholdPx}`);
  check(traj, K + H, N);
  for (let k = 1; k <= H; k++) {
    let s = 0;
    for (let n = 0; n < N; n++) s += traj[(K + k - 1) * N + n];
    if (!(s / N <= thresholdPx)) return k;
  }
  return null;
}

/** "12" or "> 100" */
export const formatHorizon = (h: number | null, H: number): string => (h === null ? `> ${H}` : String(h));
