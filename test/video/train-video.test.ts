import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import { ensureWasm, maxAbsDiff } from '../helpers/backend.js';
import { tempDir } from '../helpers/common.js';
import { getVideoPreset } from '../../src/video/presets.js';
import { trainVideo } from '../../src/video/train-video.js';
import { loadCheckpoint } from '../../src/diffusion/checkpoint.js';
import { ClipStream, clipWindow, digitsDistanceAt, digitsMinDistance } from '../../src/video/clips.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { Rng } from '../../src/util/rng.js';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli.js');

const dir = tempDir('driftlab-video-');
const tiny = (steps: number) => { const p = getVideoPreset('mmnist-tiny'); p.train.steps = steps; p.train.seed = 2; return p; };

test('clip windows: pooled frames in [-1,1], context weighted 0, targets share one t', () => {
  const p = tiny(1);
  const s = new ClipStream({ data: p.data, seed: 1, batchSize: 2, frames: 6, contextFrames: 3, maxContextT: 0, T: 1000 });
  const b = s.next(new Rng(0));
  assert.is(b.t.length, 12);
  assert.is(b.frames, 6);
  assert.equal(Array.from(b.weights!), [0, 0, 0, 2, 2, 2, 0, 0, 0, 2, 2, 2]);
  assert.equal(Array.from(b.t.slice(0, 3)), [0, 0, 0]);
  assert.ok(b.t[3] === b.t[4] && b.t[4] === b.t[5]);
  assert.ok(b.x0.every((v) => v >= -1 && v <= 1));
  // window 0 is clip 0 of the generator, 4x4 average-pooled
  const w = clipWindow(new MovingMnist(p.data, 1), 4, 0, 6);
  assert.equal(Array.from(b.x0.slice(0, w.length)), Array.from(w));
  assert.equal(s.state(), { kind: 'moving-mnist-clips', nextClip: 2 });
});

test('joint windows: context noised at the targets\' t and in the loss; the others unchanged; off replays the old stream', () => {
  const p = tiny(1);
  const opts = { data: p.data, seed: 1, batchSize: 64, frames: 6, contextFrames: 3, maxContextT: 0, T: 1000 };
  const plain = new ClipStream(opts).next(new Rng(0));
  const off = new ClipStream({ ...opts, joint: 0 }).next(new Rng(0));
  assert.equal([Array.from(off.t), Array.from(off.weights!), Array.from(off.x0)], [Array.from(plain.t), Array.from(plain.weights!), Array.from(plain.x0)]);
  const all = new ClipStream({ ...opts, joint: 1 }).next(new Rng(0));
  assert.equal(Array.from(all.x0), Array.from(plain.x0), 'the same clips');
  for (let w = 0; w < 64; w++) {
    const t = Array.from(all.t.slice(w * 6, w * 6 + 6));
    assert.ok(t.every((v) => v === t[5]), `window ${w}: one t for every frame, got ${t}`);
    assert.equal(Array.from(all.weights!.slice(w * 6, w * 6 + 6)), [1, 1, 1, 1, 1, 1]);
  }
  const half = new ClipStream({ ...opts, joint: 0.5 }).next(new Rng(0));
  let joint = 0;
  for (let w = 0; w < 64; w++) {
    const wt = Array.from(half.weights!.slice(w * 6, w * 6 + 6)), t = Array.from(half.t.slice(w * 6, w * 6 + 6));
    if (wt[0] > 0) { joint++; assert.ok(t.every((v) => v === t[5]) && wt.every((v) => v === wt[0])); }
    else { assert.equal(t.slice(0, 3), [0, 0, 0]); assert.ok(wt[3] > 0 && wt[3] === wt[5]); }
  }
  assert.ok(joint > 16 && joint < 48, `${joint} of 64 windows joint at p = 0.5`);
});

test('context jitter: context frames draw displaced digits, targets and the dynamics stay true, off replays the old stream', () => {
  // one digit, integer offsets away from the walls: the frame is the true frame shifted
  const cfg = { size: 64, digits: 1, speedMin: 3.6, speedMax: 3.6, stochastic: false, split: 'train' as const };
  const mm = new MovingMnist(cfg, 3);
  let k = 0;
  for (; ; k++) { const c = mm.clip(k, true); c.next(); const [x, y] = c.truth[0].positions[0]; if (x > 4 && x < 32 && y > 4 && y < 32) break; }
  const a = mm.clip(k, true), b = mm.clip(k, true);
  const fa = a.next(), fb = b.next(undefined, [3, -2]);
  let n = 0;
  for (let y = 0; y < 64; y++) for (let x = 0; x < 64; x++) {
    const src = y + 2 < 64 && x - 3 >= 0 ? fa[(y + 2) * 64 + x - 3] : 0;
    assert.is(fb[y * 64 + x], src); n += src > 0 ? 1 : 0;
  }
  assert.ok(n > 50, 'the digit drew nothing');
  assert.equal(b.truth[0].positions, a.truth[0].positions, 'the recorded truth is the true position');
  assert.equal(Array.from(b.next()), Array.from(a.next()), 'the dynamics do not see the jitter');
  // the stream: same targets, other contexts; 0 = the stream without the option
  const p = tiny(1);
  const opts = { data: p.data, seed: 1, batchSize: 3, frames: 6, contextFrames: 3, maxContextT: 0, T: 1000 };
  const plain = new ClipStream(opts).next(new Rng(0));
  assert.equal(Array.from(new ClipStream({ ...opts, contextJitter: 0 }).next(new Rng(0)).x0), Array.from(plain.x0));
  const j1 = new ClipStream({ ...opts, contextJitter: 2 }).next(new Rng(0)), j2 = new ClipStream({ ...opts, contextJitter: 2 }).next(new Rng(0));
  assert.equal(Array.from(j1.x0), Array.from(j2.x0), 'same rng, same jitter');
  const fr = (p.data.size / p.data.pool) ** 2;
  let ctxDiff = 0;
  for (let w = 0; w < 3; w++) for (let f = 0; f < 6; f++) {
    const o = (w * 6 + f) * fr, same = plain.x0.subarray(o, o + fr).every((v, i) => v === j1.x0[o + i]);
    if (f >= 3) assert.ok(same, `target frame ${f} of window ${w} changed`);
    else ctxDiff += same ? 0 : 1;
  }
  assert.ok(ctxDiff >= 6, `only ${ctxDiff} of 9 context frames moved under 2 px jitter`);
});

test('overlap oversampling: hard windows are the next clips whose digits overlap at the last context frame; off replays the old stream', () => {
  const p = tiny(1);
  const K = 3, near = 10, opts = { data: p.data, seed: 1, batchSize: 16, frames: 6, contextFrames: K, maxContextT: 0, T: 1000 };
  // the truth, recomputed from the generator's recorded positions: which clips overlap at frame K-1
  const mm = new MovingMnist(p.data, 1);
  const { truth } = mm.generate(400, K);
  const overlaps = truth.map((d) => { const [a, b] = [d[0].positions[K - 1], d[1].positions[K - 1]]; return Math.hypot(a[0] - b[0], a[1] - b[1]) < near; });
  const share = overlaps.filter(Boolean).length / overlaps.length;
  assert.ok(share > 0.03 && share < 0.6, `share of overlapping clips ${share}`);
  const plain = new ClipStream(opts).next(new Rng(0));
  assert.equal(Array.from(new ClipStream({ ...opts, overlapOversample: 0 }).next(new Rng(0)).x0), Array.from(plain.x0));
  const all = new ClipStream({ ...opts, overlapOversample: 1 });
  const b = all.next(new Rng(0));
  const expect = overlaps.map((o, k) => (o ? k : -1)).filter((k) => k >= 0).slice(0, 16);
  const S = p.data.size / p.data.pool, n = 6 * S * S;
  expect.forEach((k, w) => assert.equal(Array.from(b.x0.subarray(w * n, (w + 1) * n)), Array.from(clipWindow(mm, p.data.pool, k, 6)), `window ${w} is clip ${k}`));
  assert.equal(all.state(), { kind: 'moving-mnist-clips', nextClip: expect[15] + 1 }, 'the skipped clips are consumed');
  // p = 0.5: about half the windows are hard; the stream still never repeats a clip
  const half = new ClipStream({ ...opts, batchSize: 64, overlapOversample: 0.5 });
  half.next(new Rng(3));
  const used = half.state().nextClip;
  // a plain window takes one clip, a hard one about 1/share: 64 (0.5 + 0.5 / share) clips expected
  const expected = 64 * (0.5 + 0.5 / share);
  assert.ok(used > 0.6 * expected && used < 1.5 * expected, `64 windows used ${used} clips, about ${expected.toFixed(0)} expected`);
  assert.equal(digitsDistanceAt(new MovingMnist({ ...p.data, digits: 1 }, 1), 0, 0), Infinity);
});

test('overlap oversampling over the last N context frames: hard windows are the next clips whose digits come under the threshold anywhere in that span', () => {
  const p = tiny(1);
  const K = 3, near = 10, opts = { data: p.data, seed: 1, batchSize: 16, frames: 6, contextFrames: K, maxContextT: 0, T: 1000 };
  const mm = new MovingMnist(p.data, 1);
  const { truth } = mm.generate(400, K);
  // recomputed from the recorded positions: closest approach over frames K-span..K-1
  const closest = (d: typeof truth[number], from: number) => {
    let best = Infinity;
    for (let f = from; f < K; f++) { const [a, b] = [d[0].positions[f], d[1].positions[f]]; best = Math.min(best, Math.hypot(a[0] - b[0], a[1] - b[1])); }
    return best;
  };
  const anyK = truth.map((d) => closest(d, 0) < near), lastOnly = truth.map((d) => closest(d, K - 1) < near);
  assert.ok(anyK.filter(Boolean).length > lastOnly.filter(Boolean).length, 'the span takes in more clips than the last frame alone');
  truth.slice(0, 50).forEach((_, k) => assert.equal(digitsMinDistance(mm, k, 0, K - 1), closest(truth[k], 0), `clip ${k}`));
  const S = p.data.size / p.data.pool, n = 6 * S * S;
  const b = new ClipStream({ ...opts, overlapOversample: 1, overlapFrames: K }).next(new Rng(0));
  const expect = anyK.map((o, k) => (o ? k : -1)).filter((k) => k >= 0).slice(0, 16);
  expect.forEach((k, w) => assert.equal(Array.from(b.x0.subarray(w * n, (w + 1) * n)), Array.from(clipWindow(mm, p.data.pool, k, 6)), `window ${w} is clip ${k}`));
  // span 1 is the last-frame rule, the same stream as before the option
  assert.equal(Array.from(new ClipStream({ ...opts, overlapOversample: 1, overlapFrames: 1 }).next(new Rng(0)).x0), Array.from(new ClipStream({ ...opts, overlapOversample: 1 }).next(new Rng(0)).x0));
});

test('overlap oversampling is refused with one digit per clip, and nothing is written', async () => {
  const q = tiny(1); q.data = { ...q.data, digits: 1 }; q.train.overlapOversample = 0.5;
  let msg = '';
  try { await trainVideo({ preset: q, out: path.join(dir, 'ov-bad'), workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 }); } catch (e) { msg = (e as Error).message; }
  assert.match(msg, /--overlap-oversample needs clips with at least 2 digits/);
  assert.not.ok(fs.existsSync(path.join(dir, 'ov-bad')));
});

test('a short mmnist-tiny training lowers the loss; resume equals the uninterrupted run', async () => {
  await ensureWasm();
  const full = await trainVideo({ preset: tiny(30), out: path.join(dir, 'full'), workers: 1, backend: 'wasm', quiet: true });
  const first = full.losses.slice(0, 5).reduce((a, b) => a + b) / 5;
  const last = full.losses.slice(-10).reduce((a, b) => a + b) / 10;
  assert.ok(last < 0.6 * first, `video loss did not fall enough: ${first} -> ${last}`);
  const half = path.join(dir, 'half');
  const a = await trainVideo({ preset: tiny(12), out: half, workers: 1, backend: 'wasm', quiet: true });
  const b = await trainVideo({ preset: tiny(30), out: half, resume: true, workers: 1, backend: 'wasm', quiet: true });
  assert.equal([...a.losses, ...b.losses], full.losses);
});

test('two workers keep clips whole and equal one process up to float rounding', async () => {
  await ensureWasm();
  const one = await trainVideo({ preset: tiny(3), out: path.join(dir, 'w1'), workers: 1, backend: 'wasm', quiet: true });
  const two = await trainVideo({ preset: tiny(3), out: path.join(dir, 'w2'), workers: 2, backend: 'wasm', quiet: true });
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(one.losses[i] - two.losses[i]) < 1e-5 * one.losses[i], `${one.losses[i]} vs ${two.losses[i]}`);
});

test('--init-image: spatial weights come from the image checkpoint, temporal ones start as identity', async () => {
  await ensureWasm();
  const { train } = await import('../../src/diffusion/train.js');
  const { getPreset } = await import('../../src/diffusion/presets.js');
  const { loadBundledMnist } = await import('../../datasets/mnist/index.js');
  const ip = getPreset('mnist-tiny');
  ip.model.numClasses = 0;
  ip.model.attention = [false, false];
  ip.model.midAttention = false;
  ip.train.steps = 2;
  const img = path.join(dir, 'img');
  await train({ preset: ip, data: loadBundledMnist(), out: img, workers: 1, backend: 'wasm', quiet: true });
  const vid = path.join(dir, 'from-img');
  const p = tiny(1);
  p.train.lr = 0; // no update: the saved weights are the initial ones
  p.train.weightDecay = 0;
  await trainVideo({ preset: p, out: vid, workers: 1, backend: 'wasm', quiet: true, initImage: img });
  const ic = await loadCheckpoint(img), vc = await loadCheckpoint(vid);
  assert.equal(Array.from(vc.params.subarray(0, ic.ema!.length)), Array.from(ic.ema!), 'spatial weights differ from the image EMA weights');
});

test('--init-video: a concat model warm-started with more context frames computes exactly what the old one did', async () => {
  await ensureWasm();
  const tf = await import('@tensorflow/tfjs');
  const { UNetModel } = await import('../../src/diffusion/model.js');
  const { flatLayout, splitFlat } = await import('../../src/diffusion/model.js');
  const { modelParamSpecs } = await import('../../src/diffusion/arch.js');
  const { extendContextConvIn } = await import('../../src/video/train-video.js');
  const concat = (K: number, steps: number) => {
    const p = tiny(steps);
    p.model.video = { ...p.model.video!, conditioning: 'concat', temporal: [false, false], temporalMid: false, contextFrames: K, frames: K + 1 };
    return p;
  };
  const old = path.join(dir, 'warm-k3');
  await trainVideo({ preset: concat(3, 4), out: old, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 });
  const p5 = concat(5, 1);
  p5.train.lr = 0; // no update: the saved weights are the warm start
  p5.train.weightDecay = 0;
  const wide = path.join(dir, 'warm-k5');
  await trainVideo({ preset: p5, out: wide, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0, initVideo: old });
  const a = await loadCheckpoint(old, { ema: true }), b = await loadCheckpoint(wide);
  assert.is((b.config.training as { initVideo?: { name: string } }).initVideo?.name, 'warm-k3');
  const ma = new UNetModel(a.config.model, splitFlat(flatLayout(modelParamSpecs(a.config.model)), a.ema!));
  const mb = new UNetModel(b.config.model, splitFlat(flatLayout(modelParamSpecs(b.config.model)), b.params));
  try {
    const S = a.config.model.sampleSize, fr = S * S, rng = new Rng(5);
    const win5 = rng.normals(6 * fr); // 5 context frames + 1 target
    const win3 = win5.slice(2 * fr); // the newest 3 context frames + the same target
    const run = (m: InstanceType<typeof UNetModel>, x: Float32Array, n: number, t: number[]) =>
      tf.tidy(() => m.forward(tf.tensor4d(x, [n, S, S, 1]), tf.tensor1d(t)).dataSync() as Float32Array).slice((n - 1) * fr);
    const ya = run(ma, win3, 4, [0, 0, 0, 400]), yb = run(mb, win5, 6, [0, 0, 0, 0, 0, 400]);
    let d = 0, s = 0;
    for (let i = 0; i < fr; i++) { d = Math.max(d, Math.abs(ya[i] - yb[i])); s += Math.abs(ya[i]); }
    assert.ok(s > 1e-3, 'the model output is zero: the comparison would be vacuous');
    assert.ok(d < 1e-5, `warm-started K=5 model differs from the K=3 one by ${d}`);
  } finally { ma.dispose(); mb.dispose(); }
  // the layout rule against a hand-made case: cin 1, K0 1 -> K 2, cout 1: [tgt, ctx] -> [tgt, 0, ctx]
  const w = Float32Array.from({ length: 18 }, (_, i) => i + 1);
  const e = extendContextConvIn(w, 1, 1, 2);
  for (let k = 0; k < 9; k++) assert.equal([e[3 * k], e[3 * k + 1], e[3 * k + 2]], [w[2 * k], 0, w[2 * k + 1]]);
  // refusals: fewer context frames than the source, another trunk, an image checkpoint
  const refused = async (p: ReturnType<typeof tiny>, name: string, re: RegExp, init = old) => {
    let msg = '';
    try { await trainVideo({ preset: p, out: path.join(dir, name), workers: 1, backend: 'wasm', quiet: true, checkEvery: 0, initVideo: init }); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, re);
    assert.not.ok(fs.existsSync(path.join(dir, name)), `${name}: nothing written`);
  };
  await refused(concat(2, 1), 'warm-bad1', /context frames \(3 > 2\)/);
  const other = concat(5, 1); other.model.blockOutChannels = other.model.blockOutChannels.map((c: number) => c * 1.5);
  await refused(other, 'warm-bad2', /blockOutChannels \(8,16 -> 12,24: a warm start may widen every level by one integer factor\)/);
  await refused(tiny(1), 'warm-bad3', /conditioning/);
});

test('widening: a model with 2x the channels per level computes exactly what the narrow one did (concat and temporal attention)', async () => {
  await ensureWasm();
  const tf = await import('@tensorflow/tfjs');
  const { UNetModel } = await import('../../src/diffusion/model.js');
  const { modelParamSpecs } = await import('../../src/diffusion/arch.js');
  const { widenParams, widenTensor } = await import('../../src/video/widen.js');
  const attn = tiny(1).model; // temporal attention at both levels and in the middle, 2 heads
  const cat = { ...attn, attention: [false, true], midAttention: true, video: { ...attn.video!, conditioning: 'concat' as const, temporal: [false, false], temporalMid: false, contextFrames: 3, frames: 4 } };
  for (const [label, narrow] of [['attention', attn], ['concat', cat]] as const) {
    const wide = { ...narrow, blockOutChannels: narrow.blockOutChannels.map((c) => 2 * c) };
    // every parameter random (to_out and the relative position bias too), so no block is a trivial identity
    const rng = new Rng(11), old = new Map<string, Float32Array>();
    for (const s of modelParamSpecs(narrow)) old.set(s.name, Float32Array.from(rng.normals(s.shape.reduce((a, b) => a * b, 1)), (v) => 0.3 * v));
    const w = widenParams(modelParamSpecs(narrow), old, modelParamSpecs(wide), 2, 0);
    const ma = new UNetModel(narrow, old), mb = new UNetModel(wide, w);
    try {
      const S = narrow.sampleSize, F = narrow.video!.frames, x = new Rng(12).normals(2 * F * S * S);
      const t = Array.from({ length: 2 * F }, (_, i) => (i % F < narrow.video!.contextFrames && label === 'concat' ? 0 : 100 + 37 * i));
      const run = (m: InstanceType<typeof UNetModel>) => tf.tidy(() => m.forward(tf.tensor4d(x, [2 * F, S, S, 1]), tf.tensor1d(t)).dataSync() as Float32Array);
      const ya = run(ma), yb = run(mb);
      const d = maxAbsDiff(ya, yb), s = Math.max(...Array.from(ya, Math.abs));
      assert.ok(s > 0.1, `${label}: the output is near zero: the comparison would be vacuous`);
      assert.ok(d < 2e-5 * s, `${label}: the widened model differs by ${d} (output scale ${s})`);
    } finally { ma.dispose(); mb.dispose(); }
    // the copies of an input get unequal shares (symmetry broken) that sum to the old weight
    const c1 = w.get('down_blocks.1.resnets.0.conv2.weight')!, o1 = old.get('down_blocks.1.resnets.0.conv2.weight')!;
    const C = narrow.blockOutChannels[1], W = 2 * C; // [3,3,C,C] -> [3,3,2C,2C]
    let unequal = 0;
    for (let k = 0; k < 9; k++) for (let i = 0; i < C; i++) for (let o = 0; o < W; o++) {
      const a = c1[(k * W + 2 * i) * W + o], b = c1[(k * W + 2 * i + 1) * W + o], ref = o1[(k * C + i) * C + (o >> 1)];
      assert.ok(Math.abs(a + b - ref) < 1e-6, 'the shares do not sum to the old weight');
      if (Math.abs(a - b) > 1e-3 * Math.abs(ref)) unequal++;
    }
    assert.ok(unequal > 0.9 * 9 * C * W, `${label}: only ${unequal} input pairs have unequal shares`);
  }
  // hand-made case: linear [1 in, 2 out] -> [1, 4]: outputs interleaved copies, an unwidened input axis copied
  assert.equal(Array.from(widenTensor('l.weight', Float32Array.of(3, 5), [1, 2], [1, 4], 2, new Rng(0))), [3, 3, 5, 5]);
  const q = widenTensor('a.to_q.bias', Float32Array.of(2), [1], [2], 2, new Rng(0));
  assert.ok(Math.abs(q[0] - Math.SQRT2) < 1e-6 && q[0] === q[1], 'queries scaled by 1/sqrt(f)');
  assert.throws(() => widenTensor('x.weight', new Float32Array(4), [2, 2], [2, 3], 2, new Rng(0)), /cannot widen to \[2,3\] by 2/);
  assert.throws(() => widenTensor('x.rel', new Float32Array(6), [2, 3, 1], [2, 6, 1], 2, new Rng(0)), /only channel axes widen/);
});

test('--init-video --channels: train-video widens the warm start, records it, and refuses a non-integer factor', async () => {
  await ensureWasm();
  const tf = await import('@tensorflow/tfjs');
  const { UNetModel, flatLayout, splitFlat } = await import('../../src/diffusion/model.js');
  const { modelParamSpecs } = await import('../../src/diffusion/arch.js');
  const concat = (steps: number, ch: number[]) => {
    const p = tiny(steps);
    p.model.blockOutChannels = ch;
    p.model.video = { ...p.model.video!, conditioning: 'concat', temporal: [false, false], temporalMid: false, contextFrames: 3, frames: 4 };
    return p;
  };
  const old = path.join(dir, 'widen-src');
  await trainVideo({ preset: concat(6, [8, 16]), out: old, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 });
  const pw = concat(1, [16, 32]);
  Object.assign(pw.train, { lr: 0, weightDecay: 0 });
  const wide = path.join(dir, 'widen-dst');
  await trainVideo({ preset: pw, out: wide, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0, initVideo: old });
  const a = await loadCheckpoint(old, { ema: true }), b = await loadCheckpoint(wide);
  assert.equal((b.config.training as { initVideo?: { name: string; widenedFrom?: number[] } }).initVideo, { name: 'widen-src', emaSha256: (b.config.training as any).initVideo.emaSha256, widenedFrom: [8, 16] });
  assert.equal(b.config.model.blockOutChannels, [16, 32]);
  const ma = new UNetModel(a.config.model, splitFlat(flatLayout(modelParamSpecs(a.config.model)), a.ema!));
  const mb = new UNetModel(b.config.model, splitFlat(flatLayout(modelParamSpecs(b.config.model)), b.params));
  try {
    const S = a.config.model.sampleSize, x = new Rng(7).normals(4 * S * S);
    const run = (m: InstanceType<typeof UNetModel>) => tf.tidy(() => m.forward(tf.tensor4d(x, [4, S, S, 1]), tf.tensor1d([0, 0, 0, 500])).dataSync() as Float32Array).slice(3 * S * S);
    const ya = run(ma), yb = run(mb);
    const d = maxAbsDiff(ya, yb), s = Math.max(...Array.from(ya, Math.abs));
    assert.ok(s > 1e-3 && d < 2e-5 * s, `the widened checkpoint differs by ${d} (scale ${s})`);
  } finally { ma.dispose(); mb.dispose(); }
  // the CLI flag: bad values are one line and write nothing
  const bad = spawnSync(process.execPath, [CLI, 'train-video', '--preset', 'mmnist-tiny', '--channels', '8,15', '--steps', '1', '--out', path.join(dir, 'widen-bad')], { encoding: 'utf8' });
  assert.is(bad.status, 2);
  assert.match(bad.stderr.trim(), /^driftlab: error: --channels must be 2 positive integers divisible by the 4 norm groups, for example 16,32; got 8,15$/);
  assert.not.ok(fs.existsSync(path.join(dir, 'widen-bad')));
});

test('--context-level: a warm start from a plain concat model computes exactly the old model; the flag is refused without context noise or concat', async () => {
  await ensureWasm();
  const tf = await import('@tensorflow/tfjs');
  const { UNetModel, flatLayout, splitFlat } = await import('../../src/diffusion/model.js');
  const { modelParamSpecs } = await import('../../src/diffusion/arch.js');
  const concat = (steps: number, level: boolean) => {
    const p = tiny(steps);
    p.model.video = { ...p.model.video!, conditioning: 'concat', temporal: [false, false], temporalMid: false, contextFrames: 3, frames: 4, ...(level ? { contextLevel: true } : {}) };
    return p;
  };
  const old = path.join(dir, 'lvl-plain');
  await trainVideo({ preset: concat(4, false), out: old, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 });
  const pl = concat(1, true);
  Object.assign(pl.train, { lr: 0, weightDecay: 0, maxContextT: 200 });
  const lvl = path.join(dir, 'lvl-warm');
  await trainVideo({ preset: pl, out: lvl, workers: 1, backend: 'wasm', quiet: true, checkEvery: 0, initVideo: old });
  const a = await loadCheckpoint(old, { ema: true }), b = await loadCheckpoint(lvl);
  assert.is(b.config.model.video!.contextLevel, true);
  const ma = new UNetModel(a.config.model, splitFlat(flatLayout(modelParamSpecs(a.config.model)), a.ema!));
  const mb = new UNetModel(b.config.model, splitFlat(flatLayout(modelParamSpecs(b.config.model)), b.params));
  try {
    const S = a.config.model.sampleSize, fr = S * S, x = new Rng(6).normals(4 * fr);
    const run = (m: InstanceType<typeof UNetModel>, t: number[]) => tf.tidy(() => m.forward(tf.tensor4d(x, [4, S, S, 1]), tf.tensor1d(t)).dataSync() as Float32Array).slice(3 * fr);
    const ya = run(ma, [120, 120, 120, 400]), yb = run(mb, [120, 120, 120, 400]);
    let d = 0, s = 0;
    for (let i = 0; i < fr; i++) { d = Math.max(d, Math.abs(ya[i] - yb[i])); s += Math.abs(ya[i]); }
    assert.ok(s > 1e-3, 'the model output is zero: the comparison would be vacuous');
    assert.ok(d < 1e-6, `the warm-started level model differs from the plain one by ${d}`);
  } finally { ma.dispose(); mb.dispose(); }
  for (const [p, name, re] of [[concat(1, true), 'lvl-bad1', /--context-level needs --context-noise N > 0/], [(() => { const q = tiny(1); q.model.video = { ...q.model.video!, contextLevel: true }; q.train.maxContextT = 100; return q; })(), 'lvl-bad2', /needs a concat-conditioned preset/]] as const) {
    let msg = '';
    try { await trainVideo({ preset: p, out: path.join(dir, name), workers: 1, backend: 'wasm', quiet: true, checkEvery: 0 }); } catch (e) { msg = (e as Error).message; }
    assert.match(msg, re);
    assert.not.ok(fs.existsSync(path.join(dir, name)), `${name}: nothing written`);
  }
});

test('train-video CLI: recipe flags reach config.json; bad values are one error line and write nothing', () => {
  const out = path.join(dir, 'cli-flags');
  const r = spawnSync(process.execPath, [CLI, 'train-video', '--preset', 'mmnist-tiny', '--steps', '2', '--workers', '1', '--out', out, '--seed', '4',
    '--context-dropout', '0.25', '--independent-t', '--joint', '0.5', '--context-frames', '4', '--context-jitter', '1.5', '--overlap-oversample', '0.5', '--overlap-near', '12', '--overlap-frames', '3', '--prediction', 'x0', '--loss-weighting', 'min-snr', '--snr-gamma', '2', '--check-every', '0'], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
  assert.equal(cfg.objective, { prediction: 'x0', weighting: 'min-snr', snrGamma: 2 });
  assert.is(cfg.training.contextDropout, 0.25);
  assert.is(cfg.training.independentT, true);
  assert.is(cfg.training.joint, 0.5);
  assert.is(cfg.training.contextJitter, 1.5);
  assert.equal([cfg.training.overlapOversample, cfg.training.overlapNear, cfg.training.overlapFrames], [0.5, 12, 3]);
  assert.equal([cfg.model.video.contextFrames, cfg.model.video.frames], [4, 7], '--context-frames keeps the 3 targets of mmnist-tiny');
  assert.not.ok(fs.existsSync(path.join(out, 'context-use.jsonl')), '--check-every 0 logs no check');
  for (const [flag, value, re] of [['--context-dropout', '1', /--context-dropout must be in \[0, 1\)/], ['--snr-gamma', '0', /--snr-gamma must be > 0/], ['--context-jitter', '-1', /--context-jitter must be in/], ['--prediction', 'noise', /prediction/], ['--context-level', 'true', /--context-level needs a concat-conditioned preset/], ['--joint', '1.5', /--joint must be in \[0, 1\]/], ['--overlap-oversample', '2', /--overlap-oversample must be in \[0, 1\]/], ['--overlap-near', '0', /--overlap-near must be > 0/], ['--overlap-frames', '9', /--overlap-frames must be an integer in 1\.\.\d+ \(the context frames\), got 9/]] as const) {
    const bad = path.join(dir, `cli-bad${flag}`);
    const b = spawnSync(process.execPath, [CLI, 'train-video', '--preset', 'mmnist-tiny', '--steps', '1', '--workers', '1', '--out', bad, flag, value], { encoding: 'utf8' });
    assert.ok(b.status !== 0, `${flag} ${value} accepted`);
    assert.match(b.stderr, re);
    assert.not.ok(fs.existsSync(bad), `${flag} ${value}: nothing written`);
  }
});

test.run();
