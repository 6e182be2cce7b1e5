/**
 * Continuing clips: given K context frames, generate the next F-K frames jointly with DDPM or
 * DDIM. Every step feeds the whole window [context, x_t of the targets] with one timestep per
 * frame (context at contextT, 0 = clean; targets at t) and updates only the targets.
 *
 *   context: [B, K, S, S] in [-1, 1]  ->  targets: [B, F-K, S, S] in [-1, 1]
 *
 * An optional `onStep` hook (in-loop correctors: history guidance, reconstruction guidance,
 * anchoring) sees every step's estimates and may replace them before the update; the sampler
 * knows no concrete hook. Without one, or when it returns nothing, the step is the plain one.
 */
import * as tf from '@tensorflow/tfjs';
import { Prediction } from '../diffusion/objective.js';
import {
  Denoiser, Estimates, SamplerName, Spacing, ddimUpdate, ddpmUpdate, epsFromX0, finishEstimates, predictX0Eps, samplingTimesteps, x0FromEps,
} from '../diffusion/samplers.js';
import { Schedule } from '../diffusion/schedule.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/**
 * The DDIM eta of video rollouts unless told otherwise (drift, rollout, sample-video, studies and
 * the experiments built on them): 1, the DDPM posterior noise on the respaced steps. Measured on
 * the shipped mmnist-small over 96 rollouts at 10 steps per call (docs/EXPERIMENTS.md, "Sampler
 * noise"): trajectory error at frame 10 4.0 px against 4.9 with the deterministic eta 0, tracking
 * horizon 19 frames against 17. Images keep eta 0.
 */
export const VIDEO_ETA = 1;

/** A DDIM eta: it interpolates deterministic (0) and DDPM-like (1) steps; beyond 1 the step's noise exceeds the posterior's. */
export const isEta = (n: number): boolean => Number.isFinite(n) && n >= 0 && n <= 1;

/** --eta checked (isEta) */
export function checkEta(v: unknown): number {
  const n = Number(v);
  if (!isEta(n)) throw new DriftlabError(`--eta must be a number in [0, 1] (0: deterministic DDIM, 1: DDPM-like noise), got ${v}`);
  return n;
}

export interface ContinueOptions {
  sampler: SamplerName;
  steps: number;
  eta?: number;
  clipX0?: boolean;
  spacing?: Spacing;
  rng: Rng;
  /** noise level at which the model sees the context (0 = clean; the model's training level) */
  contextT?: number;
  /**
   * SDEdit: start from these targets [B, F-K, S, S] already noised to level t (instead of pure
   * noise at T-1); the chain then runs `steps` steps over timesteps t..0.
   */
  startFrom?: { x: Float32Array; t: number };
  /** called at every denoising step of the window (see WindowStep) */
  onStep?: WindowStepHook;
  /** the first `anchors` context frames are an anchored model's anchors (real frames): always shown clean, at level 0 */
  anchors?: number;
}

/**
 * One denoising step of a window, as an in-loop hook sees it. Tensors are valid only during the
 * call; the hook must not dispose them. Targets are folded into the batch: [B*(F-K), S, S, 1].
 */
export interface WindowStep {
  /** step index (0-based) of n; timestep t now, tPrev next (-1 at the end) */
  i: number;
  n: number;
  t: number;
  tPrev: number;
  /** abar_t of the schedule */
  abar: number;
  /** x_t of the targets */
  x: tf.Tensor4D;
  /** the model's estimates for the targets, before x0 clipping: predicted x0 and eps */
  x0: tf.Tensor4D;
  eps: tf.Tensor4D;
  /** the clean context given to the sampler, [B, K, S, S] in [-1, 1] */
  context: Float32Array;
  /** the context as the model sees it at this step (noised to contextT), [B, K, S, S, 1]; null when K = 0 */
  contextSeen: tf.Tensor5D | null;
  contextT: number;
  B: number;
  K: number;
  F: number;
  S: number;
  clipX0: boolean;
  /**
   * The model's estimates for targets x [B*(F-K), S, S, 1] at timestep t with another context
   * [B, K, S, S, 1] (shown at timestep contextT unless given): new tensors the hook owns.
   */
  denoise(context: tf.Tensor5D, x: tf.Tensor4D, t: number, contextT?: number): Promise<Estimates>;
}

/**
 * A replacement for the step's estimates: x0, eps or both (new tensors; the sampler disposes
 * them). Given x0 alone, eps follows from x_t; given eps alone, x0 does; given both, DDIM uses
 * both (DDPM's posterior step uses x0 and x_t only). x0 is still clipped when clipX0 is set.
 */
export interface StepCorrection {
  x0?: tf.Tensor4D;
  eps?: tf.Tensor4D;
}

export type WindowStepHook = (step: WindowStep) => StepCorrection | undefined | void | Promise<StepCorrection | undefined | void>;

export async function continueClips(
  net: Denoiser, s: Schedule, pred: Prediction, context: Float32Array,
  B: number, K: number, F: number, S: number, o: ContinueOptions,
): Promise<Float32Array> {
  if (!(K >= 0 && K < F)) throw new DriftlabError(`context frames must be in 0..${F - 1} for a ${F}-frame model, got ${K}`);
  if (context.length !== B * K * S * S) throw new DriftlabError(`context holds ${context.length} values, expected ${B}x${K}x${S}x${S}`);
  const span = o.startFrom ? o.startFrom.t + 1 : s.T;
  const ts = samplingTimesteps(span, Math.min(o.steps, span), o.spacing ?? (o.steps === s.T ? 'leading' : 'trailing'));
  const N = F - K, fr = S * S;
  const size = B * N * fr;
  const ctxT = o.contextT ?? 0;
  const A = o.anchors ?? 0;
  if (!(Number.isInteger(A) && A >= 0 && (A === 0 || A < K))) throw new DriftlabError(`anchors must be an integer in 0..${K - 1} (the context frames less one), got ${o.anchors}`);
  // the context as the model sees it: noised once to its level (anchors at level 0)
  const ctx = new Float32Array(context.length);
  if (K > 0) {
    const a = Math.sqrt(s.alphasCumprod[ctxT]), c = Math.sqrt(1 - s.alphasCumprod[ctxT]);
    const a0 = Math.sqrt(s.alphasCumprod[0]), c0 = Math.sqrt(1 - s.alphasCumprod[0]);
    const e = o.rng.normals(context.length);
    for (let i = 0; i < ctx.length; i++) {
      const anchor = A > 0 && Math.floor(i / (S * S)) % K < A;
      ctx[i] = (anchor ? a0 : a) * context[i] + (anchor ? c0 : c) * e[i];
    }
  }
  const ctxT5 = K > 0 ? tf.tensor5d(ctx, [B, K, S, S, 1]) : null;
  if (o.startFrom && o.startFrom.x.length !== size) throw new DriftlabError(`startFrom holds ${o.startFrom.x.length} values, expected ${size}`);
  const timeRow = (t: number, tc: number) => {
    const r = new Float32Array(B * F);
    for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) r[b * F + f] = f < A ? 0 : f < K ? tc : t;
    return r;
  };
  /** raw network output for the targets x [B*N,S,S,1] at t, beside the context c5 [B,K,S,S,1] */
  const targetsOut = async (c5: tf.Tensor5D | null, xt: tf.Tensor4D, t: number, tc: number): Promise<tf.Tensor4D> => {
    const window = tf.tidy(() => {
      const tgt = xt.reshape([B, N, S, S, 1]);
      return (c5 ? tf.concat([c5, tgt], 1) : tgt).reshape([B * F, S, S, 1]) as tf.Tensor4D;
    });
    let out: tf.Tensor4D;
    try {
      out = await net(window, timeRow(t, tc));
    } finally {
      window.dispose();
    }
    const tgtOut = tf.tidy(() => tf.slice(out.reshape([B, F, S, S, 1]), [0, K, 0, 0, 0], [B, N, S, S, 1]).reshape([B * N, S, S, 1]) as tf.Tensor4D);
    out.dispose();
    return tgtOut;
  };
  const denoise = async (c5: tf.Tensor5D, xt: tf.Tensor4D, t: number, tc = ctxT): Promise<Estimates> => {
    const out = await targetsOut(K > 0 ? c5 : null, xt, t, tc);
    const e = tf.tidy(() => {
      const r = predictX0Eps(pred, out, xt, s.alphasCumprod[t]);
      return { x0: r.x0.clone(), eps: r.eps.clone() };
    });
    out.dispose();
    return e;
  };
  let x = tf.tensor4d(o.startFrom ? o.startFrom.x : o.rng.normals(size), [B * N, S, S, 1]);
  try {
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i], tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
      const needNoise = tPrev >= 0 && (o.sampler === 'ddpm' || (o.eta ?? 0) > 0);
      const noiseData = needNoise ? o.rng.normals(size) : null;
      const abar = s.alphasCumprod[t];
      const tgtOut = await targetsOut(ctxT5, x, t, ctxT);
      let fix: StepCorrection | undefined | void;
      if (o.onStep) {
        const raw = tf.tidy(() => predictX0Eps(pred, tgtOut, x, abar));
        try {
          fix = await o.onStep({
            i, n: ts.length, t, tPrev, abar, x, x0: raw.x0, eps: raw.eps, context, contextSeen: ctxT5, contextT: ctxT,
            B, K, F, S, clipX0: !!o.clipX0, denoise,
          });
        } finally {
          for (const r of [raw.x0, raw.eps]) if (r !== tgtOut) r.dispose();
        }
      }
      const xt = x;
      const next = tf.tidy(() => {
        const noise = noiseData ? tf.tensor4d(noiseData, [B * N, S, S, 1]) : null;
        let e = predictX0Eps(pred, tgtOut, xt, abar);
        if (fix?.x0 || fix?.eps) {
          const x0 = fix.x0 ?? x0FromEps(xt, fix.eps!, abar);
          e = { x0, eps: fix.eps ?? epsFromX0(xt, x0, abar) };
        }
        const keepEps = !!(fix?.x0 && fix?.eps);
        if (o.sampler === 'ddpm') return ddpmUpdate(s, o.clipX0 ? tf.clipByValue(e.x0, -1, 1) as tf.Tensor4D : e.x0, xt, t, tPrev, noise).prev;
        return ddimUpdate(s, finishEstimates(e, xt, abar, o.clipX0, keepEps), t, tPrev, o.eta ?? 0, noise).prev;
      });
      fix?.x0?.dispose();
      fix?.eps?.dispose();
      tgtOut.dispose();
      x.dispose();
      x = next;
      await new Promise((r) => setImmediate(r));
    }
    return (await x.data()) as Float32Array;
  } finally {
    x.dispose();
    ctxT5?.dispose();
  }
}
