/**
 * Training objectives: what the network predicts and how timesteps are weighted.
 *
 *   epsilon: target eps                      (Ho et al. 2020)
 *   v:       target v = sqrt(abar) eps - sqrt(1-abar) x0   (Salimans & Ho 2022)
 *   x0:      target x0
 * min-SNR-gamma (Hang et al. 2023) weights the per-sample MSE so that the effective x0-loss
 * weight is min(SNR, gamma): epsilon -> min(SNR,g)/SNR, v -> min(SNR,g)/(SNR+1), x0 -> min(SNR,g).
 */
import { DriftlabError } from '../util/errors.js';
import { Schedule } from './schedule.js';

export type Prediction = 'epsilon' | 'v' | 'x0';
export const PREDICTIONS: Prediction[] = ['epsilon', 'v', 'x0'];
export type Weighting = 'uniform' | 'min-snr';

export interface ObjectiveConfig {
  prediction: Prediction;
  weighting: Weighting;
  /** gamma of min-SNR-gamma */
  snrGamma: number;
}

export const DEFAULT_OBJECTIVE: ObjectiveConfig = { prediction: 'epsilon', weighting: 'uniform', snrGamma: 5 };

export function validateObjective(o: ObjectiveConfig): void {
  if (!PREDICTIONS.includes(o.prediction)) throw new DriftlabError(`unknown prediction '${o.prediction}'; choose epsilon, v or x0`);
  if (o.weighting !== 'uniform' && o.weighting !== 'min-snr') throw new DriftlabError(`unknown loss weighting '${o.weighting}'; choose uniform or min-snr`);
  if (!(o.snrGamma > 0)) throw new DriftlabError(`snr gamma must be > 0, got ${o.snrGamma}`);
}

/** Regression target for one batch (flat [B, D]). */
export function makeTarget(o: ObjectiveConfig, s: Schedule, x0: Float32Array, eps: Float32Array, t: ArrayLike<number>): Float32Array {
  if (o.prediction === 'epsilon') return eps;
  if (o.prediction === 'x0') return x0;
  const B = t.length, D = x0.length / B;
  const out = new Float32Array(x0.length);
  for (let b = 0; b < B; b++) {
    const a = s.sqrtAlphasCumprod[t[b]], c = s.sqrtOneMinusAlphasCumprod[t[b]];
    for (let i = b * D; i < (b + 1) * D; i++) out[i] = a * eps[i] - c * x0[i];
  }
  return out;
}

/** Per-sample loss weights [B]. */
export function lossWeights(o: ObjectiveConfig, s: Schedule, t: ArrayLike<number>): Float32Array {
  const w = new Float32Array(t.length);
  for (let b = 0; b < t.length; b++) {
    if (o.weighting === 'uniform') { w[b] = 1; continue; }
    const snr = s.snr[t[b]];
    const m = Math.min(snr, o.snrGamma);
    w[b] = o.prediction === 'epsilon' ? m / snr : o.prediction === 'v' ? m / (snr + 1) : m;
  }
  return w;
}

/**
 * Convert a network output at timestep t into (x0, eps) estimates (float64 scalars per sample
 * applied on flat arrays). Used by the samplers in tensor form; this is the reference.
 */
export function outputToX0Eps(pred: Prediction, out: number, xt: number, abar: number): { x0: number; eps: number } {
  const a = Math.sqrt(abar), c = Math.sqrt(1 - abar);
  if (pred === 'epsilon') return { eps: out, x0: (xt - c * out) / a };
  if (pred === 'x0') return { x0: out, eps: (xt - a * out) / c };
  // v = a eps - c x0, x_t = a x0 + c eps  =>  x0 = a x_t - c v, eps = c x_t + a v
  return { x0: a * xt - c * out, eps: c * xt + a * out };
}
