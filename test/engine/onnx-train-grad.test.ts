/**
 * Whole-network gradients from the ONNX training graph (engine/train-graph.ts: the model's own
 * forward over the VJP tape) against tfjs autodiff (diffusion/grad.ts lossAndGrad), per parameter
 * tensor: |g_onnx - g_tfjs| / |g_tfjs| < 1e-4 by L2 norm, for the tiny image and video U-Nets.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { UNetConfig } from '../../src/diffusion/config.js';
import { TrainBatch, lossAndGrad, normaliseWeights, prepareBatch } from '../../src/diffusion/grad.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { DEFAULT_OBJECTIVE, ObjectiveConfig } from '../../src/diffusion/objective.js';
import { getPreset } from '../../src/diffusion/presets.js';
import { DEFAULT_SCHEDULE, makeSchedule } from '../../src/diffusion/schedule.js';
import { OnnxGradSession } from '../../src/engine/onnx-train.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { Rng } from '../../src/util/rng.js';
import { ensureWasm } from '../helpers/backend.js';
import { once, randomParams, requireOrt } from './helpers.js';

const ready = once(async () => {
  await ensureWasm();
  await requireOrt();
});

function batchFor(c: UNetConfig, rows: number, seed: number, frames?: number): TrainBatch {
  const rng = new Rng(seed);
  const D = c.sampleSize * c.sampleSize * c.inChannels;
  const b: TrainBatch = {
    x0: rng.normals(rows * D), eps: rng.normals(rows * D), t: Int32Array.from({ length: rows }, () => rng.int(1000)), frames,
  };
  if (c.numClasses > 0) b.labels = Int32Array.from({ length: rows }, (_, i) => (i === 0 ? c.numClasses : rng.int(c.numClasses)));
  const K = c.video?.conditioning === 'concat' ? c.video.contextFrames : 2; // frames with no loss
  if (frames) b.weights = normaliseWeights(Float32Array.from({ length: rows }, (_, i) => (i % frames < K ? 0 : 1)));
  return b;
}

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((a, x) => a + x * x, 0));

/**
 * Per-tensor relative error by L2 norm; returns the worst tensor. Key biases of attention get no
 * gradient in exact arithmetic (softmax ignores a per-query constant), so both engines give only
 * rounding noise there: those must be tiny next to the whole gradient instead.
 */
function compareGrads(model: UNetModel, got: Float32Array, ref: Float32Array): { name: string; rel: number } {
  let worst = { name: '', rel: 0 };
  const total = norm(ref);
  model.specs.forEach((s, i) => {
    const o = model.layout.offsets[i], n = s.shape.reduce((a, b) => a * b, 1);
    if (s.name.endsWith('to_k.bias')) {
      for (const v of [got, ref]) assert.ok(norm(v.subarray(o, o + n)) < 1e-5 * total, `${s.name}: should be ~0, is ${norm(v.subarray(o, o + n))} (total ${total})`);
      return;
    }
    let dd = 0, rr = 0;
    for (let k = o; k < o + n; k++) { dd += (got[k] - ref[k]) ** 2; rr += ref[k] ** 2; }
    assert.ok(rr > 0, `${s.name}: the tfjs gradient is zero, the comparison cannot fail`);
    const rel = Math.sqrt(dd / rr);
    if (rel > worst.rel) worst = { ...worst, name: s.name, rel };
  });
  return worst;
}

async function check(c: UNetConfig, rows: number, seed: number, frames?: number, objective: ObjectiveConfig = DEFAULT_OBJECTIVE, nchwc = true) {
  await ready();
  const model = new UNetModel(c, randomParams(c, seed));
  const session = await OnnxGradSession.create(c, model.layout, rows, frames, { threads: 1, nchwc });
  try {
    const schedule = makeSchedule(DEFAULT_SCHEDULE);
    const batch = batchFor(c, rows, seed + 1, frames);
    const ref = lossAndGrad(model, schedule, objective, batch);
    const { xt, target, w } = prepareBatch(schedule, objective, batch);
    const got = await session.lossAndGrad(model.getFlat(), { xt, t: batch.t, labels: batch.labels, target, w });
    assert.ok(Math.abs(got.loss - ref.loss) <= 1e-5 * ref.loss, `loss ${got.loss} vs tfjs ${ref.loss}`);
    const worst = compareGrads(model, got.grad, ref.grad);
    assert.ok(worst.rel < 1e-4, `${worst.name}: relative gradient error ${worst.rel.toExponential(2)}`);
    return worst;
  } finally {
    await session.release();
    model.dispose();
  }
}

test('mnist-tiny (conditional, attention, stride-2 convs, upsampling): onnx gradients = tfjs autodiff', async () => {
  const worst = await check(getPreset('mnist-tiny').model, 4, 3);
  assert.ok(worst.rel > 0, 'the two engines should differ by float rounding at least');
});

test('mnist-tiny with 2 attention heads and v-prediction min-SNR weighting', async () => {
  const c = { ...getPreset('mnist-tiny').model, attentionHeads: 2 };
  await check(c, 3, 5, undefined, { ...DEFAULT_OBJECTIVE, prediction: 'v', weighting: 'min-snr', snrGamma: 5 });
});

test('mmnist-tiny (temporal attention, relative position bias, per-frame loss weights): onnx gradients = tfjs autodiff', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  await check(c, 2 * c.video!.frames, 7, c.video!.frames);
});

test('mmnist-tiny with a causal mask', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  await check({ ...c, video: { ...c.video!, causal: true } }, c.video!.frames, 9, c.video!.frames);
});

/**
 * Concat conditioning (video/st-unet.ts, the mmnist-small recipe): context frames become input
 * channels of each target (slices of the input, which need no gradient), the U-Net runs on the
 * targets only, and the output concat of zero context rows and targets sends the cotangent back
 * through a slice. 3 context + 3 targets covers the frame embedding and the broadcast; 3 + 1 is
 * mmnist-small's shape (no embedding, no broadcast), with v-prediction.
 */
test('mmnist-tiny with concat conditioning (3 context frames as channels of 3 targets): onnx gradients = tfjs autodiff', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  await check({ ...c, video: { ...c.video!, conditioning: 'concat' } }, 2 * c.video!.frames, 11, c.video!.frames);
});

test('concat conditioning with one target, as mmnist-small (temporal attention off, v-prediction)', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  const v = { ...c.video!, frames: 4, contextFrames: 3, temporal: [false, false], temporalMid: false, conditioning: 'concat' as const };
  const frames = v.frames;
  await check({ ...c, video: v }, 2 * frames, 13, frames, { ...DEFAULT_OBJECTIVE, prediction: 'v' });
});

test('concat with the context level embedded (contextLevel), 3 + 3 and 3 + 1 frames: onnx gradients = tfjs autodiff', async () => {
  const c = getVideoPreset('mmnist-tiny').model;
  await check({ ...c, video: { ...c.video!, conditioning: 'concat', contextLevel: true } }, 2 * c.video!.frames, 15, c.video!.frames);
  const v = { ...c.video!, frames: 4, contextFrames: 3, temporal: [false, false], temporalMid: false, conditioning: 'concat' as const, contextLevel: true };
  await check({ ...c, video: v }, 2 * v.frames, 17, v.frames, { ...DEFAULT_OBJECTIVE, prediction: 'v' });
});

/**
 * Channels that fill the blocked-layout kernels' block (16 on AVX-512, 8 on AVX2: [16, 32] fits
 * both), so every Conv on weights but conv_in / conv_out runs on them (train-graph nchwcBlock,
 * the default where onnxruntime has them); and the same graphs with plain Convs. Where this
 * onnxruntime has no such kernels both runs are plain (test/engine/nchwc.test.ts checks the
 * graphs' structure on any machine).
 */
test('blocked-layout Convs (channels 16, 32), image and concat video: onnx gradients = tfjs autodiff, with and without them', async () => {
  const img = { ...getPreset('mnist-tiny').model, blockOutChannels: [16, 32], normGroups: 4 };
  const c = getVideoPreset('mmnist-tiny').model;
  const v = { ...c, blockOutChannels: [16, 32], normGroups: 4, video: { ...c.video!, frames: 4, contextFrames: 3, temporal: [false, false], temporalMid: false, conditioning: 'concat' as const } };
  for (const nchwc of [true, false]) {
    await check(img, 4, 19, undefined, DEFAULT_OBJECTIVE, nchwc);
    await check(v, 2 * 4, 21, 4, { ...DEFAULT_OBJECTIVE, prediction: 'v' }, nchwc);
  }
});

test.run();
