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
  const Fp = F - A;
  const tAll = (t: number | Float32Array, B: number) => {
    const r = new Float32Array(B * F);
    for (let b = 0; b < B; b++) for (let f = 0; f < F; f++) r[b * F + f] = typeof t === 'number' ? t : t[b * Fp + Math.max(0, f - A)];
    return r;
  };
  return async (x, t, labels) => {
    const [BF, S, W, C] = x.shape, B = BF / Fp;
    const wide = tf.tidy(() => { const x5 = x.reshape([B, Fp, S, W, C]); return tf.concat([tf.slice(x5, [0, 0, 0, 0, 0], [B, A, S, W, C]), x5], 1).reshape([B * F, S, W, C]) as tf.Tensor4D; });
    let out: tf.Tensor4D;
    try { out = await net(wide, tAll(t, B), labels); } finally { wide.dispose(); }
    const y = tf.tidy(() => tf.slice(out.reshape([B, F, S, W, C]), [0, A, 0, 0, 0], [B, Fp, S, W, C]).reshape([B * Fp, S, W, C]) as tf.Tensor4D);
    out.dispose();
    return y;
  };
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
    differentiable: A === 0 ? differentiable : (window, t) => {
      // the plain view, differentiable: no tidy, so tf.grad runs through it
      const [BF, S, W, C] = window.shape, Fp = v.frames - A, B = BF / Fp;
      const x5 = window.reshape([B, Fp, S, W, C]);
      const wide = tf.concat([tf.slice(x5, [0, 0, 0, 0, 0], [B, A, S, W, C]), x5], 1).reshape([B * v.frames, S, W, C]) as tf.Tensor4D;
      const tw = new Float32Array(B * v.frames);
      for (let b = 0; b < B; b++) for (let f = 0; f < v.frames; f++) tw[b * v.frames + f] = t[b * Fp + Math.max(0, f - A)];
      return tf.slice(differentiable(wide, tw).reshape([B, v.frames, S, W, C]), [0, A, 0, 0, 0], [B, Fp, S, W, C]).reshape([B * Fp, S, W, C]) as tf.Tensor4D;
    },
  };
}
