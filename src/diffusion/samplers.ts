/**
 * Samplers as short functions with a per-step callback (k-diffusion style).
 *
 * A Denoiser maps (x_t [B,H,W,C], timestep t, labels) to the raw network output; the prediction
 * type says whether that is epsilon, v or x0. Noise is drawn by driftlab's Rng on the host, so
 * the same seed gives the same samples on every backend and engine.
 *
 * DDPM (Ho et al. 2020, eq. 7), with a strided subset of timesteps as in diffusers:
 *   abar_prev = abar[t_prev] (1 at the end), beta' = 1 - abar_t / abar_prev
 *   mean = sqrt(abar_prev) beta' / (1 - abar_t) x0 + sqrt(1 - beta') (1 - abar_prev) / (1 - abar_t) x_t
 *   var  = (1 - abar_prev) / (1 - abar_t) beta'   (fixed_small)   or   beta'   (fixed_large)
 * DDIM (Song et al. 2021, eq. 12):
 *   sigma = eta sqrt((1 - abar_prev) / (1 - abar_t)) sqrt(1 - abar_t / abar_prev)
 *   x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z
 */
import * as tf from '@tensorflow/tfjs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { Prediction } from './objective.js';
import { Schedule } from './schedule.js';

/**
 * Network output for x_t at timestep t: a new tensor the caller owns (never x itself). Engines
 * that run outside tfjs (onnxruntime) answer asynchronously.
 */
/**
 * The network as samplers see it: x [N,H,W,C] and one timestep for all rows, or one per row
 * (video: context frames clean, targets noised) -> raw output [N,H,W,Cout].
 */
export type Denoiser = (x: tf.Tensor4D, t: number | Float32Array, labels?: Int32Array) => tf.Tensor4D | Promise<tf.Tensor4D>;
export type SamplerName = 'ddpm' | 'ddim';
export const SAMPLERS: SamplerName[] = ['ddpm', 'ddim'];
export type Spacing = 'leading' | 'trailing';
export type VarianceType = 'fixed_small' | 'fixed_large';

export interface StepInfo {
  /** index of this step, 0-based */
  i: number;
  /** number of steps */
  n: number;
  t: number;
  /** x_t before this step */
  x: tf.Tensor4D;
  predX0: tf.Tensor4D;
}

export interface SampleOptions {
  sampler: SamplerName;
  steps: number;
  /** DDIM eta (0 = deterministic) */
  eta?: number;
  /** classifier-free guidance scale w: out = out_null + w (out_cond - out_null); 1 = no guidance */
  guidance?: number;
  /** class labels [B] for conditional models */
  labels?: Int32Array;
  /** null-class index (= numClasses) used for guidance */
  nullLabel?: number;
  clipX0?: boolean;
  variance?: VarianceType;
  spacing?: Spacing;
  rng: Rng;
  /** called before each step; tensors are valid only during the call */
  callback?: (info: StepInfo) => void;
}

/** Timesteps to visit, from noisiest to cleanest. */
export function samplingTimesteps(T: number, steps: number, spacing: Spacing = 'trailing'): number[] {
  if (!Number.isInteger(steps) || steps < 1) throw new DriftlabError(`--steps must be a positive integer, got ${steps}`);
  if (steps > T) throw new DriftlabError(`--steps ${steps} exceeds the ${T} diffusion timesteps of this model`);
  const ts: number[] = [];
  if (spacing === 'leading') {
    const ratio = Math.floor(T / steps);
    for (let i = steps - 1; i >= 0; i--) ts.push(i * ratio);
  } else {
    for (let i = 0; i < steps; i++) ts.push(Math.round(T - (i * T) / steps) - 1);
  }
  return ts;
}

/** (x0, eps) estimates from a network output at timestep t. */
export function predictX0Eps(pred: Prediction, out: tf.Tensor4D, x: tf.Tensor4D, abar: number): { x0: tf.Tensor4D; eps: tf.Tensor4D } {
  const a = Math.sqrt(abar), c = Math.sqrt(1 - abar);
  if (pred === 'epsilon') return { eps: out, x0: tf.div(tf.sub(x, tf.mul(out, c)), a) };
  if (pred === 'x0') return { x0: out, eps: tf.div(tf.sub(x, tf.mul(out, a)), c) };
  return { x0: tf.sub(tf.mul(x, a), tf.mul(out, c)), eps: tf.add(tf.mul(x, c), tf.mul(out, a)) };
}

/** x0 = a x_t + b out at abar, for each prediction type (predictX0Eps is linear in x_t and the output). */
export function x0Coefficients(pred: Prediction, abar: number): { a: number; b: number } {
  const a = Math.sqrt(abar), c = Math.sqrt(1 - abar);
  if (pred === 'epsilon') return { a: 1 / a, b: -c / a };
  if (pred === 'x0') return { a: 0, b: 1 };
  return { a, b: -c };
}

/**
 * An estimate pair for x_t at timestep t: the predicted clean sample and the noise. In-loop
 * correctors (src/drift/corrector.ts) may replace either before the update is taken.
 */
export interface Estimates {
  x0: tf.Tensor4D;
  eps: tf.Tensor4D;
}

/** eps consistent with x0 at x_t: (x_t - sqrt(abar) x0) / sqrt(1 - abar). */
export function epsFromX0(x: tf.Tensor4D, x0: tf.Tensor4D, abar: number): tf.Tensor4D {
  return tf.div(tf.sub(x, tf.mul(x0, Math.sqrt(abar))), Math.sqrt(1 - abar));
}

/** x0 consistent with eps at x_t: (x_t - sqrt(1 - abar) eps) / sqrt(abar). */
export function x0FromEps(x: tf.Tensor4D, eps: tf.Tensor4D, abar: number): tf.Tensor4D {
  return tf.div(tf.sub(x, tf.mul(eps, Math.sqrt(1 - abar))), Math.sqrt(abar));
}

/**
 * The estimates a step uses: x0 clipped to [-1, 1] when asked, and then (unless `keepEps`, when
 * a corrector supplied its own eps) eps made consistent with the clipped x0.
 */
export function finishEstimates(e: Estimates, x: tf.Tensor4D, abar: number, clipX0: boolean | undefined, keepEps = false): Estimates {
  if (!clipX0) return e;
  const x0 = tf.clipByValue(e.x0, -1, 1) as tf.Tensor4D;
  return { x0, eps: keepEps ? e.eps : epsFromX0(x, x0, abar) };
}

/** One DDPM ancestral step t -> tPrev (tPrev = -1 at the end). noise: [B,H,W,C] or null at the end. */
export function ddpmStep(
  s: Schedule, pred: Prediction, out: tf.Tensor4D, x: tf.Tensor4D, t: number, tPrev: number,
  noise: tf.Tensor4D | null, opts: { clipX0?: boolean; variance?: VarianceType } = {},
): { prev: tf.Tensor4D; predX0: tf.Tensor4D } {
  const e = predictX0Eps(pred, out, x, s.alphasCumprod[t]);
  const x0 = opts.clipX0 ? tf.clipByValue(e.x0, -1, 1) as tf.Tensor4D : e.x0;
  return ddpmUpdate(s, x0, x, t, tPrev, noise, opts.variance);
}

/** The DDPM posterior step from a finished x0 estimate (eps does not enter it). */
export function ddpmUpdate(
  s: Schedule, x0: tf.Tensor4D, x: tf.Tensor4D, t: number, tPrev: number, noise: tf.Tensor4D | null, variance?: VarianceType,
): { prev: tf.Tensor4D; predX0: tf.Tensor4D } {
  const abar = s.alphasCumprod[t];
  const abarPrev = tPrev >= 0 ? s.alphasCumprod[tPrev] : 1;
  const betaP = 1 - abar / abarPrev;
  const c0 = (Math.sqrt(abarPrev) * betaP) / (1 - abar);
  const ct = (Math.sqrt(1 - betaP) * (1 - abarPrev)) / (1 - abar);
  let prev = tf.add(tf.mul(x0, c0), tf.mul(x, ct)) as tf.Tensor4D;
  if (tPrev >= 0 && noise) {
    const v = variance === 'fixed_large' ? betaP : Math.max(((1 - abarPrev) / (1 - abar)) * betaP, 1e-20);
    prev = tf.add(prev, tf.mul(noise, Math.sqrt(v)));
  }
  return { prev, predX0: x0 };
}

/** One DDIM step t -> tPrev. noise may be null when eta = 0. */
export function ddimStep(
  s: Schedule, pred: Prediction, out: tf.Tensor4D, x: tf.Tensor4D, t: number, tPrev: number,
  eta: number, noise: tf.Tensor4D | null, opts: { clipX0?: boolean } = {},
): { prev: tf.Tensor4D; predX0: tf.Tensor4D } {
  const abar = s.alphasCumprod[t];
  const e = finishEstimates(predictX0Eps(pred, out, x, abar), x, abar, opts.clipX0);
  return ddimUpdate(s, e, t, tPrev, eta, noise);
}

/** The DDIM update from finished estimates: x_prev = sqrt(abar_prev) x0 + dir eps + sigma z. */
export function ddimUpdate(
  s: Schedule, e: Estimates, t: number, tPrev: number, eta: number, noise: tf.Tensor4D | null,
): { prev: tf.Tensor4D; predX0: tf.Tensor4D } {
  const abar = s.alphasCumprod[t];
  const abarPrev = tPrev >= 0 ? s.alphasCumprod[tPrev] : 1;
  const sigma = eta * Math.sqrt((1 - abarPrev) / (1 - abar)) * Math.sqrt(1 - abar / abarPrev);
  const dirCoef = Math.sqrt(Math.max(1 - abarPrev - sigma * sigma, 0));
  let prev = tf.add(tf.mul(e.x0, Math.sqrt(abarPrev)), tf.mul(e.eps, dirCoef)) as tf.Tensor4D;
  if (sigma > 0 && noise) prev = tf.add(prev, tf.mul(noise, sigma));
  return { prev, predX0: e.x0 };
}

/** Network output with classifier-free guidance (batch doubled: conditional + null labels). */
export async function guidedOutput(net: Denoiser, x: tf.Tensor4D, t: number, labels: Int32Array | undefined, w: number, nullLabel: number): Promise<tf.Tensor4D> {
  if (!labels || w === 1) return net(x, t, labels);
  const B = x.shape[0];
  const lab = new Int32Array(2 * B);
  lab.set(labels);
  lab.fill(nullLabel, B);
  const xx = tf.concat([x, x], 0) as tf.Tensor4D;
  let both: tf.Tensor4D;
  try {
    both = await net(xx, t, lab);
  } finally {
    xx.dispose();
  }
  const out = tf.tidy(() => {
    const [cond, uncond] = tf.split(both, 2, 0) as [tf.Tensor4D, tf.Tensor4D];
    return tf.add(uncond, tf.mul(tf.sub(cond, uncond), w)) as tf.Tensor4D;
  });
  both.dispose();
  return out;
}

/**
 * Run a full reverse chain from pure noise. Returns x_0 estimates in model space ([-1,1]).
 * Async because the network may be (onnxruntime); the steps themselves are pure tfjs. Each step
 * also yields to the event loop, so a server stays responsive while a tfjs chain runs.
 */
export async function sample(net: Denoiser, s: Schedule, pred: Prediction, shape: [number, number, number, number], o: SampleOptions): Promise<tf.Tensor4D> {
  if (!SAMPLERS.includes(o.sampler)) throw new DriftlabError(`unknown sampler '${o.sampler}'; choose ddpm or ddim`);
  const ts = samplingTimesteps(s.T, o.steps, o.spacing ?? (o.steps === s.T ? 'leading' : 'trailing'));
  const size = shape.reduce((a, b) => a * b, 1);
  const eta = o.eta ?? 0;
  const w = o.guidance ?? 1;
  let x = tf.tensor4d(o.rng.normals(size), shape);
  try {
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i], tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
      const needNoise = tPrev >= 0 && (o.sampler === 'ddpm' || eta > 0);
      const noiseData = needNoise ? o.rng.normals(size) : null;
      const out = await guidedOutput(net, x, t, o.labels, w, o.nullLabel ?? 0);
      const xt = x;
      let next: tf.Tensor4D;
      try {
        next = tf.tidy(() => {
          const noise = noiseData ? tf.tensor4d(noiseData, shape) : null;
          const r = o.sampler === 'ddpm'
            ? ddpmStep(s, pred, out, xt, t, tPrev, noise, { clipX0: o.clipX0, variance: o.variance })
            : ddimStep(s, pred, out, xt, t, tPrev, eta, noise, { clipX0: o.clipX0 });
          o.callback?.({ i, n: ts.length, t, x: xt, predX0: r.predX0 });
          return r.prev;
        });
      } finally {
        out.dispose();
      }
      x.dispose();
      x = next;
      await nextTurn();
    }
  } catch (e) {
    x.dispose();
    throw e;
  }
  return x;
}

/**
 * diffusers' scheduler.step(), for callers that write their own loop: the network output at
 * x_t -> { prev: x_{tPrev}, predX0 }. DDIM by default (eta 0 needs no noise); DDPM draws its
 * noise from `noise` ([B,H,W,C], null at the last step).
 */
export function step(
  s: Schedule, pred: Prediction, out: tf.Tensor4D, x: tf.Tensor4D, t: number, tPrev: number,
  o: { sampler?: SamplerName; eta?: number; noise?: tf.Tensor4D | null; clipX0?: boolean; variance?: VarianceType } = {},
): { prev: tf.Tensor4D; predX0: tf.Tensor4D } {
  const sampler = o.sampler ?? 'ddim';
  if (!SAMPLERS.includes(sampler)) throw new DriftlabError(`unknown sampler '${sampler}'; choose ${SAMPLERS.join(' or ')}`);
  return tf.tidy(() => sampler === 'ddpm'
    ? ddpmStep(s, pred, out, x, t, tPrev, o.noise ?? null, { clipX0: o.clipX0, variance: o.variance })
    : ddimStep(s, pred, out, x, t, tPrev, o.eta ?? 0, o.noise ?? null, { clipX0: o.clipX0 }));
}
