/**
 * The `kalman` corrector: the filter against the textbook recursion worked out by hand (1-D and
 * 2-D systems), the least-squares fit of a simulated linear system, PCA of a planted subspace,
 * and the corrector's contracts on real Moving-MNIST clips (shape, range, determinism, denoising,
 * save/load, refusing another model, resume state).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rejectsDriftlab, tempDir, throwsDriftlab } from '../helpers/common.js';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import { clipWindow } from '../../src/video/clips.js';
import type { ClipSet, CorrectorContext, FrameBatch } from '../../src/drift/corrector.js';
import { StateSpace, fitAutoregression, predict, update } from '../../src/drift/kalman-math.js';
import { fitPca, meanAndCovariance, project } from '../../src/drift/pca.js';
import { symmetricEig } from '../../src/eval/frechet.js';
import { KalmanCorrector, measurementNoiseFromModel, type WindowGenerator } from '../../src/drift/correctors/kalman.js';
import { correctorContext } from '../../src/drift/context.js';
import { tinyVideoPipeline } from '../helpers/video.js';
import { listCorrectors } from '../../src/drift/registry.js';
import { Rng } from '../../src/util/rng.js';

const f64 = (...v: number[]) => Float64Array.from(v);
function near(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, msg: string): void {
  assert.is(got.length, want.length, `${msg}: length`);
  for (let i = 0; i < want.length; i++) {
    assert.ok(Math.abs(got[i] - want[i]) <= tol, `${msg}[${i}]: got ${got[i]}, want ${want[i]} (tol ${tol})`);
  }
}

/** Run predict/update over ys and compare every intermediate with the hand-worked numbers. */
function checkSteps(ss: StateSpace, x0: Float64Array, P0: Float64Array, steps: { y: number[]; xPred: number[]; PPred: number[]; K: number[]; x: number[]; P: number[] }[], label: string) {
  let x = x0, P = P0;
  steps.forEach((s, k) => {
    const pr = predict(ss, x, P);
    near(pr.x, s.xPred, 1e-12, `${label} step ${k + 1} x-`);
    near(pr.P, s.PPred, 1e-12, `${label} step ${k + 1} P-`);
    const up = update(ss, pr.x, pr.P, s.y);
    near(up.K, s.K, 1e-12, `${label} step ${k + 1} K`);
    near(up.x, s.x, 1e-12, `${label} step ${k + 1} x`);
    near(up.P, s.P, 1e-12, `${label} step ${k + 1} P`);
    x = up.x; P = up.P;
  });
}

test('1-D filter matches the textbook recursion worked by hand', () => {
  // A = 0.9, Q = 0.5, H = 1, R = 2; x0 = 1, P0 = 1; y = 1.5, 0.2, -0.7
  const ss: StateSpace = { n: 1, m: 1, A: f64(0.9), Q: f64(0.5), H: f64(1), R: f64(2) };
  checkSteps(ss, f64(1), f64(1), [
    // x- = 0.9*1 = 0.9; P- = 0.81*1 + 0.5 = 1.31; K = 1.31/(1.31+2) = 131/331
    // x = 0.9 + (131/331)(1.5 - 0.9) = 753/662; P = (1 - 131/331) 1.31 = 262/331
    { y: [1.5], xPred: [0.9], PPred: [1.31], K: [131 / 331], x: [753 / 662], P: [262 / 331] },
    // x- = 0.9*753/662; P- = 0.81*262/331 + 0.5; K = P-/(P-+2) = 9443/25993
    { y: [0.2], xPred: [0.9 * 753 / 662], PPred: [0.81 * 262 / 331 + 0.5], K: [9443 / 25993], x: [188311 / 259930], P: [18886 / 25993] },
    { y: [-0.7], xPred: [0.9 * 188311 / 259930], PPred: [0.81 * 18886 / 25993 + 0.5], K: [353677 / 1003502], x: [3522517 / 20070040], P: [353677 / 501751] },
  ], '1-D');
});

test('2-D constant-velocity filter (scalar position measurements) matches the hand recursion', () => {
  // state [position, velocity]; A = [[1,1],[0,1]], Q = [[0.1,0.05],[0.05,0.2]], H = [1 0], R = 0.5
  const ss: StateSpace = { n: 2, m: 1, A: f64(1, 1, 0, 1), Q: f64(0.1, 0.05, 0.05, 0.2), H: f64(1, 0), R: f64(0.5) };
  checkSteps(ss, f64(0, 1), f64(1, 0, 0, 1), [
    // x- = [0+1, 1] = [1, 1]; P- = A I A' + Q = [[2,1],[1,1]] + Q = [[2.1,1.05],[1.05,1.2]]
    // S = 2.1 + 0.5 = 2.6; K = [2.1, 1.05]/2.6 = [21/26, 21/52]
    // x = [1,1] + K (1.2 - 1) = [151/130, 281/260]; P = (I - K H) P- = [[21/52, 21/104],[21/104, 807/1040]]
    { y: [1.2], xPred: [1, 1], PPred: [2.1, 1.05, 1.05, 1.2], K: [21 / 26, 21 / 52], x: [151 / 130, 281 / 260], P: [21 / 52, 21 / 104, 21 / 104, 807 / 1040] },
    // x- = [151/130 + 281/260, 281/260] = [583/260, 281/260]; P- = A P A' + Q
    {
      y: [1.9], xPred: [583 / 260, 281 / 260],
      PPred: [21 / 52 + 2 * 21 / 104 + 807 / 1040 + 0.1, 21 / 104 + 807 / 1040 + 0.05, 21 / 104 + 807 / 1040 + 0.05, 807 / 1040 + 0.2],
      K: [1751 / 2271, 1069 / 2271], x: [44929 / 22710, 4177 / 4542], P: [1751 / 4542, 1069 / 4542, 1069 / 4542, 5588 / 11355],
    },
    {
      y: [3.4], xPred: [44929 / 22710 + 4177 / 4542, 4177 / 4542],
      PPred: [1751 / 4542 + 2 * 1069 / 4542 + 5588 / 11355 + 0.1, 1069 / 4542 + 5588 / 11355 + 0.05, 1069 / 4542 + 5588 / 11355 + 0.05, 5588 / 11355 + 0.2],
      K: [10964 / 14749, 11771 / 29498], x: [241233 / 73745, 99109 / 88494], P: [5482 / 14749, 11771 / 58996, 11771 / 58996, 135173 / 353976],
    },
  ], '2-D/1');
});

test('2-D state with 2-D correlated measurements matches the hand recursion', () => {
  // A = [[0.5,0.2],[-0.1,0.8]], Q = diag(1/4, 1/8), H = I, R = [[1,1/4],[1/4,1/2]]; x0 = [1,-1], P0 = [[2,1/2],[1/2,1]]
  const ss: StateSpace = { n: 2, m: 2, A: f64(0.5, 0.2, -0.1, 0.8), Q: f64(0.25, 0, 0, 0.125), H: f64(1, 0, 0, 1), R: f64(1, 0.25, 0.25, 0.5) };
  checkSteps(ss, f64(1, -1), f64(2, 0.5, 0.5, 1), [
    // x- = [0.5-0.2, -0.1-0.8] = [0.3, -0.9]; P- = A P0 A' + Q = [[0.89,0.25],[0.25,0.705]]
    // S = P- + R = [[1.89,0.5],[0.5,1.205]]; K = P- S^-1 (2x2 inverse by the adjugate)
    {
      y: [0.6, -0.5], xPred: [0.3, -0.9], PPred: [0.89, 0.25, 0.25, 0.705],
      K: [18949 / 40549, 550 / 40549, -25 / 989, 589 / 989], x: [90347 / 202745, -662 / 989], P: [38173 / 81098, 489 / 3956, 489 / 3956, 1153 / 3956],
    },
    {
      y: [0.2, 0.1], xPred: [0.5 * 90347 / 202745 - 0.2 * 662 / 989, -0.1 * 90347 / 202745 - 0.8 * 662 / 989],
      PPred: [0.40405571037510174, 0.0700695454881748, 0.0700695454881748, 0.29646131840489287],
      K: [242797369 / 823819069, -25095275 / 823819069, -31693550 / 823819069, 319381019 / 823819069],
      x: [415838049 / 4119095345, -2641823261 / 8238190690],
      P: [946094201 / 3295276276, 192606819 / 3295276276, 192606819 / 3295276276, 151767122 / 823819069],
    },
  ], '2-D/2');
});

test('least squares recovers A and Q of a simulated second-order linear system', () => {
  // z_{t+1} = W1 z_t + W2 z_{t-1} + w, w ~ N(0, Qz), d = 2 (state 4), stable
  const d = 2, W1 = [[1.2, 0.1], [-0.1, 1.0]], W2 = [[-0.5, 0], [0, -0.3]];
  const Qz = [[0.04, 0.01], [0.01, 0.09]];
  const L = [[0.2, 0], [0.05, Math.sqrt(0.09 - 0.05 ** 2)]]; // L L' = Qz
  const m = 200, t = 60, rng = new Rng(11);
  const z = new Float64Array(m * t * d);
  for (let c = 0; c < m; c++) {
    const o = c * t * d;
    for (let j = 0; j < 2 * d; j++) z[o + j] = rng.normal();
    for (let s = 1; s < t - 1; s++) {
      const g = [rng.normal(), rng.normal()];
      for (let i = 0; i < d; i++) {
        let v = L[i][0] * g[0] + L[i][1] * g[1];
        for (let j = 0; j < d; j++) v += W1[i][j] * z[o + s * d + j] + W2[i][j] * z[o + (s - 1) * d + j];
        z[o + (s + 1) * d + i] = v;
      }
    }
  }
  const ar = fitAutoregression(z, m, t, d, 2, 0);
  assert.is(ar.pairs, m * (t - 2));
  // coefficients: standard error ~ 0.2 / sqrt(11600 * var z) < 0.005; allow 0.02
  near(ar.W, [W1[0][0], W1[0][1], W2[0][0], W2[0][1], W1[1][0], W1[1][1], W2[1][0], W2[1][1]], 0.02, 'W');
  // covariance: relative standard error ~ sqrt(2/11600) ~ 1.3%; allow 0.004 absolute (~5-10%)
  near(ar.Qz, [Qz[0][0], Qz[0][1], Qz[1][0], Qz[1][1]], 0.004, 'Qz');
  // companion form: A = [[W1 W2],[I 0]], Q = blockdiag(Qz, 0)
  const n = 4;
  near(ar.A.subarray(2 * n), [1, 0, 0, 0, 0, 1, 0, 0], 0, 'A shift block');
  near(ar.Q.subarray(2 * n), new Float64Array(2 * n), 0, 'Q lower rows');
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) assert.is(ar.A[i * n + j], ar.W[i * n + j]);
  // a ridge shrinks the coefficients towards 0
  const shrunk = fitAutoregression(z, m, t, d, 2, 0.5);
  const norm = (w: Float64Array) => w.reduce((s, v) => s + v * v, 0);
  assert.ok(norm(shrunk.W) < norm(ar.W), 'ridge did not shrink W');
});

test('PCA recovers a planted subspace and matches a dense eigendecomposition', () => {
  const D = 64, d = 5, N = 2000, rng = new Rng(21);
  const vars = [9, 6, 4, 2.5, 1.5];
  // planted orthonormal basis: Gram-Schmidt of random vectors
  const B: number[][] = [];
  for (let j = 0; j < d; j++) {
    const v = Array.from({ length: D }, () => rng.normal());
    for (const b of B) { const dot = b.reduce((s, bi, i) => s + bi * v[i], 0); for (let i = 0; i < D; i++) v[i] -= dot * b[i]; }
    const nv = Math.hypot(...v);
    B.push(v.map((x) => x / nv));
  }
  const mean = Array.from({ length: D }, () => rng.normal());
  const x = new Float32Array(N * D);
  for (let r = 0; r < N; r++) {
    const g = vars.map((v) => Math.sqrt(v) * rng.normal());
    for (let i = 0; i < D; i++) {
      let s = mean[i] + 0.05 * rng.normal();
      for (let j = 0; j < d; j++) s += B[j][i] * g[j];
      x[r * D + i] = s;
    }
  }
  const p = fitPca(x, N, D, d, { seed: 3 });
  assert.ok(p.converged, `subspace iteration did not converge (residual ${p.residual})`);
  // orthonormal columns
  for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) {
    let s = 0;
    for (let i = 0; i < D; i++) s += p.U[i * d + a] * p.U[i * d + b];
    assert.ok(Math.abs(s - (a === b ? 1 : 0)) < 1e-10, `U'U[${a},${b}] = ${s}`);
  }
  // the planted subspace: |B U|_F^2 = d when the spans agree (sampling error ~ noise/signal)
  let overlap = 0;
  for (const b of B) for (let j = 0; j < d; j++) { let s = 0; for (let i = 0; i < D; i++) s += b[i] * p.U[i * d + j]; overlap += s * s; }
  assert.ok(overlap > d - 0.01, `planted subspace overlap ${overlap} of ${d}`);
  p.variances.forEach((v, j) => assert.ok(Math.abs(v / vars[j] - 1) < 0.1, `variance ${j}: ${v} vs planted ${vars[j]}`));
  // against a dense Jacobi eigendecomposition (mathjs) of the same covariance
  const { C } = meanAndCovariance(x, N, D);
  const e = symmetricEig(C, D, false).values; // ascending
  for (let j = 0; j < d; j++) assert.ok(Math.abs(p.variances[j] - e[D - 1 - j]) < 1e-8 * e[D - 1], `eigenvalue ${j}: ${p.variances[j]} vs ${e[D - 1 - j]}`);
  // deterministic under the seed
  const q = fitPca(x, N, D, d, { seed: 3 });
  assert.equal(Array.from(q.U), Array.from(p.U));
});

// ---- the corrector on real Moving-MNIST clips (16x16, as the mmnist-tiny model sees them) ----

const POOL = 4, S = 16, D = S * S;
function realClips(m: number, t: number, split: 'train' | 'test', seed: number): ClipSet {
  const mm = new MovingMnist({ split }, seed);
  const data = new Float32Array(m * t * D);
  for (let k = 0; k < m; k++) data.set(clipWindow(mm, POOL, k, t), k * t * D);
  return { data, m, t, s: S };
}
const ctxOf = (modelId = 'model-a', size = S): CorrectorContext => ({ size, modelId, contextFrames: 3, frames: 6, rng: new Rng(0) } as unknown as CorrectorContext);
const train = realClips(60, 12, 'train', 0);
const held = realClips(4, 16, 'test', 7);
const heldFrame = (b: number, t: number) => held.data.subarray((b * held.t + t) * D, (b * held.t + t + 1) * D);
const contextOf = (n: number, k: number) => {
  const c = new Float32Array(n * k * D);
  for (let b = 0; b < n; b++) for (let t = 0; t < k; t++) c.set(heldFrame(b, t), (b * k + t) * D);
  return c;
};
async function fitted(config: Record<string, unknown> = {}, modelId = 'model-a'): Promise<KalmanCorrector> {
  const c = new KalmanCorrector(ctxOf(modelId), { d: 12, rMeasure: 0.05, ...config });
  await c.fit(train, { seed: 5 });
  return c;
}
/** Random frames in (-1, 1): [n,S,S]. */
const randomFrames = (n: number, seed: number): FrameBatch => ({ n, s: S, data: new Rng(seed).normals(n * D).map((v) => Math.tanh(v)) });

test('kalman is registered; unfitted use and bad settings are one-line errors', () => {
  assert.ok(listCorrectors().some((c) => c.name === 'kalman'), 'kalman is not registered');
  const c = new KalmanCorrector(ctxOf());
  assert.is(c.cfg.rMeasure, 'model', 'R is measured from the model unless a number is given');
  assert.is(new KalmanCorrector(ctxOf(), { rMeasure: 0.3 }).cfg.rMeasure, 0.3);
  throwsDriftlab(() => c.reset(contextOf(2, 3), 2, 3), /not fitted: fit one with 'driftlab fit-corrector kalman --ckpt CKPT --out DIR', or pass --corrector-config '\{"dir": "DIR"\}'/);
  throwsDriftlab(() => c.correct(randomFrames(2, 1)), /driftlab fit-corrector kalman/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { dd: 3 }), /kalman: unknown setting "dd"/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { d: 0 }), /"d" must be a positive integer/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { rMeasure: -1 }), /"rMeasure" must be a positive number or "model"/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { rMeasure: 'data' }), /"rMeasure" must be a positive number or "model", got "data"/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { rClips: 0 }), /"rClips" must be a positive integer/);
  assert.is(c.cfg.rEta, 1, 'R is measured at the rollouts\' default eta');
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { rEta: 1.5 }), /"rEta" must be a DDIM eta in \[0, 1\], got 1.5/);
  throwsDriftlab(() => new KalmanCorrector(ctxOf(), { rEta: 'x' }), /"rEta" must be a DDIM eta in \[0, 1\], got "x"/);
});

test('the corrector keeps shapes and the [-1,1] range and is deterministic under a seed', async () => {
  const outs: Float32Array[] = [];
  for (let k = 0; k < 2; k++) {
    const c = await fitted();
    assert.ok(c.info!.pca.converged);
    c.reset(contextOf(3, 3), 3, 3);
    let last: FrameBatch | null = null;
    for (let step = 0; step < 4; step++) {
      const f = randomFrames(3, 100 + step);
      f.data[0] = 1; f.data[1] = -1; // saturated pixels stay in range
      const r = c.correct(f);
      assert.is(r.n, 3); assert.is(r.s, S); assert.is(r.data.length, 3 * D);
      assert.ok(r.data.every((v) => v >= -1 && v <= 1), 'out of range');
      assert.ok(r.data !== f.data, 'must return a new array');
      last = r;
    }
    outs.push(last!.data);
  }
  assert.equal(Array.from(outs[0]), Array.from(outs[1]), 'not deterministic');
  await rejectsDriftlab(new KalmanCorrector(ctxOf()).fit({ ...train, s: 32 }), /clips are 32x32, the model makes 16x16/);
  await rejectsDriftlab(new KalmanCorrector(ctxOf(), { d: 40 }).fit({ ...train, m: 2, data: train.data.subarray(0, 2 * 12 * D) }), /too few to fit/);
});

test('filtering a noisy real clip brings it closer to the clean clip', async () => {
  const sigma = 0.5, K = 3, n = held.m;
  const c = await fitted({ d: 24, rMeasure: 0.2 });
  c.reset(contextOf(n, K), n, K);
  const rng = new Rng(3), pca = c.model!.pca, d = pca.d;
  let noisyPix = 0, filtPix = 0, noisyLat = 0, filtLat = 0;
  const zc = new Float64Array(d), zn = new Float64Array(d), zf = new Float64Array(d);
  for (let t = K; t < held.t; t++) {
    const noisy = new Float32Array(n * D); // clean + N(0, sigma^2), kept in [-1,1] like every frame
    for (let b = 0; b < n; b++) for (let i = 0; i < D; i++) noisy[b * D + i] = Math.max(-1, Math.min(1, heldFrame(b, t)[i] + sigma * rng.normal()));
    const out = c.correct({ n, s: S, data: noisy }).data;
    for (let b = 0; b < n; b++) {
      const clean = heldFrame(b, t);
      for (let i = 0; i < D; i++) { noisyPix += (noisy[b * D + i] - clean[i]) ** 2; filtPix += (out[b * D + i] - clean[i]) ** 2; }
      project(pca, clean, 0, zc); project(pca, noisy, b * D, zn); project(pca, out, b * D, zf);
      for (let j = 0; j < d; j++) { noisyLat += (zn[j] - zc[j]) ** 2; filtLat += (zf[j] - zc[j]) ** 2; }
    }
  }
  // only the d-dimensional PCA part of the noise can be removed (d/D ~ 10% of it); measured ~0.94 / ~0.8
  assert.ok(filtPix < 0.98 * noisyPix, `pixel mse: filtered ${filtPix} vs noisy ${noisyPix}`);
  assert.ok(filtLat < 0.9 * noisyLat, `latent error: filtered ${filtLat} vs noisy ${noisyLat}`);
});

test('save/load round trip; load refuses another model or frame size', async () => {
  const dir = tempDir('driftlab-kalman-');
  const c = await fitted();
  await c.save(dir);
  assert.ok(fs.existsSync(path.join(dir, 'kalman.json')) && fs.existsSync(path.join(dir, 'kalman.safetensors')));
  const meta = JSON.parse(fs.readFileSync(path.join(dir, 'kalman.json'), 'utf8'));
  assert.is(meta.modelId, 'model-a'); assert.is(meta.size, S); assert.is(meta.d, 12); assert.is(meta.fit.clips, 60);
  const l = new KalmanCorrector(ctxOf(), { dir });
  assert.is((l.describe() as any).dir, dir);
  await l.load(dir);
  for (const k of [c, l]) k.reset(contextOf(2, 3), 2, 3);
  for (let step = 0; step < 3; step++) {
    const f = randomFrames(2, 200 + step);
    assert.equal(Array.from(l.correct(f).data), Array.from(c.correct(f).data), `step ${step} differs after load`);
  }
  await rejectsDriftlab(new KalmanCorrector(ctxOf('model-b')).load(dir), /corrector folder fitted for another model/);
  await rejectsDriftlab(new KalmanCorrector(ctxOf('model-a', 32)).load(dir), /corrector folder fitted for another model/);
  await rejectsDriftlab(new KalmanCorrector(ctxOf(), { d: 5 }).load(dir), /fitted with d=12/);
  await rejectsDriftlab(new KalmanCorrector(ctxOf()).load(tempDir('driftlab-kalman-empty-')), /no kalman\.json.*fit-corrector kalman/);
  // an explicit rMeasure re-tunes R without refitting
  const r = new KalmanCorrector(ctxOf(), { dir, rMeasure: 1 });
  await r.load(dir);
  assert.is(r.model!.ss.R[0], 1);
});

/**
 * A stand-in for the video model: continues each window with the true next frames plus seeded
 * white noise of standard deviation sigma (0 = a perfect model). It finds the true frames by
 * matching the context against the clips.
 */
function noisyTruthGenerator(clips: ClipSet, sigma: number, F: number, seed: number): WindowGenerator {
  const rng = new Rng(seed);
  return async (ctx, n, k) => {
    const N = F - k, out = new Float32Array(n * N * D);
    for (let b = 0; b < n; b++) {
      let found = -1;
      for (let c = 0; c < clips.m && found < 0; c++) for (let s0 = 0; s0 + F <= clips.t && found < 0; s0++) {
        const a = clips.data.subarray((c * clips.t + s0) * D, (c * clips.t + s0 + k) * D), q = ctx.subarray(b * k * D, (b + 1) * k * D);
        if (a.every((v, i) => v === q[i])) found = c * clips.t + s0;
      }
      assert.ok(found >= 0, 'context window not found in the clips');
      for (let h = 0; h < N; h++) for (let i = 0; i < D; i++) out[(b * N + h) * D + i] = clips.data[(found + k + h) * D + i] + sigma * rng.normal();
    }
    return out;
  };
}

test('R from the model: a perfect model gives the floor; white noise of variance s^2 gives s^2 per component', async () => {
  const c = await fitted();
  const pca = c.model!.pca, K = 3, F = 6;
  const perfect = await measurementNoiseFromModel(pca, train, noisyTruthGenerator(train, 0, F, 1), { windows: 16, K, F });
  assert.is(perfect.windows, 16); assert.is(perfect.frames, 48);
  assert.ok(perfect.diag.every((v) => v === 1e-6), `perfect model: ${perfect.diag}`);
  // U has orthonormal columns, so white pixel noise N(0, s^2) is N(0, s^2) in every component
  const sigma = 0.3, m = await measurementNoiseFromModel(pca, train, noisyTruthGenerator(train, sigma, F, 2), { windows: 60, K, F, batch: 7 });
  assert.is(m.frames, 180);
  assert.ok(Math.abs(m.mean / sigma ** 2 - 1) < 0.1, `mean R ${m.mean} vs ${sigma ** 2}`); // 2160 squared normals: rel. sd 3%
  assert.ok(m.diag.every((v) => v > 0.5 * sigma ** 2 && v < 1.6 * sigma ** 2), `per component ${m.diag}`); // 180 each: rel. sd 11%
  assert.is(m.byHorizon.length, 3);
  // float64 recomputation of the same estimate with explicit dot products over U's columns
  const gen = noisyTruthGenerator(train, sigma, F, 2), d = pca.d, want = new Float64Array(d);
  for (let w0 = 0; w0 < 60; w0 += 7) {
    const n = Math.min(7, 60 - w0), ctx = new Float32Array(n * K * D), st = (w: number) => (w * 3) % (train.t - F + 1);
    for (let b = 0; b < n; b++) ctx.set(train.data.subarray(((w0 + b) * train.t + st(w0 + b)) * D, ((w0 + b) * train.t + st(w0 + b) + K) * D), b * K * D);
    const out = await gen(ctx, n, K);
    for (let b = 0; b < n; b++) for (let h = 0; h < F - K; h++) for (let j = 0; j < d; j++) {
      let e = 0;
      for (let i = 0; i < D; i++) e += pca.U[i * d + j] * (out[(b * (F - K) + h) * D + i] - train.data[((w0 + b) * train.t + st(w0 + b) + K + h) * D + i]);
      want[j] += e * e / 180;
    }
  }
  near(m.diag, want, 1e-9, 'R diag');
  await rejectsDriftlab(measurementNoiseFromModel(pca, { ...train, t: 5, data: train.data.subarray(0, 60 * 5 * D) }, gen, { windows: 4, K, F }), /continues 6-frame windows, but the clips have 5 frames/);
});

test('rMeasure "model": the fitted filter uses diag(R) from the model, saves it and refuses to re-measure on load', async () => {
  const c = new KalmanCorrector(ctxOf(), { d: 12, rMeasure: 'model', rClips: 20 });
  await c.fit(train, { seed: 5, generate: noisyTruthGenerator(train, 0.2, 6, 3) });
  const R = c.model!.ss.R, d = 12, diag = c.info!.measurement!.diag;
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) assert.is(R[i * d + j], i === j ? diag[i] : 0);
  assert.ok(Math.abs(c.info!.measurement!.mean / 0.04 - 1) < 0.25, `mean R ${c.info!.measurement!.mean}`);
  const dir = tempDir('driftlab-kalman-r-');
  await c.save(dir);
  const l = new KalmanCorrector(ctxOf(), { dir });
  await l.load(dir);
  assert.equal(Array.from(l.model!.ss.R), Array.from(R));
  assert.is(l.cfg.rMeasure, 'model');
  const tuned = new KalmanCorrector(ctxOf(), { dir, rMeasure: 0.5 });
  await tuned.load(dir);
  assert.is(tuned.model!.ss.R[0], 0.5);
  const fixed = tempDir('driftlab-kalman-fixed-');
  await (await fitted()).save(fixed);
  await rejectsDriftlab(new KalmanCorrector(ctxOf(), { dir: fixed, rMeasure: 'model' }).load(fixed), /rMeasure "model" is measured when fitting/);
});

test('rMeasure "model" with a real (tiny) video model: continues real windows and measures R', async () => {
  const tiny = tinyVideoPipeline(tempDir('driftlab-kalman-tiny-'));
  const p = await tiny.pipeline();
  try {
    const c = new KalmanCorrector(correctorContext(p, new Rng(0)), { d: 12, rMeasure: 'model', rClips: 4, rSteps: 2 });
    await c.fit(train, { seed: 5 });
    const m = c.info!.measurement!;
    assert.is(m.frames, 12);
    assert.ok(m.diag.every((v) => Number.isFinite(v) && v >= 1e-6), `${m.diag}`);
    // an untrained model is far from the truth: well above the floor
    assert.ok(m.mean > 0.01, `mean R ${m.mean}`);
    const again = new KalmanCorrector(correctorContext(p, new Rng(0)), { d: 12, rMeasure: 'model', rClips: 4, rSteps: 2 });
    await again.fit(train, { seed: 5 });
    assert.equal(again.info!.measurement!.diag, m.diag, 'same seed, same R');
    assert.is(m.sampler, 'ddim 2 steps, eta 1');
    // R is measured with the sampler the rollouts use: deterministic DDIM gives other frames, another R
    const det = new KalmanCorrector(correctorContext(p, new Rng(0)), { d: 12, rMeasure: 'model', rClips: 4, rSteps: 2, rEta: 0 });
    await det.fit(train, { seed: 5 });
    assert.is(det.info!.measurement!.sampler, 'ddim 2 steps, eta 0');
    assert.ok(det.info!.measurement!.diag.some((v, i) => Math.abs(v - m.diag[i]) > 1e-6 * m.diag[i]), 'eta 0 and eta 1 measured the same R');
    // a folder fitted before rEta existed (its config has none) was measured at eta 0
    const dir = tempDir('driftlab-kalman-legacy-');
    await c.save(dir);
    const jp = path.join(dir, 'kalman.json'), meta = JSON.parse(fs.readFileSync(jp, 'utf8'));
    delete meta.config.rEta;
    fs.writeFileSync(jp, JSON.stringify(meta));
    const old = new KalmanCorrector(correctorContext(p, new Rng(0)), { dir });
    await old.load(dir);
    assert.is(old.cfg.rEta, 0);
  } finally {
    await p.dispose();
  }
});

test('filter state survives getState/setState through JSON (exact resume)', async () => {
  const c = await fitted();
  c.reset(contextOf(2, 3), 2, 3);
  const frames = [0, 1, 2, 3, 4].map((k) => randomFrames(2, 300 + k));
  const full = frames.map((f) => c.correct(f).data);
  const a = await fitted();
  a.reset(contextOf(2, 3), 2, 3);
  a.correct(frames[0]); a.correct(frames[1]);
  const saved = JSON.parse(JSON.stringify(a.getState()));
  const b = await fitted();
  b.reset(contextOf(2, 3), 2, 3);
  b.setState(saved);
  for (let k = 2; k < 5; k++) assert.equal(Array.from(b.correct(frames[k]).data), Array.from(full[k]), `step ${k} differs after resume`);
  throwsDriftlab(() => b.setState({ x: [[1]], P: [1] }), /does not fit/);
});

test.run();
