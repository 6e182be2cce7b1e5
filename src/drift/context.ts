/** Building the CorrectorContext of a loaded video pipeline. */
import * as tf from '@tensorflow/tfjs';
import type { Pipeline } from '../diffusion/pipeline.js';
import { DriftlabError } from '../util/errors.js';
import type { Rng } from '../util/rng.js';
import { modelId } from '../video/rollout.js';
import type { CorrectorContext } from './corrector.js';

export function correctorContext(p: Pipeline, rng: Rng, contextFrames?: number): CorrectorContext {
  const v = p.config.model.video;
  if (!v) throw new DriftlabError('drift correctors work on video checkpoints (driftlab train-video)');
  return {
    net: p.net, schedule: p.schedule, prediction: p.config.objective.prediction, frames: v.frames,
    contextFrames: contextFrames ?? v.contextFrames, size: p.config.model.sampleSize,
    trainedContextT: Number((p.config.training as any)?.maxContextT ?? 0), rng, modelId: modelId(p),
    trainedContextDropout: p.config.training ? Number((p.config.training as any).contextDropout ?? 0) : undefined,
    trainedJoint: p.config.training ? Number((p.config.training as any).joint ?? 0) : undefined,
    window: {
      conditioning: v.conditioning ?? 'attention', causal: !!v.causal,
      temporalLayers: v.temporal.filter(Boolean).length + (v.temporalMid ? 1 : 0),
    },
    differentiable: (window, t) => p.model.forward(window, tf.tensor1d(t)),
  };
}
