/**
 * Continuing clips: given K context frames, generate the next F-K frames jointly with DDPM or
 * DDIM. Every step feeds the whole window [context, x_t of the targets] with one timestep per
 * frame (context at contextT, 0 = clean; targets at t) and updates only the targets.
 *
 *   context: [B, K, S, S] in [-1, 1]  ->  targets: [B, F-K, S, S] in [-1, 1]
 */
import * as tf from '@tensorflow/tfjs';
import { Prediction } from '../diffusion/objective.js';
import { Denoiser, SamplerName, Spacing, ddimStep, ddpmStep, samplingTimesteps } from '../diffusion/samplers.js';
import { Schedule } from '../diffusion/schedule.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

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
}

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
  // the context as the model sees it: noised once to its level
  const ctx = new Float32Array(context.length);
  if (K > 0) {
    const a = Math.sqrt(s.alphasCumprod[ctxT]), c = Math.sqrt(1 - s.alphasCumprod[ctxT]);
    const e = o.rng.normals(context.length);
    for (let i = 0; i < ctx.length; i++) ctx[i] = a * context[i] + c * e[i];
  }
  const ctxT5 = K > 0 ? tf.tensor5d(ctx, [B, K, S, S, 1]) : null;
  if (o.startFrom && o.startFrom.x.length !== size) throw new DriftlabError(`startFrom holds ${o.startFrom.x.length} values, expected ${size}`);
  let x = tf.tensor4d(o.startFrom ? o.startFrom.x : o.rng.normals(size), [B * N, S, S, 1]);
  try {
    for (let i = 0; i < ts.length; i++) {
      const t = ts[i], tPrev = i + 1 < ts.length ? ts[i + 1] : -1;
      const needNoise = tPrev >= 0 && (o.sampler === 'ddpm' || (o.eta ?? 0) > 0);
      const noiseData = needNoise ? o.rng.normals(size) : null;
      const tRow = new Float32Array(B * F);
      for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) tRow[b * F + f] = f < K ? ctxT : t;
      const window = tf.tidy(() => {
        const tgt = x.reshape([B, N, S, S, 1]);
        return (ctxT5 ? tf.concat([ctxT5, tgt], 1) : tgt).reshape([B * F, S, S, 1]) as tf.Tensor4D;
      });
      let out: tf.Tensor4D;
      try {
        out = await net(window, tRow);
      } finally {
        window.dispose();
      }
      const next = tf.tidy(() => {
        const o5 = out.reshape([B, F, S, S, 1]);
        const tgtOut = tf.slice(o5, [0, K, 0, 0, 0], [B, N, S, S, 1]).reshape([B * N, S, S, 1]) as tf.Tensor4D;
        const noise = noiseData ? tf.tensor4d(noiseData, [B * N, S, S, 1]) : null;
        const r = o.sampler === 'ddpm'
          ? ddpmStep(s, pred, tgtOut, x, t, tPrev, noise, { clipX0: o.clipX0 })
          : ddimStep(s, pred, tgtOut, x, t, tPrev, o.eta ?? 0, noise, { clipX0: o.clipX0 });
        return r.prev;
      });
      out.dispose();
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
