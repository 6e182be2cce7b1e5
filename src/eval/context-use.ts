/**
 * Does a video model use its context? On held-out windows (test digits), the error of the
 * model's predicted x0 for the target frames at several noise levels, with
 *   (a) the true context, (b) another clip's context, (c) a blank context (every pixel -1),
 * beside the copy-last-frame baseline (every target = the last true context frame).
 *
 *   ratio other/true = MSE_b / MSE_a,  ratio blank/true = MSE_c / MSE_a
 *
 * A model that ignores its past scores ~1 on both (it predicts as well from a stranger's past);
 * one that conditions scores >> 1 where the noise hides the target (high t). The three runs share
 * the noise and the targets (common random numbers), so the ratio measures the context alone.
 * Errors are pixel MSE on the [0,1] scale (as the drift metrics), x0 clipped to [-1,1] as the
 * samplers clip it.
 */
import * as tf from '@tensorflow/tfjs';
import { MovingMnist, MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import type { UNetConfig } from '../diffusion/config.js';
import { Prediction, outputToX0Eps } from '../diffusion/objective.js';
import type { Denoiser } from '../diffusion/samplers.js';
import type { Schedule } from '../diffusion/schedule.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { clipWindow } from '../video/clips.js';

export const DEFAULT_CONTEXT_TS = [100, 300, 500, 700, 900];

export interface ContextUseOptions {
  /** held-out windows (>= 2: "another clip" is the next window's context) */
  windows: number;
  /** noise levels of the targets */
  ts: number[];
  seed: number;
  /** windows per network call */
  batch?: number;
}

export interface ContextUseResult {
  t: number[];
  mseTrue: number[];
  mseOther: number[];
  mseBlank: number[];
  ratioOther: number[];
  ratioBlank: number[];
  /** MSE of repeating the last context frame (no model, no noise) */
  copyLast: number;
  windows: number;
  contextFrames: number;
  targetFrames: number;
}

type Data = MovingMnistConfig & { pool: number };

/** x0 estimate from a network output (objective.ts's reference conversion), clipped to [-1,1]. */
function predictedX0(pred: Prediction, out: Float32Array, xt: Float32Array, abar: number): Float32Array {
  return Float32Array.from(out, (o, i) => Math.max(-1, Math.min(1, outputToX0Eps(pred, o, xt[i], abar).x0)));
}

export async function contextUse(
  net: Denoiser, model: UNetConfig, schedule: Schedule, pred: Prediction, data: Data, o: ContextUseOptions,
): Promise<ContextUseResult> {
  const v = model.video;
  if (!v) throw new DriftlabError('context use needs a video checkpoint (one with a context)');
  const F = v.frames, K = v.contextFrames, N = F - K, S = model.sampleSize, fr = S * S;
  if (K < 1) throw new DriftlabError('this video model has no context frames');
  if (!(Number.isInteger(o.windows) && o.windows >= 2)) throw new DriftlabError(`--windows must be an integer >= 2, got ${o.windows}`);
  for (const t of o.ts) if (!(Number.isInteger(t) && t >= 0 && t < schedule.T)) throw new DriftlabError(`noise levels must be integers in 0..${schedule.T - 1}, got ${t}`);
  const W = o.windows, batch = Math.max(1, o.batch ?? 8);
  const mm = new MovingMnist({ ...data, split: 'test' }, o.seed);
  const rng = new Rng(o.seed).fork('context-use');
  // windows start at varied offsets so the check does not only see the clips' first frames
  const clips = Array.from({ length: W }, (_, k) => clipWindow(mm, data.pool, k, F, rng.int(16)));
  const ctxOf = (k: number) => clips[k].subarray(0, K * fr);
  const tgtOf = (k: number) => clips[k].subarray(K * fr);
  const blank = new Float32Array(K * fr).fill(-1);
  let copy = 0;
  for (let k = 0; k < W; k++) {
    const last = ctxOf(k).subarray((K - 1) * fr), tg = tgtOf(k);
    for (let i = 0; i < tg.length; i++) { const d = (tg[i] - last[i % fr]) / 2; copy += d * d; }
  }
  const r: ContextUseResult = { t: [...o.ts], mseTrue: [], mseOther: [], mseBlank: [], ratioOther: [], ratioBlank: [], copyLast: copy / (W * N * fr), windows: W, contextFrames: K, targetFrames: N };
  for (const t of o.ts) {
    const abar = schedule.alphasCumprod[t];
    const a = Math.sqrt(abar), c = Math.sqrt(1 - abar);
    const eps = rng.normals(W * N * fr);
    const sums = [0, 0, 0];
    for (let k0 = 0; k0 < W; k0 += batch) {
      const B = Math.min(batch, W - k0);
      const xt = new Float32Array(B * N * fr);
      for (let b = 0; b < B; b++) {
        const tg = tgtOf(k0 + b);
        for (let i = 0; i < N * fr; i++) xt[b * N * fr + i] = a * tg[i] + c * eps[(k0 + b) * N * fr + i];
      }
      const contexts = [(k: number) => ctxOf(k), (k: number) => ctxOf((k + 1) % W), () => blank];
      for (let m = 0; m < 3; m++) {
        const win = new Float32Array(B * F * fr);
        const tRow = new Float32Array(B * F);
        for (let b = 0; b < B; b++) {
          win.set(contexts[m](k0 + b), b * F * fr);
          win.set(xt.subarray(b * N * fr, (b + 1) * N * fr), (b * F + K) * fr);
          for (let f = K; f < F; f++) tRow[b * F + f] = t;
        }
        const x = tf.tensor4d(win, [B * F, S, S, 1]);
        let out: tf.Tensor4D;
        try { out = await net(x, tRow); } finally { x.dispose(); }
        const all = (await out.data()) as Float32Array;
        out.dispose();
        for (let b = 0; b < B; b++) {
          const o5 = all.subarray((b * F + K) * fr, (b + 1) * F * fr);
          const x0 = predictedX0(pred, o5, xt.subarray(b * N * fr, (b + 1) * N * fr), abar);
          const tg = tgtOf(k0 + b);
          for (let i = 0; i < x0.length; i++) { const d = (x0[i] - tg[i]) / 2; sums[m] += d * d; }
        }
      }
    }
    const [mt, mo, mb] = sums.map((s) => s / (W * N * fr));
    r.mseTrue.push(mt); r.mseOther.push(mo); r.mseBlank.push(mb);
    r.ratioOther.push(mo / mt); r.ratioBlank.push(mb / mt);
  }
  return r;
}

/** The table `driftlab eval context-use` prints. */
export function formatContextUse(r: ContextUseResult): string {
  const f = (x: number) => x.toExponential(3).padStart(10);
  const lines = [
    `context use on ${r.windows} held-out windows (test digits), ${r.contextFrames} context -> ${r.targetFrames} target frame${r.targetFrames > 1 ? 's' : ''}; x0 MSE on [0,1] pixels`,
    '    t  true ctx  other ctx  blank ctx  other/true  blank/true',
  ];
  r.t.forEach((t, i) => lines.push(`${String(t).padStart(5)}${f(r.mseTrue[i])} ${f(r.mseOther[i])} ${f(r.mseBlank[i])} ${r.ratioOther[i].toFixed(2).padStart(11)} ${r.ratioBlank[i].toFixed(2).padStart(11)}`));
  lines.push(`copy-last-frame baseline: MSE ${r.copyLast.toExponential(3)} (a model that beats it at high t predicts the motion)`);
  return lines.join('\n');
}
