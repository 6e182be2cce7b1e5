/** Building the CorrectorContext of a loaded video pipeline. */
import * as tf from '@tensorflow/tfjs';
import type { Pipeline } from '../diffusion/pipeline.js';
import { anchorFramesOf } from '../diffusion/config.js';
import type { Denoiser } from '../diffusion/samplers.js';
import { DriftlabError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { modelId } from '../video/rollout.js';
import type { CorrectorContext } from './corrector.js';

/**
 * A model with A anchor slots (VideoConfig.anchorFrames) seen as a plain one of F - A frames:
 * each window's first A frames are shown again as its anchors, which is what a rollout does in
 * its first window (the anchors are the given context's first frames). Correctors that run the
 * model themselves (kalman and controller fits, renoise) use it through this view; later in a
 * rollout their anchors are then the window's oldest frames, not the rollout's first ones.
 */
export function plainView(net: Denoiser, A: number, F: number): Denoiser {
  if (A === 0) return net;
  return async (x, t, labels) => {
    const B = x.shape[0] / (F - A);
    const wide = tf.tidy(() => showAnchors(x, A, F));
    let out: tf.Tensor4D;
    try { out = await net(wide, anchorTimes(t, B, A, F), labels); } finally { wide.dispose(); }
    const y = tf.tidy(() => dropAnchors(out, A, F));
    out.dispose();
    return y;
  };
}

/** Plain windows [B*(F-A), ...] as anchored ones [B*F, ...]: each window's first A frames again in front (no tidy: differentiable). */
function showAnchors(x: tf.Tensor4D, A: number, F: number): tf.Tensor4D {
  const [BF, S, W, C] = x.shape, Fp = F - A, B = BF / Fp;
  const x5 = x.reshape([B, Fp, S, W, C]);
  return tf.concat([tf.slice(x5, [0, 0, 0, 0, 0], [B, A, S, W, C]), x5], 1).reshape([B * F, S, W, C]) as tf.Tensor4D;
}

/** The anchored model's output rows [B*F, ...] back to the plain window's [B*(F-A), ...]. */
function dropAnchors(y: tf.Tensor4D, A: number, F: number): tf.Tensor4D {
  const [BF, S, W, C] = y.shape, B = BF / F;
  return tf.slice(y.reshape([B, F, S, W, C]), [0, A, 0, 0, 0], [B, F - A, S, W, C]).reshape([B * (F - A), S, W, C]) as tf.Tensor4D;
}

/** One timestep per anchored frame: an anchor takes its window's first frame's. */
function anchorTimes(t: number | Float32Array, B: number, A: number, F: number): Float32Array {
  const r = new Float32Array(B * F), Fp = F - A;
  for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) r[b * F + f] = typeof t === 'number' ? t : t[b * Fp + Math.max(0, f - A)];
  return r;
}

export function correctorContext(p: Pipeline, rng: Rng, contextFrames?: number): CorrectorContext {
  const v = p.config.model.video;
  if (!v) throw new DriftlabError('drift correctors work on video checkpoints (driftlab train-video)');
  const A = anchorFramesOf(v);
  const differentiable = (window: tf.Tensor4D, t: Float32Array) => p.model.forward(window, tf.tensor1d(t)) as tf.Tensor4D;
  return {
    net: plainView(p.net, A, v.frames), schedule: p.schedule, prediction: p.config.objective.prediction, frames: v.frames - A,
    contextFrames: contextFrames ?? v.contextFrames - A, size: p.config.model.sampleSize,
    trainedContextT: Number((p.config.training as any)?.maxContextT ?? 0), rng, modelId: modelId(p),
    trainedContextDropout: p.config.training ? Number((p.config.training as any).contextDropout ?? 0) : undefined,
    trainedJoint: p.config.training ? Number((p.config.training as any).joint ?? 0) : undefined,
    window: {
      conditioning: v.conditioning ?? 'attention', causal: !!v.causal,
      temporalLayers: v.temporal.filter(Boolean).length + (v.temporalMid ? 1 : 0),
    },
    // the plain view, differentiable: no tidy, so tf.grad runs through it
    differentiable: A === 0 ? differentiable : (window, t) => dropAnchors(differentiable(showAnchors(window, A, v.frames), anchorTimes(t, window.shape[0] / (v.frames - A), A, v.frames)), A, v.frames),
    // anchored models (concat conditioning) have no gradient a corrector uses; they keep tfjs
    inputGrad: p.inputGrad && A === 0 ? async (window, t, target, w) => {
      const fr = p.config.model.sampleSize ** 2, rows = window.length / fr;
      return (await (await p.inputGrad!(rows)).inputGrad({ xt: window, t, target, w })).grad;
    } : undefined,
  };
}
