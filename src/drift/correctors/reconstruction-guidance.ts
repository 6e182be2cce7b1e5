/**
 * `reconstruction-guidance` (Ho et al. 2022, Video Diffusion Models, sec. 3.1: conditional
 * sampling for autoregressive extension). The context x^a and the targets' x^b_t are denoised
 * jointly, with the context noised to the targets' level t (z^a_t = sqrt(abar_t) x^a +
 * sqrt(1 - abar_t) e, fresh e at every step); how well the model then reconstructs the context
 * says how consistent the targets are with it, and its gradient moves the targets:
 *
 *   x~^b_0 = x^b_0 - (w_r sqrt(abar_t) / 2) grad_{x^b_t} || x^a - x^a_0([z^a_t, x^b_t]) ||^2
 *
 * x^b_0 is the sampler's own estimate (context shown as usual); the gradient is one backward
 * pass through the denoiser per step, inside the window only: never through the rollout. On the
 * onnx engine it is one run of an input-gradient graph (CorrectorContext.inputGrad): with the
 * reconstruction linear in the output, x^a_0 = a z + b out (samplers.ts x0Coefficients),
 *   || x^a - x^a_0 ||^2 = b^2 || out - (x^a - a z^a_t) / b ||^2   on the context rows,
 * a weighted MSE against a fixed target, and the target rows' gradient is b^2 rows D times the
 * graph's (its mean over rows x D pixels). On tfjs, tf.grad (CorrectorContext.differentiable).
 * Needs non-causal temporal attention (with a causal mask, without temporal attention or with
 * concat conditioning the gradient is zero, and the corrector refuses such a model with one line). The model must also have learned to denoise its
 * context: one trained without joint windows (train-video --joint, training.joint 0) is refused
 * unless {"force": true}. Config: {"scale": 2}.
 */
import * as tf from '@tensorflow/tfjs';
import { predictX0Eps, x0Coefficients } from '../../diffusion/samplers.js';
import { DriftlabError } from '../../util/errors.js';
import type { WindowStep } from '../corrector.js';
import { registerCorrector } from '../registry.js';

registerCorrector('reconstruction-guidance', 'Ho et al.: move the targets along the gradient of the context reconstruction error', (ctx, config) => {
  const scale = Number(config.scale ?? 2);
  if (!Number.isFinite(scale) || scale < 0) throw new DriftlabError(`reconstruction-guidance: "scale" must be a non-negative number, got ${config.scale}`);
  const net = ctx.differentiable;
  // the gradient flows from the context's reconstruction to the targets only through non-causal
  // temporal attention; anywhere else it is exactly zero and the corrector would silently be 'none'
  const win = ctx.window;
  if (scale > 0 && win) {
    const why = win.conditioning === 'concat' ? 'stacks its context as input channels (concat conditioning), so it does not reconstruct the context'
      : win.causal ? 'has causal temporal attention, so the context cannot see the targets'
      : win.temporalLayers === 0 ? 'has no temporal attention, so the context cannot see the targets' : null;
    if (why) throw new DriftlabError(`reconstruction-guidance: this model ${why} and the guidance gradient is zero; use a model with non-causal temporal attention (attention conditioning), or history-guidance / anchor`);
  }
  if (scale > 0 && ctx.trainedJoint === 0 && config.force !== true) {
    throw new DriftlabError('reconstruction-guidance: this model was trained without joint windows (training.joint 0), so its reconstruction of a noised context is untrained; train with --joint 0.5, or set {"force": true}');
  }
  /** the same shift from the onnx input-gradient graph (see the header) */
  const onnxShift = async (step: WindowStep): Promise<tf.Tensor4D> => {
    const { B, K, F, S, t, abar } = step, N = F - K, fr = S * S, rows = B * F;
    const e = ctx.rng.normals(step.context.length);
    const xb = (await step.x.data()) as Float32Array;
    const { a, b } = x0Coefficients(ctx.prediction, abar);
    const win = new Float32Array(rows * fr), target = new Float32Array(rows * fr), w = new Float32Array(rows);
    const sa = Math.sqrt(abar), sc = Math.sqrt(1 - abar);
    for (let r = 0; r < B; r++) {
      for (let k = 0; k < K; k++) {
        const src = (r * K + k) * fr, dst = (r * F + k) * fr;
        for (let i = 0; i < fr; i++) {
          const z = sa * step.context[src + i] + sc * e[src + i];
          win[dst + i] = z;
          target[dst + i] = (step.context[src + i] - a * z) / b;
        }
        w[r * F + k] = 1;
      }
      win.set(xb.subarray(r * N * fr, (r + 1) * N * fr), (r * F + K) * fr);
    }
    const g = await ctx.inputGrad!(win, new Float32Array(rows).fill(t), target, w);
    const k = ((scale * sa) / 2) * b * b * rows * fr, shift = new Float32Array(B * N * fr);
    for (let r = 0; r < B; r++) for (let j = 0; j < N * fr; j++) shift[r * N * fr + j] = k * g[(r * F + K) * fr + j];
    return tf.tidy(() => tf.sub(step.x0, tf.tensor4d(shift, step.x0.shape)) as tf.Tensor4D);
  };
  return {
    name: 'reconstruction-guidance',
    describe: () => ({ scale }),
    reset: () => undefined,
    correct: (frame) => ({ ...frame, data: frame.data.slice() }),
    async denoiseStep(step: WindowStep) {
      if (scale === 0 || step.K === 0) return undefined;
      if (ctx.inputGrad) return { x0: await onnxShift(step) };
      if (!net) throw new DriftlabError('reconstruction-guidance needs the tfjs model (CorrectorContext.differentiable); build the context with correctorContext()');
      const { B, K, F, S, t, abar } = step, N = F - K;
      const e = ctx.rng.normals(step.context.length);
      const tRow = new Float32Array(B * F).fill(t);
      const x0 = tf.tidy(() => {
        const xa = tf.tensor5d(step.context, [B, K, S, S, 1]);
        const za = tf.add(tf.mul(xa, Math.sqrt(abar)), tf.mul(tf.tensor5d(e, [B, K, S, S, 1]), Math.sqrt(1 - abar)));
        const error = (xb: tf.Tensor) => {
          const window = tf.concat([za, xb.reshape([B, N, S, S, 1])], 1).reshape([B * F, S, S, 1]) as tf.Tensor4D;
          const out = net(window, tRow);
          const ctxSlots = (v: tf.Tensor) => tf.slice(v.reshape([B, F, S, S, 1]), [0, 0, 0, 0, 0], [B, K, S, S, 1]).reshape([B * K, S, S, 1]) as tf.Tensor4D;
          const rec = predictX0Eps(ctx.prediction, ctxSlots(out), ctxSlots(window), abar).x0;
          return tf.sum(tf.square(tf.sub(xa.reshape([B * K, S, S, 1]), rec))) as tf.Scalar;
        };
        const g = tf.grad(error)(step.x) as tf.Tensor4D;
        return tf.sub(step.x0, tf.mul(g, (scale * Math.sqrt(abar)) / 2)) as tf.Tensor4D;
      });
      return { x0 };
    },
  };
}, { inLoop: true });
