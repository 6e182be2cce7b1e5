/**
 * `history-guidance` (Song et al. 2025, History-Guided Video Diffusion): classifier-free
 * guidance with the history as the condition. At every denoising step of a new window the
 * model is asked twice, with the real context and with "no context" (the K context frames
 * replaced by blank frames, value -1, which is what context dropout in training shows it):
 *
 *   eps = eps(no context) + w (eps(context) - eps(no context))
 *       = eps(context) + (w - 1) (eps(context) - eps(no context))     (the form computed: exact at w = 1)
 *
 * w = 1 is the unguided sampler (and costs nothing: the second call is skipped); w > 1 pushes
 * the targets towards what the context explains. The blank frames are shown at the same noise
 * level, with the same noise, as the real context. Config: {"w": 1.5}. A model whose training record
 * says it never saw a blank context (training.contextDropout 0) is refused unless {"force": true}.
 */
import * as tf from '@tensorflow/tfjs';
import { DriftlabError } from '../../util/errors.js';
import type { WindowStep } from '../corrector.js';
import { registerCorrector } from '../registry.js';

/** value of a blank (dropped-out) context frame in model space */
export const BLANK = -1;

registerCorrector('history-guidance', 'guidance by the history: eps(none) + w (eps(context) - eps(none)) at every denoising step', (ctx, config) => {
  const w = Number(config.w ?? 1.5);
  if (!Number.isFinite(w) || w < 0) throw new DriftlabError(`history-guidance: "w" must be a non-negative number, got ${config.w}`);
  // eps(no context) is only a model of p(x | no history) if training showed blank contexts
  if (w !== 1 && ctx.trainedContextDropout === 0 && config.force !== true) {
    throw new DriftlabError('history-guidance: this model was trained without context dropout (training.contextDropout 0), so its "no context" prediction is untrained; train with --context-dropout 0.1, or set {"force": true}');
  }
  return {
    name: 'history-guidance',
    describe: () => ({ w }),
    reset: () => undefined,
    correct: (frame) => ({ ...frame, data: frame.data.slice() }),
    async denoiseStep(step: WindowStep) {
      if (w === 1 || step.K === 0 || !step.contextSeen) return undefined;
      const seen = step.contextSeen;
      const a = Math.sqrt(ctx.schedule.alphasCumprod[step.contextT]);
      // blank frames with the context's own noise: seen - a * context + a * BLANK
      const blank = tf.tidy(() => {
        const clean = tf.tensor5d(step.context, seen.shape);
        return tf.add(tf.sub(seen, tf.mul(clean, a)), a * BLANK) as tf.Tensor5D;
      });
      let none;
      try {
        none = await step.denoise(blank, step.x, step.t);
      } finally {
        blank.dispose();
      }
      const eps = tf.tidy(() => tf.add(step.eps, tf.mul(tf.sub(step.eps, none.eps), w - 1)) as tf.Tensor4D);
      none.x0.dispose();
      none.eps.dispose();
      return { eps };
    },
  };
}, { inLoop: true });
