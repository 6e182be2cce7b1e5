/**
 * In-loop correctors (the per-denoising-step hook): each one's neutral setting is the plain
 * sampler to the byte, each one's rule checked against an independent computation of its
 * equation, no tensor leaks, and resumes that continue the same stream.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { tinyVideoPipeline } from '../helpers/video.js';
import { tempDir, throwsDriftlab } from '../helpers/common.js';
import { rollout } from '../../src/video/rollout.js';
import { continueClips, WindowStep, WindowStepHook } from '../../src/video/sample-clip.js';
import { UNetModel } from '../../src/diffusion/model.js';
import { makeCorrector } from '../../src/drift/correctors/index.js';
import { correctorContext } from '../../src/drift/context.js';
import { predictX0Eps } from '../../src/diffusion/samplers.js';
import { Rng } from '../../src/util/rng.js';
import { Pipeline, loadPipeline } from '../../src/diffusion/pipeline.js';

const dir = tempDir('driftlab-inloop-');
const tiny = tinyVideoPipeline(dir);
const K = 3, F = 6, S = 16, B = 2, N = F - K, fr = S * S;
const context = new Rng(11).normals(B * K * fr).map((v) => Math.tanh(v));

async function roll(out: string, corrector: string, config: Record<string, unknown> = {}, horizon = 4, resume = false) {
  const p = await tiny.pipeline();
  const rng = new Rng(1).fork('corrector');
  const c = makeCorrector(corrector, correctorContext(p, rng, K), config);
  await rollout({ rollouts: B, horizon, context: K, chunk: 2, sampler: 'ddim', steps: 3, eta: 0, seed: 1, pipeline: p, corrector: c, out, checkpoint: tiny.ckpt, correctorRng: rng, quiet: true, resume });
  return fs.readFileSync(path.join(out, 'frames.npy'));
}

/** one window through continueClips with a corrector's hook (or none), seeded identically */
async function window(corrector: string | null, config: Record<string, unknown>, o: { steps?: number; startT?: number; clipX0?: boolean; pipeline?: Pipeline } = {}) {
  const p = o.pipeline ?? (await tiny.pipeline());
  const c = corrector ? makeCorrector(corrector, correctorContext(p, new Rng(3), K), config) : null;
  c?.reset(context, B, K);
  const onStep: WindowStepHook | undefined = c?.denoiseStep ? (s) => c.denoiseStep!(s, { generated: 0, recent: () => [] }) : undefined;
  const startFrom = o.startT === undefined ? undefined : { x: new Rng(9).normals(B * N * fr), t: o.startT };
  return continueClips(p.net, p.schedule, p.config.objective.prediction, context, B, K, F, S, {
    sampler: 'ddim', steps: o.steps ?? 1, clipX0: o.clipX0 ?? true, rng: new Rng(2), onStep, startFrom,
  });
}

/** raw network estimates for targets x at t beside a context tensor [B,K,S,S,1] (the test's own window) */
async function estimates(c5: tf.Tensor5D, x: Float32Array, t: number, tc: number) {
  const p = await tiny.pipeline();
  const win = tf.tidy(() => tf.concat([c5, tf.tensor5d(x, [B, N, S, S, 1])], 1).reshape([B * F, S, S, 1]) as tf.Tensor4D);
  const tRow = new Float32Array(B * F).map((_, i) => (i % F < K ? tc : t));
  const out = await p.net(win, tRow);
  const r = tf.tidy(() => {
    const tgt = tf.slice(out.reshape([B, F, S, S, 1]), [0, K, 0, 0, 0], [B, N, S, S, 1]).reshape([B * N, S, S, 1]) as tf.Tensor4D;
    const e = predictX0Eps(p.config.objective.prediction, tgt, tf.tensor4d(x, [B * N, S, S, 1]), p.schedule.alphasCumprod[t]);
    return { x0: e.x0.dataSync().slice(), eps: e.eps.dataSync().slice() };
  });
  win.dispose();
  out.dispose();
  return r;
}

test('neutral settings reproduce the plain sampler byte for byte (rollouts and windows)', async () => {
  const plain = await roll(path.join(dir, 'none'), 'none');
  for (const [name, cfg] of [['history-guidance', { w: 1 }], ['reconstruction-guidance', { scale: 0 }], ['anchor', { strength: 0, t: 999 }]] as const) {
    assert.ok((await roll(path.join(dir, `neutral-${name}`), name, cfg)).equals(plain), `${name} ${JSON.stringify(cfg)} changed the rollout`);
    const ref = await window(null, {}, { steps: 3 });
    assert.equal(Array.from(await window(name, cfg, { steps: 3 })), Array.from(ref), `${name}: window differs`);
  }
  // and the non-neutral settings do change it (the hook is really called)
  for (const [name, cfg] of [['history-guidance', { w: 3 }], ['reconstruction-guidance', { scale: 50 }], ['anchor', { strength: 1, t: 999 }]] as const) {
    assert.not.ok((await roll(path.join(dir, `active-${name}`), name, cfg)).equals(plain), `${name} ${JSON.stringify(cfg)} had no effect`);
  }
});

test('history-guidance: eps = eps(blank) + w (eps(context) - eps(blank)), computed independently', async () => {
  const p = await tiny.pipeline();
  const w = 2.5, T = p.schedule.T, a0 = Math.sqrt(p.schedule.alphasCumprod[0]), c0 = Math.sqrt(1 - p.schedule.alphasCumprod[0]);
  const got = await window('history-guidance', { w }, { clipX0: false });
  // the sampler's draws: context noise (contextT = 0), then x_T
  const r = new Rng(2), e = r.normals(context.length), xT = r.normals(B * N * fr);
  const seen = context.map((v, i) => a0 * v + c0 * e[i]);
  const blank = context.map((_, i) => a0 * -1 + c0 * e[i]);
  const cond = await estimates(tf.tensor5d(seen, [B, K, S, S, 1]), xT, T - 1, 0);
  const none = await estimates(tf.tensor5d(blank, [B, K, S, S, 1]), xT, T - 1, 0);
  const ab = p.schedule.alphasCumprod[T - 1];
  let maxErr = 0, moved = 0;
  for (let i = 0; i < got.length; i++) {
    const eps = none.eps[i] + w * (cond.eps[i] - none.eps[i]);
    const x0 = (xT[i] - Math.sqrt(1 - ab) * eps) / Math.sqrt(ab); // one DDIM step to the end: x_prev = x0
    // compared in eps space: x0 = (x - sqrt(1-abar) eps) / sqrt(abar) multiplies float32 rounding by 1/sqrt(abar) ~ 150 at t = T-1
    const epsGot = (xT[i] - Math.sqrt(ab) * got[i]) / Math.sqrt(1 - ab);
    maxErr = Math.max(maxErr, Math.abs(epsGot - eps) / Math.max(1, Math.abs(eps)));
    moved = Math.max(moved, Math.abs(eps - cond.eps[i]));
  }
  assert.ok(maxErr < 1e-4, `guided window differs from the equation by ${maxErr}`);
  assert.ok(moved > 1e-2, `guidance moved eps by only ${moved} (the test would not see a wrong rule)`);
});

test('reconstruction-guidance: the x0 shift is -(scale sqrt(abar)/2) grad of the context error (finite differences)', async () => {
  const p = await tiny.pipeline();
  const t = 400, scale = 3, ab = p.schedule.alphasCumprod[t];
  const plain = await window(null, {}, { startT: t, clipX0: false });
  const got = await window('reconstruction-guidance', { scale }, { startT: t, clipX0: false });
  const g = got.map((v, i) => ((plain[i] - v) * 2) / (scale * Math.sqrt(ab))); // the gradient the corrector used
  // the error as a function of the targets, built here from the equation: fresh e from the corrector's stream
  const e = new Rng(3).normals(context.length);
  const za = tf.tensor5d(context.map((v, i) => Math.sqrt(ab) * v + Math.sqrt(1 - ab) * e[i]), [B, K, S, S, 1]);
  const xb = new Rng(9).normals(B * N * fr);
  const err = async (x: Float32Array) => {
    const win = tf.tidy(() => tf.concat([za, tf.tensor5d(x, [B, N, S, S, 1])], 1).reshape([B * F, S, S, 1]) as tf.Tensor4D);
    const out = await p.net(win, new Float32Array(B * F).fill(t));
    const o = out.dataSync(), wv = win.dataSync();
    win.dispose(); out.dispose();
    let sum = 0;
    for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) for (let i = 0; i < fr; i++) {
      const j = (b * F + k) * fr + i; // eps prediction: x0 = (z - sqrt(1-abar) eps) / sqrt(abar)
      const rec = (wv[j] - Math.sqrt(1 - ab) * o[j]) / Math.sqrt(ab);
      sum += (context[(b * K + k) * fr + i] - rec) ** 2;
    }
    return sum;
  };
  assert.is(p.config.objective.prediction, 'epsilon');
  const v = new Rng(21).normals(xb.length), h = 1e-2;
  const fd = (await err(xb.map((x, i) => x + h * v[i]))) - (await err(xb.map((x, i) => x - h * v[i])));
  const dir = g.reduce((s, gi, i) => s + gi * v[i], 0);
  assert.ok(Math.abs(dir) > 1e-3, `directional derivative ${dir} too small to test`);
  assert.ok(Math.abs(fd / (2 * h) - dir) < 0.05 * Math.abs(dir), `finite difference ${fd / (2 * h)} vs the corrector's gradient ${dir}`);
  za.dispose();
});

test('reconstruction-guidance on the onnx engine (an input-gradient graph, no tfjs backward pass) = the tfjs rule', async () => {
  await tiny.pipeline();
  const onnx = await loadPipeline(tiny.ckpt, 'ema', { engine: 'onnx', threads: 1 });
  try {
    assert.ok(correctorContext(onnx, new Rng(0), K).inputGrad, 'the onnx pipeline gives correctors an input gradient');
    assert.not.ok(correctorContext(await tiny.pipeline(), new Rng(0), K).inputGrad, 'tfjs keeps tf.grad');
    const t = 400, scale = 3;
    const shift = async (pipeline?: Pipeline) => {
      const plain = await window(null, {}, { startT: t, clipX0: false, pipeline });
      const got = await window('reconstruction-guidance', { scale }, { startT: t, clipX0: false, pipeline });
      return plain.map((v, i) => v - got[i]);
    };
    const ref = await shift(), got = await shift(onnx);
    let dd = 0, rr = 0;
    for (let i = 0; i < ref.length; i++) { dd += (got[i] - ref[i]) ** 2; rr += ref[i] ** 2; }
    assert.ok(Math.sqrt(rr) > 1e-3, `the tfjs shift ${Math.sqrt(rr)} is too small to compare`);
    assert.ok(Math.sqrt(dd / rr) < 1e-3, `onnx shift differs from tfjs by ${Math.sqrt(dd / rr)} (relative)`);
    const before = tf.memory().numTensors;
    await window('reconstruction-guidance', { scale }, { steps: 3, pipeline: onnx });
    assert.is(tf.memory().numTensors, before, 'the onnx path leaks tensors');
  } finally {
    await onnx.dispose();
  }
});

test('anchor: strength 1 gives x0 rank-matched to the initial context (values from it, order from the plain x0)', async () => {
  const plain = await window(null, {});
  const got = await window('anchor', { strength: 1, t: 999 });
  for (let b = 0; b < B; b++) {
    const vals = Array.from(context.slice(b * K * fr, (b + 1) * K * fr));
    const near = (v: number) => vals.some((c) => Math.abs(c - v) < 1e-6); // x0 + 1 (ref - x0) in float32
    for (let j = 0; j < N; j++) {
      const o = (b * N + j) * fr;
      for (let i = 0; i < fr; i++) assert.ok(near(got[o + i]), `${got[o + i]} is not a value of the initial context`);
      for (let i = 0; i < fr; i++) for (let k = 0; k < fr; k += 7) {
        if (plain[o + i] < plain[o + k]) assert.ok(got[o + i] <= got[o + k] + 1e-6, 'rank order of the plain x0 not kept');
      }
    }
  }
});

test('no tensor leaks; anchor and reconstruction guidance resume exactly; bad config is one clear line', async () => {
  for (const [name, cfg] of [['history-guidance', { w: 2 }], ['reconstruction-guidance', { scale: 2 }], ['anchor', { strength: 0.5, t: 999 }]] as const) {
    await window(name, cfg, { steps: 2 });
    const before = tf.memory().numTensors;
    await window(name, cfg, { steps: 3 });
    assert.is(tf.memory().numTensors, before, `${name} leaks tensors`);
  }
  for (const [name, cfg] of [['anchor', { strength: 0.7, t: 999 }], ['reconstruction-guidance', { scale: 5 }]] as const) {
    const full = await roll(path.join(dir, `full-${name}`), name, cfg, 8);
    await roll(path.join(dir, `part-${name}`), name, cfg, 4);
    assert.ok((await roll(path.join(dir, `part-${name}`), name, cfg, 8, true)).equals(full), `${name}: resumed rollout differs`);
  }
  const p = await tiny.pipeline();
  throwsDriftlab(() => makeCorrector('history-guidance', correctorContext(p, new Rng(0)), { w: -1 }), /history-guidance: "w" must be/);
  // a model trained without context dropout has no "no context" prediction to guide with
  const noDrop = { ...correctorContext(p, new Rng(0)), trainedContextDropout: 0 };
  throwsDriftlab(() => makeCorrector('history-guidance', noDrop, { w: 2 }), /trained without context dropout/);
  makeCorrector('history-guidance', noDrop, { w: 1 }); // the neutral setting never asks it
  makeCorrector('history-guidance', noDrop, { w: 2, force: true });
  assert.is(correctorContext(p, new Rng(0)).trainedContextDropout, 0.1, 'the training record reaches the corrector context');
  throwsDriftlab(() => makeCorrector('reconstruction-guidance', correctorContext(p, new Rng(0)), { scale: 'x' }), /reconstruction-guidance: "scale" must be/);
  throwsDriftlab(() => makeCorrector('anchor', correctorContext(p, new Rng(0)), { strength: 2 }), /anchor: "strength" must be/);
});

test('reconstruction-guidance refuses a model whose guidance gradient is zero (concat conditioning, causal or no temporal attention) instead of acting as none', async () => {
  const p = await tiny.pipeline();
  const ctx = correctorContext(p, new Rng(0), K);
  assert.equal(ctx.window, { conditioning: 'attention', causal: false, temporalLayers: 3 }, 'the tiny model: 2 temporal levels + the middle');
  makeCorrector('reconstruction-guidance', ctx, { scale: 2 }); // fine on it
  assert.is(ctx.trainedJoint, 0.5, 'the training record (joint windows) reaches the corrector context');
  const noJoint = { ...ctx, trainedJoint: 0 };
  throwsDriftlab(() => makeCorrector('reconstruction-guidance', noJoint, { scale: 2 }), /trained without joint windows \(training.joint 0\).*--joint 0.5, or set \{"force": true\}/);
  makeCorrector('reconstruction-guidance', noJoint, { scale: 2, force: true });
  makeCorrector('reconstruction-guidance', noJoint, { scale: 0 }); // the plain sampler needs nothing
  const cases: [Partial<NonNullable<typeof ctx.window>>, RegExp][] = [
    [{ conditioning: 'concat' }, /concat conditioning/],
    [{ causal: true }, /causal temporal attention/],
    [{ temporalLayers: 0 }, /no temporal attention/],
  ];
  for (const [w, re] of cases) {
    const c = { ...ctx, window: { ...ctx.window!, ...w } };
    throwsDriftlab(() => makeCorrector('reconstruction-guidance', c, { scale: 2 }), re, JSON.stringify(w));
    throwsDriftlab(() => makeCorrector('reconstruction-guidance', c, { scale: 2 }), /the guidance gradient is zero; use a model with non-causal temporal attention/);
    makeCorrector('reconstruction-guidance', c, { scale: 0 }); // the neutral setting stays allowed (it is the plain sampler anyway)
  }
  // the premise. Causal, with the corrector's own code: the x0 shift is exactly zero on a causal model (fresh
  // weights) and not on the attention model (a hand-built context has no `window`, so nothing is refused)
  const t = 500, abar = p.schedule.alphasCumprod[t];
  const shift = async (model: UNetModel) => {
    const c = makeCorrector('reconstruction-guidance', { ...ctx, window: undefined, differentiable: (w, tt) => model.forward(w, tf.tensor1d(tt)) }, { scale: 2 });
    const x = tf.tensor4d(new Rng(5).normals(B * N * fr), [B * N, S, S, 1]), x0 = tf.zeros([B * N, S, S, 1]) as tf.Tensor4D;
    const step = { i: 0, n: 1, t, tPrev: -1, abar, x, x0, eps: x, context, contextSeen: null, contextT: 0, B, K, F, S, clipX0: false } as unknown as WindowStep;
    const fix = (await c.denoiseStep!(step, { generated: 0, recent: () => [] }))!;
    const m = tf.tidy(() => tf.max(tf.abs(fix.x0!)).dataSync()[0]);
    tf.dispose([x, x0, fix.x0!]);
    return m;
  };
  const video = p.config.model.video!;
  const causal = new UNetModel({ ...p.config.model, video: { ...video, causal: true } }, 1);
  // concat: the model's output rows for the context are zeros whatever the targets, so the context error cannot depend on them
  const concat = new UNetModel({ ...p.config.model, video: { ...video, conditioning: 'concat' } }, 1);
  try {
    assert.is(await shift(causal), 0, 'causal: the guidance moved x0');
    assert.ok((await shift(p.model)) > 1e-6, 'attention: the guidance did not move x0 (the zero above would show nothing)');
    const ctxRows = (targets: Float32Array) => tf.tidy(() => {
      const win = tf.concat([tf.tensor5d(context, [B, K, S, S, 1]), tf.tensor5d(targets, [B, N, S, S, 1])], 1).reshape([B * F, S, S, 1]) as tf.Tensor4D;
      const out = concat.forward(win, tf.fill([B * F], t) as tf.Tensor1D).reshape([B, F, S * S]);
      return { rows: Array.from(tf.slice(out, [0, 0, 0], [B, K, S * S]).dataSync()), targets: Array.from(tf.slice(out, [0, K, 0], [B, N, S * S]).dataSync()) };
    });
    const a = ctxRows(new Rng(6).normals(B * N * fr)), b = ctxRows(new Rng(7).normals(B * N * fr));
    assert.ok(a.rows.every((v) => v === 0) && b.rows.every((v) => v === 0), 'concat: the context rows are not zeros');
    assert.ok(a.targets.some((v, i) => v !== b.targets[i]), 'concat: the target rows ignore the targets (the check above would show nothing)');
  } finally {
    concat.dispose();
    causal.dispose();
  }
});

test.run();
