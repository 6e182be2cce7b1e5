/**
 * Identity conditioning (VideoConfig.anchorFrames): training windows hold the clip's first frames
 * in the anchor slots and frames s..s+F-A-1 after them; a rollout keeps its given context's first
 * frames in the anchor slots for its whole length (also across a resume); correctors see the
 * model as a plain one; bad values are refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ensureWasm } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { ClipStream, anchoredWindow, clipWindow, digitsMinDistance } from '../../src/video/clips.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { rollout } from '../../src/video/rollout.js';
import { trainVideo } from '../../src/video/train-video.js';
import { makeSchedule } from '../../src/diffusion/schedule.js';
import { validateUNetConfig } from '../../src/diffusion/config.js';
import { makeCorrector } from '../../src/drift/correctors/index.js';
import { correctorContext } from '../../src/drift/context.js';
import { fromU8 } from '../../src/video/frames8.js';
import { readNpy } from '../../src/io/npy.js';
import { Rng } from '../../src/util/rng.js';

const dir = tempDir('driftlab-anchors-');
const data = { ...getVideoPreset('mmnist-tiny').data }; // 16 px frames (64 px canvas pooled by 4)
const S = 16, fr = S * S;

test('anchored windows: the clip\'s first frame, then frames s..s+F-2 with s drawn from 0..gap; overlap oversampling looks at the last slot', () => {
  const mm = new MovingMnist(data, 3);
  // the window against a plain render of the same clip
  const w = anchoredWindow(mm, data.pool, 7, 6, 2, 4);
  const plain = clipWindow(mm, data.pool, 7, 9);
  assert.equal(Array.from(w.subarray(0, 2 * fr)), Array.from(plain.subarray(0, 2 * fr)));
  assert.equal(Array.from(w.subarray(2 * fr)), Array.from(plain.subarray(4 * fr, 8 * fr)));
  const F = 6, K = 5, gap = 5, B = 24;
  const opts = { data, seed: 3, batchSize: B, frames: F, contextFrames: K, maxContextT: 0, T: 1000, anchorFrames: 1, anchorGap: gap };
  const b = new ClipStream(opts).next(new Rng(1));
  const seen = new Set<number>();
  for (let k = 0; k < B; k++) {
    const long = clipWindow(mm, data.pool, k, gap + F);
    const x = b.x0.subarray(k * F * fr, (k + 1) * F * fr);
    assert.equal(Array.from(x.subarray(0, fr)), Array.from(long.subarray(0, fr)), `window ${k}: the anchor is frame 0`);
    const s = [...Array(gap + 1).keys()].filter((s) => x.subarray(fr).every((v, i) => v === long[s * fr + i]));
    assert.ok(s.length >= 1, `window ${k}: frames 1.. are no stretch s..s+${F - 2} of its clip`);
    seen.add(s[0]);
    // context weighted 0 (anchor included), the target in the loss
    for (let f = 0; f < F; f++) assert.is(b.weights![k * F + f] > 0, f >= K);
  }
  assert.ok(seen.size >= 4, `only offsets ${[...seen]} were drawn`);
  // hard windows: the digits overlap at the clip frame in the last context slot (s + K - 2)
  const hard = new ClipStream({ ...opts, batchSize: 8, overlapOversample: 1 }).next(new Rng(2));
  let checked = 0;
  for (let k = 0, w8 = 0; w8 < 8 && k < 2000; k++) {
    const x = hard.x0.subarray(w8 * F * fr, (w8 + 1) * F * fr);
    const long = clipWindow(mm, data.pool, k, gap + F);
    if (!x.subarray(0, fr).every((v, i) => v === long[i])) continue;
    const s = [...Array(gap + 1).keys()].find((s) => x.subarray(fr).every((v, i) => v === long[s * fr + i]));
    if (s === undefined) continue;
    assert.ok(digitsMinDistance(mm, k, s + K - 2, s + K - 2) < 10, `hard window ${w8} (clip ${k}, s ${s}) does not overlap at its last context slot`);
    w8++; checked++;
  }
  assert.is(checked, 8);
  // without anchors the stream is the old one
  const { anchorFrames: _a, anchorGap: _g, ...old } = opts;
  assert.equal(Array.from(new ClipStream({ ...old, anchorFrames: 0 }).next(new Rng(1)).x0), Array.from(new ClipStream(old).next(new Rng(1)).x0));
});

/** A pipeline whose net records every window it is given and predicts v = 0.1 x (no weights). */
function spyPipeline(A: number) {
  const base = getVideoPreset('mmnist-small');
  const K = 3 + A, F = K + 1;
  const model = { ...base.model, sampleSize: S, blockOutChannels: [8, 8, 8], normGroups: 4, video: { ...base.model.video!, contextFrames: K, frames: F, anchorFrames: A } };
  validateUNetConfig(model);
  const windows: Float32Array[] = [];
  const net = async (x: tf.Tensor4D) => { windows.push(x.dataSync().slice() as Float32Array); return tf.tidy(() => tf.mul(x, 0.1) as tf.Tensor4D); };
  const pipeline: any = {
    net, schedule: makeSchedule(base.schedule), engine: { name: 'spy', line: 'spy' },
    config: { model, schedule: base.schedule, objective: base.objective, training: { data } },
    model: { getFlat: () => new Float32Array(4) },
  };
  return { pipeline, windows, K, F };
}

test('a rollout keeps the given context\'s first frame in the anchor slot, the newest frames after it, also across a resume', async () => {
  await ensureWasm();
  const A = 1, steps = 2, N = 2;
  const run = async (out: string, horizon: number, resume = false) => {
    const spy = spyPipeline(A);
    const rng = new Rng(1).fork('corrector');
    const c = makeCorrector('none', correctorContext(spy.pipeline, rng, 3));
    await rollout({ rollouts: N, horizon, context: 3, chunk: 1, sampler: 'ddim', steps, eta: 0, seed: 4, pipeline: spy.pipeline, corrector: c, out, checkpoint: 'spy', correctorRng: rng, quiet: true, resume });
    return spy;
  };
  const full = path.join(dir, 'full');
  const spy = await run(full, 6);
  const f = await readNpy(path.join(full, 'frames.npy'));
  assert.equal(f.shape, [9, N, S, S], 'the 3 given frames, then 6 generated');
  const frames = fromU8(f.data as Uint8Array);
  const frame = (t: number, n: number) => Array.from(frames.subarray((t * N + n) * fr, (t * N + n + 1) * fr));
  assert.is(spy.windows.length, 6 * steps);
  // the sampler shows the context at t = 0, where sqrt(1 - abar_0) = 0.01: compare within 6 sigma
  const near = (a: number[], b: number[], what: string) => { let d = 0; for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i])); assert.ok(d < 0.06, `${what}: off by ${d}`); };
  assert.ok(frame(0, 0).some((v, i) => Math.abs(v - frame(3, 0)[i]) > 0.5), 'frames 0 and 3 are alike: the check would be vacuous');
  spy.windows.forEach((w, call) => {
    const j = Math.floor(call / steps); // generating frame 3 + j
    for (let n = 0; n < N; n++) {
      const slot = (k: number) => Array.from(w.subarray((n * spy.F + k) * fr, (n * spy.F + k + 1) * fr));
      near(slot(0), frame(0, n), `call ${call}, rollout ${n}: the anchor is the first given frame`);
      for (let k = 0; k < 3; k++) near(slot(1 + k), frame(j + k, n), `call ${call}, rollout ${n}: slot ${1 + k} is frame ${j + k}`);
    }
  });
  const run1 = JSON.parse(fs.readFileSync(path.join(full, 'run.json'), 'utf8'));
  assert.is(run1.anchors, 1);
  assert.is(run1.context, 3);
  // killed after 4 frames and resumed: the anchors come back from frames.npy
  const part = path.join(dir, 'part');
  await run(part, 4);
  const resumed = await run(part, 6, true);
  assert.ok(fs.readFileSync(path.join(full, 'frames.npy')).equals(fs.readFileSync(path.join(part, 'frames.npy'))), 'the resumed rollout differs');
  assert.equal(resumed.windows.map((w) => Array.from(w)), spy.windows.slice(4 * steps).map((w) => Array.from(w)));
  // bad --context: fewer given frames than anchors, or a window without targets
  const bad = async (context: number, re: RegExp) => {
    const s2 = spyPipeline(2);
    const rng = new Rng(1);
    let msg = '';
    try { await rollout({ rollouts: 1, horizon: 2, context, chunk: 1, sampler: 'ddim', steps: 1, eta: 0, seed: 0, pipeline: s2.pipeline, corrector: makeCorrector('none', correctorContext(s2.pipeline, rng, context)), out: path.join(dir, `bad${context}`), checkpoint: 'spy', correctorRng: rng, quiet: true }); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, re);
  };
  await bad(1, /shorter than the model's 2 anchor frames/);
  await bad(4, /--context must be an integer in 1\.\.3 for this 6-frame model \(2 of its context slots are anchors\)/);
});

test('anchors are never noised: context noise in training and the context level in sampling skip them', async () => {
  await ensureWasm();
  const F = 6, K = 5;
  const b = new ClipStream({ data, seed: 3, batchSize: 16, frames: F, contextFrames: K, maxContextT: 300, T: 1000, anchorFrames: 1, anchorGap: 3 }).next(new Rng(1));
  const ctxT = new Set<number>();
  for (let k = 0; k < 16; k++) { assert.is(b.t[k * F], 0, `window ${k}: the anchor at t = 0`); for (let f = 1; f < K; f++) ctxT.add(b.t[k * F + f]); }
  assert.ok(ctxT.size > 4, 'the newest slots draw context noise levels');
  const { continueClips } = await import('../../src/video/sample-clip.js');
  const spy = spyPipeline(1);
  const ctx = Float32Array.from(new Rng(3).normals(2 * 4 * fr), (v) => Math.tanh(v));
  await continueClips(spy.pipeline.net, spy.pipeline.schedule, 'v', ctx, 2, 4, 5, S, { sampler: 'ddim', steps: 1, rng: new Rng(0), contextT: 400, anchors: 1 });
  const w = spy.windows[0];
  for (let n = 0; n < 2; n++) for (let k = 0; k < 4; k++) {
    let d = 0;
    for (let i = 0; i < fr; i++) d = Math.max(d, Math.abs(w[(n * 5 + k) * fr + i] - ctx[(n * 4 + k) * fr + i]));
    if (k === 0) assert.ok(d < 0.06, `rollout ${n}: the anchor is off the clean frame by ${d}`);
    else assert.ok(d > 0.5, `rollout ${n}, slot ${k}: not noised to level 400 (off by ${d})`);
  }
  let msg = '';
  try { await continueClips(spy.pipeline.net, spy.pipeline.schedule, 'v', ctx, 2, 4, 5, S, { sampler: 'ddim', steps: 1, rng: new Rng(0), anchors: 4 }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /anchors must be an integer in 0\.\.3/);
});

test('correctors see an anchored model as a plain one: its first frames shown again as the anchors', async () => {
  await ensureWasm();
  const spy = spyPipeline(1);
  const ctx = correctorContext(spy.pipeline, new Rng(0), 3);
  assert.is(ctx.frames, 4);
  assert.is(ctx.contextFrames, 3);
  const x = tf.tensor4d(new Rng(2).normals(2 * 4 * fr), [8, S, S, 1]);
  const y = await ctx.net(x, Float32Array.from([0, 0, 0, 500, 0, 0, 0, 500]));
  const w = spy.windows[0], xs = x.dataSync();
  for (let n = 0; n < 2; n++) {
    assert.equal(Array.from(w.subarray(n * 5 * fr, (n * 5 + 1) * fr)), Array.from(xs.subarray(n * 4 * fr, (n * 4 + 1) * fr)));
    assert.equal(Array.from(w.subarray((n * 5 + 1) * fr, (n + 1) * 5 * fr)), Array.from(xs.subarray(n * 4 * fr, (n + 1) * 4 * fr)));
  }
  assert.equal(y.shape, [8, S, S, 1]);
  const ys = y.dataSync();
  for (let i = 0; i < ys.length; i++) assert.ok(Math.abs(ys[i] - 0.1 * xs[i]) < 1e-6);
  x.dispose(); y.dispose();
});

test('train-video refuses anchors it cannot honour, and writes nothing', async () => {
  const p = getVideoPreset('mmnist-small');
  const refused = async (edit: (q: typeof p) => void, re: RegExp, name: string) => {
    const q = getVideoPreset('mmnist-small');
    q.model.video = { ...q.model.video!, contextFrames: q.model.video!.contextFrames + 1, frames: q.model.video!.frames + 1, anchorFrames: 1 };
    q.train.steps = 1;
    edit(q);
    let msg = '';
    try { await trainVideo({ preset: q, out: path.join(dir, name), workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 }); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, re);
    assert.not.ok(fs.existsSync(path.join(dir, name)));
  };
  await refused((q) => { q.train.anchorGap = -1; }, /--anchor-gap must be a non-negative integer/, 'a1');
  await refused((q) => { q.train.contextJitter = 1; }, /--context-jitter and --anchor-frames do not combine/, 'a2');
  await refused((q) => { q.train.overlapFrames = q.model.video!.contextFrames; }, /--overlap-frames must be at most/, 'a3');
  const plain = getVideoPreset('mmnist-small');
  plain.train.anchorGap = 4;
  let msg = '';
  try { await trainVideo({ preset: plain, out: path.join(dir, 'a4'), workers: 1, backend: 'wasm', quiet: true }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /--anchor-gap needs --anchor-frames/);
  assert.throws(() => validateUNetConfig({ ...p.model, video: { ...p.model.video!, anchorFrames: p.model.video!.contextFrames } }), /anchorFrames must be an integer in 0\.\.contextFrames-1/);
});

test.run();
