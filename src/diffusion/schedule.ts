/**
 * Noise schedules in float64 (Ho et al. 2020; Nichol & Dhariwal 2021).
 *
 *   q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I),   abar_t = prod_{s<=t} (1 - beta_s)
 *
 * Index t runs 0..T-1 as in diffusers (t = 0 is the first, least noisy step).
 */
import { DriftlabError } from '../util/errors.js';

export type ScheduleKind = 'linear' | 'cosine';
export const SCHEDULE_KINDS: ScheduleKind[] = ['linear', 'cosine'];

export interface ScheduleConfig {
  kind: ScheduleKind;
  timesteps: number;
  betaStart: number;
  betaEnd: number;
}

export const DEFAULT_SCHEDULE: ScheduleConfig = { kind: 'linear', timesteps: 1000, betaStart: 1e-4, betaEnd: 0.02 };

export interface Schedule {
  config: ScheduleConfig;
  T: number;
  betas: Float64Array;
  alphas: Float64Array;
  alphasCumprod: Float64Array;
  /** abar_{t-1}, with abar_{-1} = 1 */
  alphasCumprodPrev: Float64Array;
  sqrtAlphasCumprod: Float64Array;
  sqrtOneMinusAlphasCumprod: Float64Array;
  /** beta~_t = beta_t (1 - abar_{t-1}) / (1 - abar_t): the true posterior variance ("fixed_small") */
  posteriorVarianceSmall: Float64Array;
  /** beta_t ("fixed_large") */
  posteriorVarianceLarge: Float64Array;
  /** SNR_t = abar_t / (1 - abar_t) */
  snr: Float64Array;
}

/** Nichol & Dhariwal's abar(t) = cos^2(((t + s) / (1 + s)) pi/2), s = 0.008. */
function cosineAlphaBar(u: number, s = 0.008): number {
  const c = Math.cos(((u + s) / (1 + s)) * (Math.PI / 2));
  return c * c;
}

export function validateScheduleConfig(c: ScheduleConfig): void {
  if (!SCHEDULE_KINDS.includes(c.kind)) {
    throw new DriftlabError(`unknown schedule '${c.kind}'; choose one of ${SCHEDULE_KINDS.join(', ')}`);
  }
  if (!Number.isInteger(c.timesteps) || c.timesteps < 1) {
    throw new DriftlabError(`--timesteps must be a positive integer, got ${c.timesteps}`);
  }
  if (c.kind === 'linear') {
    if (!(c.betaStart > 0 && c.betaEnd < 1 && c.betaStart <= c.betaEnd)) {
      throw new DriftlabError(`beta range must satisfy 0 < beta-start <= beta-end < 1, got ${c.betaStart}..${c.betaEnd}`);
    }
  }
}

export function makeSchedule(partial: Partial<ScheduleConfig> = {}): Schedule {
  const config: ScheduleConfig = { ...DEFAULT_SCHEDULE, ...partial };
  validateScheduleConfig(config);
  const T = config.timesteps;
  const betas = new Float64Array(T);
  if (config.kind === 'linear') {
    for (let i = 0; i < T; i++) betas[i] = T === 1 ? config.betaStart : config.betaStart + ((config.betaEnd - config.betaStart) * i) / (T - 1);
  } else {
    // diffusers' squaredcos_cap_v2: beta_i = min(1 - abar((i+1)/T) / abar(i/T), 0.999)
    for (let i = 0; i < T; i++) betas[i] = Math.min(1 - cosineAlphaBar((i + 1) / T) / cosineAlphaBar(i / T), 0.999);
  }
  const alphas = new Float64Array(T);
  const alphasCumprod = new Float64Array(T);
  const alphasCumprodPrev = new Float64Array(T);
  const sqrtAlphasCumprod = new Float64Array(T);
  const sqrtOneMinusAlphasCumprod = new Float64Array(T);
  const posteriorVarianceSmall = new Float64Array(T);
  const posteriorVarianceLarge = new Float64Array(T);
  const snr = new Float64Array(T);
  let prod = 1;
  for (let i = 0; i < T; i++) {
    alphas[i] = 1 - betas[i];
    alphasCumprodPrev[i] = prod;
    prod *= alphas[i];
    alphasCumprod[i] = prod;
    sqrtAlphasCumprod[i] = Math.sqrt(prod);
    sqrtOneMinusAlphasCumprod[i] = Math.sqrt(1 - prod);
    posteriorVarianceSmall[i] = (betas[i] * (1 - alphasCumprodPrev[i])) / (1 - prod);
    posteriorVarianceLarge[i] = betas[i];
    snr[i] = prod / (1 - prod);
  }
  return {
    config, T, betas, alphas, alphasCumprod, alphasCumprodPrev, sqrtAlphasCumprod,
    sqrtOneMinusAlphasCumprod, posteriorVarianceSmall, posteriorVarianceLarge, snr,
  };
}

/**
 * x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, on flat float32 arrays.
 * x0, eps: [B, D] flattened; t: [B] integer timesteps.
 */
export function addNoise(s: Schedule, x0: Float32Array, eps: Float32Array, t: ArrayLike<number>): Float32Array {
  const B = t.length;
  const D = x0.length / B;
  const out = new Float32Array(x0.length);
  for (let b = 0; b < B; b++) {
    const a = s.sqrtAlphasCumprod[t[b]];
    const c = s.sqrtOneMinusAlphasCumprod[t[b]];
    for (let i = b * D; i < (b + 1) * D; i++) out[i] = a * x0[i] + c * eps[i];
  }
  return out;
}
