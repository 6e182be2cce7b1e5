/**
 * One forward + backward pass of the denoising loss on a batch, returning the loss and the
 * gradient as one flat float32 array in the model's layout. Shared by the in-process trainer and
 * the data-parallel worker threads, so both compute exactly the same thing.
 */
import * as tf from '@tensorflow/tfjs';
import { UNetModel } from './model.js';
import { ObjectiveConfig, lossWeights, makeTarget } from './objective.js';
import { Schedule, addNoise } from './schedule.js';

/** A training batch. All randomness is drawn by the caller (driftlab's Rng), never by tfjs. */
export interface TrainBatch {
  /** clean images, [B,H,W,C] flattened, in [-1,1] */
  x0: Float32Array;
  /** noise, same shape */
  eps: Float32Array;
  /** integer timesteps [B] */
  t: Int32Array;
  /** class labels [B] (numClasses = null class); absent for unconditional models */
  labels?: Int32Array;
  /**
   * extra per-sample loss weights [B] (video: 0 for context frames), already normalised over the
   * whole batch so that the loss is sum(w * mse) / sum(w) (mean of w = 1)
   */
  weights?: Float32Array;
  /** video: frames per clip; rows are clip-major (frame index fastest) and shards keep clips whole */
  frames?: number;
}

/** Per-sample weights scaled to mean 1 over the batch (all zero is refused). */
export function normaliseWeights(w: Float32Array): Float32Array {
  let s = 0;
  for (const v of w) s += v;
  if (!(s > 0)) throw new Error('loss weights sum to zero: a batch with no target frames');
  return w.map((v) => (v * w.length) / s);
}

export function sliceBatch(b: TrainBatch, from: number, to: number): TrainBatch {
  const D = b.x0.length / b.t.length;
  return {
    x0: b.x0.slice(from * D, to * D),
    eps: b.eps.slice(from * D, to * D),
    t: b.t.slice(from, to),
    labels: b.labels?.slice(from, to),
    weights: b.weights?.slice(from, to),
    frames: b.frames,
  };
}

/** What the network sees and is scored against: x_t, the objective's target and the per-sample weights [B]. */
export function prepareBatch(schedule: Schedule, objective: ObjectiveConfig, batch: TrainBatch): { xt: Float32Array; target: Float32Array; w: Float32Array } {
  const xt = addNoise(schedule, batch.x0, batch.eps, batch.t);
  const target = makeTarget(objective, schedule, batch.x0, batch.eps, batch.t);
  const w = lossWeights(objective, schedule, batch.t);
  if (batch.weights) for (let i = 0; i < w.length; i++) w[i] *= batch.weights[i];
  return { xt, target, w };
}

/**
 * loss = mean_b w_b * mean_d (net(x_t, t)_bd - target_bd)^2. The gradient is multiplied by
 * `scale` (the shard's share of the full batch) and added into `into` if given.
 */
export function lossAndGrad(
  model: UNetModel, schedule: Schedule, objective: ObjectiveConfig, batch: TrainBatch,
  scale = 1, into?: Float32Array,
): { loss: number; grad: Float32Array } {
  const c = model.config;
  const B = batch.t.length;
  const shape: [number, number, number, number] = [B, c.sampleSize, c.sampleSize, c.inChannels];
  const { xt, target, w } = prepareBatch(schedule, objective, batch);
  const grad = into ?? new Float32Array(model.layout.size);
  const varList = model.specs.map((s) => model.vars.get(s.name)!);
  let loss = 0;
  tf.tidy(() => {
    const x = tf.tensor4d(xt, shape);
    const tt = tf.tensor1d(Float32Array.from(batch.t), 'float32');
    const lab = batch.labels && c.numClasses > 0 ? tf.tensor1d(batch.labels, 'int32') : undefined;
    const y = tf.tensor4d(target, shape);
    const wt = tf.tensor1d(w);
    const { value, grads } = tf.variableGrads(() => {
      const out = model.forward(x, tt, lab, batch.frames);
      const perSample = tf.mean(tf.squaredDifference(out, y), [1, 2, 3]);
      return tf.mean(tf.mul(perSample, wt)) as tf.Scalar;
    }, varList);
    loss = value.dataSync()[0];
    model.specs.forEach((s, i) => {
      const g = grads[varList[i].name].dataSync() as Float32Array;
      const o = model.layout.offsets[i];
      if (into) for (let k = 0; k < g.length; k++) grad[o + k] += scale * g[k];
      else if (scale === 1) grad.set(g, o);
      else for (let k = 0; k < g.length; k++) grad[o + k] = scale * g[k];
    });
  });
  return { loss, grad };
}
