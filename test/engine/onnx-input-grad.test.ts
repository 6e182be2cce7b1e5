/**
 * Input-gradient graphs (engine/train-graph.ts wrt 'input', OnnxInputGradSession): d/dx of the
 * weighted MSE of the network's output, for fixed parameters, against tfjs autodiff of the same
 * loss through the model's tfjs forward (|g_onnx - g_tfjs| / |g_tfjs| < 1e-4 by L2 norm), for a
 * tiny video U-Net with temporal attention (the reconstruction-guidance case: the context rows'
 * loss reaches the target rows only through it) and a conditional image U-Net; and the premise
 * that the target rows' gradient is non-zero there and exactly zero on a causal model.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as tf from '@tensorflow/tfjs';
import type { UNetConfig } from '../../src/diffusion/config.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { OnnxInputGradSession } from '../../src/engine/onnx-train.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm } from '../helpers/backend.js';
import { once, randomParams, requireOrt } from './helpers.js';

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));

/** rows, per-row weights w (1 on the first K frames of each clip when frames is given) */
async function check(c: UNetConfig, rows: number, seed: number, frames?: number, K = 0) {
  await ready();
  const model = new UNetModel(c, randomParams(c, seed));
  const session = await OnnxInputGradSession.create(c, model.layout, model.getFlat(), rows, frames, { threads: 1 });
  try {
    const rng = new Rng(seed + 1), D = c.sampleSize * c.sampleSize * c.inChannels;
    const xt = rng.normals(rows * D), target = rng.normals(rows * D);
    const t = Float32Array.from({ length: rows }, () => rng.int(1000));
    const w = Float32Array.from({ length: rows }, (_, i) => (frames ? (i % frames < K ? 1 : 0) : 0.5 + rng.uniform()));
    const labels = c.numClasses > 0 ? Int32Array.from({ length: rows }, (_, i) => (i === 0 ? c.numClasses : rng.int(c.numClasses))) : undefined;
    const shape = [rows, c.sampleSize, c.sampleSize, c.inChannels];
    const lossOf = (x: tf.Tensor) => {
      const out = model.forward(x as tf.Tensor4D, tf.tensor1d(t), labels ? tf.tensor1d(labels, 'int32') : undefined);
      return tf.mean(tf.mul(tf.mean(tf.square(tf.sub(out, tf.tensor4d(target, shape as any))).reshape([rows, D]), 1), tf.tensor1d(w))) as tf.Scalar;
    };
    const { ref, refLoss } = tf.tidy(() => {
      const x = tf.tensor4d(xt, shape as any);
      return { ref: tf.grad(lossOf)(x).dataSync() as Float32Array, refLoss: lossOf(x).dataSync()[0] };
    });
    const got = await session.inputGrad({ xt, t, labels, target, w });
    assert.ok(Math.abs(got.loss - refLoss) <= 1e-5 * refLoss, `loss ${got.loss} vs tfjs ${refLoss}`);
    let dd = 0;
    for (let i = 0; i < ref.length; i++) dd += (got.grad[i] - ref[i]) ** 2;
    const rel = Math.sqrt(dd) / norm(ref);
    assert.ok(norm(ref) > 0, 'the tfjs gradient is zero: the comparison cannot fail');
    assert.ok(rel < 1e-4, `relative input-gradient error ${rel.toExponential(2)}`);
    assert.ok(rel > 0, 'the two engines should differ by float rounding at least');
    return { grad: got.grad, D };
  } finally {
    await session.release();
    model.dispose();
  }
}

/** L2 norm of the gradient on the rows that carry no loss (the targets, K..F-1 of each clip) */
function targetNorm(g: Float32Array, D: number, F: number, K: number): number {
  let s = 0;
  for (let r = 0; r < g.length / D; r++) if (r % F >= K) for (let i = 0; i < D; i++) s += g[r * D + i] ** 2;
  return Math.sqrt(s);
}

test('mmnist-tiny (temporal attention): the context rows\' loss, differentiated to the whole window = tfjs autodiff; the targets get a gradient', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  const F = c.video!.frames, K = c.video!.contextFrames;
  const { grad, D } = await check(c, 2 * F, 3, F, K);
  assert.ok(targetNorm(grad, D, F, K) > 1e-6, 'no gradient reaches the targets through temporal attention');
});

test('a causal mask: the targets get exactly no gradient from the context rows', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  const F = c.video!.frames, K = c.video!.contextFrames;
  const { grad, D } = await check({ ...c, video: { ...c.video!, causal: true } }, F, 5, F, K);
  assert.is(targetNorm(grad, D, F, K), 0);
});

test('mnist-tiny (conditional image U-Net), per-row weights: onnx input gradient = tfjs autodiff', async () => {
  await check(getPreset('mnist-tiny').model, 3, 7);
});

test('an input-gradient graph has no optimizer', async () => {
  const { buildTrainGraph } = await import('../../src/engine/train-graph.js');
  assert.throws(() => buildTrainGraph(getPreset('mnist-tiny').model, { rows: 2, wrt: 'input', adam: { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 } as any }), /no optimizer/);
});

test.run();
