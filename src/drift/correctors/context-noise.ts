/**
 * `context-noise`: inference-time noise augmentation of the context (the model sees its own
 * frames at a small noise level, as it was trained to). The level defaults to the level the
 * model was trained with (training.maxContextT) and can be set with {"t": N}.
 */
import { DriftlabError } from '../../util/errors.js';
import { registerCorrector } from '../registry.js';

registerCorrector('context-noise', 'show the context to the model at its training noise level', (ctx, config) => {
  const t = config.t === undefined ? ctx.trainedContextT : Number(config.t);
  if (!Number.isInteger(t) || t < 0 || t >= ctx.schedule.T) throw new DriftlabError(`context-noise: "t" must be an integer in 0..${ctx.schedule.T - 1}, got ${config.t}`);
  return {
    name: 'context-noise',
    describe: () => ({ t, trainedContextT: ctx.trainedContextT }),
    contextT: () => t,
    reset: () => undefined,
    correct: (frame) => ({ ...frame, data: frame.data.slice() }),
  };
});
