/**
 * `renoise` (SDEdit, Meng et al. 2022): noise the new frame to a level t* and denoise it again
 * with the model, as the first target of a window whose context is the K frames before it (the
 * other target slots start as noised copies of the frame). Pulls frames back towards what the
 * model considers likely; t* trades faithfulness for correction. Config: {"t": 200, "steps": 10}.
 */
import { DriftlabError } from '../../util/errors.js';
import { continueClips } from '../../video/sample-clip.js';
import type { FrameBatch } from '../corrector.js';
import { registerCorrector } from '../registry.js';

registerCorrector('renoise', 'SDEdit: re-noise each new frame to t* and denoise it with the model', (ctx, config) => {
  const tStar = Number(config.t ?? 200), steps = Number(config.steps ?? 10);
  if (!Number.isInteger(tStar) || tStar < 1 || tStar >= ctx.schedule.T) throw new DriftlabError(`renoise: "t" must be an integer in 1..${ctx.schedule.T - 1}, got ${config.t}`);
  if (!Number.isInteger(steps) || steps < 1) throw new DriftlabError(`renoise: "steps" must be a positive integer, got ${config.steps}`);
  const { frames: F, contextFrames: K, size: S, schedule } = ctx;
  return {
    name: 'renoise',
    describe: () => ({ t: tStar, steps }),
    reset: () => undefined,
    async correct(frame: FrameBatch, history) {
      const n = frame.n, fr = S * S, N = F - K;
      const prev = history.recent(K); // oldest first; shorter at the very start is padded below
      const ctxData = new Float32Array(n * K * fr);
      for (let b = 0; b < n; b++) for (let k = 0; k < K; k++) {
        const src = prev[Math.max(0, prev.length - K + k)] ?? frame;
        ctxData.set(src.data.subarray(b * fr, (b + 1) * fr), (b * K + k) * fr);
      }
      const a = Math.sqrt(schedule.alphasCumprod[tStar]), c = Math.sqrt(1 - schedule.alphasCumprod[tStar]);
      const eps = ctx.rng.normals(n * N * fr);
      const start = new Float32Array(n * N * fr);
      for (let b = 0; b < n; b++) for (let j = 0; j < N; j++) for (let i = 0; i < fr; i++) {
        const o = (b * N + j) * fr + i;
        start[o] = a * frame.data[b * fr + i] + c * eps[o];
      }
      const out = await continueClips(ctx.net, schedule, ctx.prediction, ctxData, n, K, F, S, {
        sampler: 'ddim', steps, clipX0: true, rng: ctx.rng, startFrom: { x: start, t: tStar },
      });
      const data = new Float32Array(n * fr);
      for (let b = 0; b < n; b++) data.set(out.subarray(b * N * fr, b * N * fr + fr), b * fr);
      return { n, s: S, data };
    },
  };
});
