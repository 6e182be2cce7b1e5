/**
 * `anchor` (pathwise test-time correction, Xiang et al. 2026, Pathwise Test-Time Correction
 * for Autoregressive Long Video Generation): the initial real context is a stable reference.
 * Late in the denoising of each new window, once the layout (where the digits are) is settled,
 * the predicted x0 is pulled towards a reference of how the digits looked at the start, and the
 * corrected x0 is re-noised back onto the sampling path with the path's own noise estimate:
 *
 *   ref    = x0 with the pixel values of the initial context: rank-matched, per rollout, to
 *            the sorted values of its K initial frames (ink, stroke contrast, background level;
 *            the positions stay those of x0)
 *   x0'    = x0 + lambda (ref - x0)
 *   x_prev = sqrt(abar_prev) x0' + sqrt(1 - abar_prev) eps           (DDIM, eps of this step)
 *
 * at the first denoising step with t <= t_anchor (one step per window). lambda = 0 is the plain
 * sampler. The reference is taken at the start of the rollout and kept in the rollout's state,
 * so a resumed rollout anchors to the same initial frames. Config: {"t": 200, "strength": 0.5}.
 */
import * as tf from '@tensorflow/tfjs';
import { epsFromX0 } from '../../diffusion/samplers.js';
import { DriftlabError } from '../../util/errors.js';
import type { WindowStep } from '../corrector.js';
import { registerCorrector } from '../registry.js';

/** The values of `src` ([m] floats) at the ranks of `x` ([d] floats): a rank-matched copy. */
export function rankMatch(x: Float32Array, sortedRef: Float32Array): Float32Array {
  const d = x.length, m = sortedRef.length;
  const order = Array.from({ length: d }, (_, i) => i).sort((i, j) => x[i] - x[j] || i - j);
  const out = new Float32Array(d);
  order.forEach((i, r) => { out[i] = sortedRef[Math.min(m - 1, Math.floor(((r + 0.5) * m) / d))]; });
  return out;
}

registerCorrector('anchor', 'pathwise correction: at a late step pull x0 towards the initial context\'s appearance and re-noise', (ctx, config) => {
  const tAnchor = Number(config.t ?? Math.round(ctx.schedule.T / 5));
  const strength = Number(config.strength ?? 0.5);
  if (!Number.isInteger(tAnchor) || tAnchor < 0 || tAnchor >= ctx.schedule.T) throw new DriftlabError(`anchor: "t" must be an integer in 0..${ctx.schedule.T - 1}, got ${config.t}`);
  if (!Number.isFinite(strength) || strength < 0 || strength > 1) throw new DriftlabError(`anchor: "strength" must be a number in 0..1, got ${config.strength}`);
  const fr = ctx.size * ctx.size;
  let refs: Float32Array[] = []; // per rollout: the sorted values of its initial K frames
  let lastT = Infinity; // timestep of the window's previous step: anchor once, when t first drops to t_anchor
  return {
    name: 'anchor',
    describe: () => ({ t: tAnchor, strength }),
    reset(context, n, k) {
      refs = Array.from({ length: n }, (_, b) => context.slice(b * k * fr, (b + 1) * k * fr).sort());
    },
    correct: (frame) => ({ ...frame, data: frame.data.slice() }),
    getState: () => refs.map((r) => Buffer.from(r.buffer, r.byteOffset, r.byteLength).toString('base64')),
    setState(s) {
      if (!Array.isArray(s)) throw new DriftlabError('anchor: the rollout state holds no reference; start a new --out');
      refs = s.map((b: string) => { const u = Buffer.from(b, 'base64'); return new Float32Array(u.buffer.slice(u.byteOffset, u.byteOffset + u.byteLength)); });
    },
    async denoiseStep(step: WindowStep) {
      if (step.i === 0) lastT = Infinity;
      const fire = strength > 0 && step.t <= tAnchor && lastT > tAnchor;
      lastT = step.t;
      if (!fire) return undefined;
      if (refs.length !== step.B) throw new DriftlabError(`anchor: reset() saw ${refs.length} rollouts, the window has ${step.B}`);
      const x0c = step.clipX0 ? tf.tidy(() => tf.clipByValue(step.x0, -1, 1) as tf.Tensor4D) : step.x0.clone();
      const v = (await x0c.data()) as Float32Array;
      const N = step.F - step.K, ref = new Float32Array(v.length);
      for (let b = 0; b < step.B; b++) for (let j = 0; j < N; j++) {
        const o = (b * N + j) * fr;
        ref.set(rankMatch(v.subarray(o, o + fr), refs[b]), o);
      }
      return tf.tidy(() => {
        const x0 = tf.add(x0c, tf.mul(tf.sub(tf.tensor4d(ref, x0c.shape), x0c), strength)) as tf.Tensor4D;
        // the path's noise: the step's eps, made consistent with the clipped x0 as the sampler does
        const eps = step.clipX0 ? epsFromX0(step.x, x0c, step.abar) : step.eps.clone();
        x0c.dispose();
        return { x0, eps };
      });
    },
  };
}, { inLoop: true });
