/**
 * Drift metrics of a rollout folder: a planted corruption shows at its frame and not before,
 * perfect frames score perfectly, the Frechet curve and FVD localise a planted distribution
 * shift (fake feature nets: fixed random projections), skipped horizons, summaries.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MovingMnist } from '../../datasets/moving-mnist/index.js';
import type { FeatureNet } from '../../src/eval/features/index.js';
import { writeNpy } from '../../src/io/npy.js';
import { Rng } from '../../src/util/rng.js';
import { poolFrame } from '../../src/video/clips.js';
import { toU8 } from '../../src/video/frames8.js';
import {
  PSNR_CAP_DB, frameBand, frechetFrameCurve, fvdAtHorizons, realClipStats, realFrameStats, referenceSeed, runFrameMetrics, summarizeAt, summarizeMetrics, trackingHorizon, formatHorizon,
} from '../../src/drift/metrics.js';
import { rejectsDriftlab, tempDir, throwsDriftlab } from '../helpers/common.js';

const dir = tempDir('driftlab-metrics-');
const data = { size: 64, digits: 2, speedMin: 3.6, speedMax: 3.6, stochastic: false, pool: 2 };
const S = 32, P = S * S;

/** truth.npy content [T, N, S, S] exactly as rollout.ts makes it. */
function simTruth(seed: number, N: number, T: number): Uint8Array {
  const mm = new MovingMnist({ ...data, split: 'test' }, seed);
  const clips = Array.from({ length: N }, (_, n) => mm.clip(n, false));
  const raw = new Uint8Array(64 * 64), f = new Float32Array(P), out = new Uint8Array(T * N * P);
  for (let t = 0; t < T; t++) clips.forEach((c, n) => { c.next(raw); poolFrame(raw, 64, 2, f); out.set(toU8(f), (t * N + n) * P); });
  return out;
}

async function writeRun(name: string, seed: number, N: number, T: number, K: number, frames: Uint8Array, truth: Uint8Array): Promise<string> {
  const out = path.join(dir, name);
  fs.mkdirSync(out, { recursive: true });
  const run = {
    format: 'driftlab-rollout-1', checkpoint: '/nowhere', modelId: 'fake', corrector: { name: 'none' }, engine: 'none',
    rollouts: N, horizon: T - K, context: K, chunk: 1, sampler: 'ddim', steps: 1, eta: 0, seed,
    frames: 8, size: S, data: { ...data, split: 'test' }, layout: 'frames.npy and truth.npy: uint8 [T, N, S, S]; frames 0..K-1 are the given context',
  };
  fs.writeFileSync(path.join(out, 'run.json'), JSON.stringify(run, null, 2) + '\n');
  await writeNpy(path.join(out, 'frames.npy'), { dtype: 'uint8', shape: [T, N, S, S], data: frames, fortranOrder: false });
  await writeNpy(path.join(out, 'truth.npy'), { dtype: 'uint8', shape: [T, N, S, S], data: truth, fortranOrder: false });
  return out;
}

test('frames identical to truth: mse 0, psnr Infinity, ssim 1, traj within 1 px', async () => {
  const T = 10, N = 3, truth = simTruth(4, N, T);
  const m = await runFrameMetrics(await writeRun('same', 4, N, T, 2, truth.slice(), truth), { trajFloor: true });
  assert.equal([m.T, m.N, m.K, m.S], [T, N, 2, S]);
  for (let i = 0; i < T * N; i++) {
    assert.is(m.mse[i], 0);
    assert.is(m.psnr[i], Infinity);
    assert.is(m.ssim[i], 1);
    assert.ok(m.traj[i] <= 1, `traj ${m.traj[i]} at ${i}`);
    assert.is(m.trajFloor![i], m.traj[i]);
  }
  const s = summarizeMetrics(m, [0, T - 1]);
  assert.is(s.psnr[1].mean, PSNR_CAP_DB);
  assert.is(s.psnr[1].capped, N);
  assert.ok(JSON.stringify(s).indexOf('null') < 0);
});

test('a corrupted frame k in one rollout changes mse/ssim/traj at k and not before', async () => {
  const T = 14, N = 2, K = 2, k = 8, bad = 1, seed = 9;
  const truth = simTruth(seed, N, T);
  const perfect = await runFrameMetrics(await writeRun('perfect', seed, N, T, K, truth.slice(), truth));
  // corruption: rollout 1's frame k replaced by its own frame k+5 (digits ~18 px away), shifted right by 3 px
  const frames = truth.slice();
  const src = truth.slice(((k + 5) * N + bad) * P, ((k + 5) * N + bad + 1) * P);
  const dst = frames.subarray((k * N + bad) * P, (k * N + bad + 1) * P);
  dst.fill(0);
  for (let y = 0; y < S; y++) for (let x = 3; x < S; x++) dst[y * S + x] = src[y * S + x - 3];
  const m = await runFrameMetrics(await writeRun('corrupt', seed, N, T, K, frames, truth));
  for (let t = 0; t < T; t++) for (let n = 0; n < N; n++) {
    const i = t * N + n;
    if (t === k && n === bad) {
      assert.ok(m.mse[i] > 1e-3, `mse ${m.mse[i]}`);
      assert.ok(m.ssim[i] < 0.9, `ssim ${m.ssim[i]}`);
      assert.ok(m.psnr[i] < 40);
      assert.ok(m.traj[i] > 5, `traj ${m.traj[i]}`);
    } else {
      // exactly the perfect values: before k, and every other frame too
      assert.is(m.mse[i], 0);
      assert.is(m.ssim[i], 1);
      assert.is(m.traj[i], perfect.traj[i]);
    }
  }
  // summaries and bands see it at k only
  const at = summarizeAt(m.mse, T, N, [k - 1, k]);
  assert.is(at[0].max, 0);
  assert.ok(at[1].max > 1e-3 && at[1].min === 0 && Math.abs(at[1].mean - at[1].max / 2) < 1e-15);
  const band = frameBand(m.traj, T, N);
  assert.ok(band.hi[k] > 5 && band.hi[k - 1] <= 1);
  const sb = frameBand(m.mse, T, N, { kind: 'std' });
  assert.ok(Math.abs(sb.hi[k] - sb.mean[k] - at[1].std) < 1e-15);
  // only the first T frames
  const short = await runFrameMetrics(path.join(dir, 'corrupt'), { T: k });
  assert.is(short.T, k);
  assert.ok(short.mse.every((v) => v === 0));
});

test('bad folders and arguments', async () => {
  await rejectsDriftlab(runFrameMetrics(path.join(dir, 'nothing')), /no run\.json/);
  throwsDriftlab(() => summarizeAt(new Float64Array(4), 2, 2, [2]), /outside/);
});

// ---- distribution metrics with fake feature nets ----

/** A fixed random projection of [...inputShape] in [0,1] to D features (plus a squared term, so covariances are not degenerate). */
function projectionNet(inputShape: number[], D: number, seed: string): FeatureNet {
  const len = inputShape.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed);
  const W = Float32Array.from({ length: D * len }, () => rng.normal() / Math.sqrt(len));
  return {
    name: 'projection', inputShape, dim: D, fidName: 'test distance',
    features(x: Float32Array, n: number) {
      const out = new Float32Array(n * D);
      for (let i = 0; i < n; i++) for (let d = 0; d < D; d++) {
        let s = 0;
        for (let j = 0; j < len; j++) s += W[d * len + j] * x[i * len + j];
        out[i * D + d] = s;
      }
      return out;
    },
    dispose() {},
  };
}
const toInput = (u8: Uint8Array) => Float32Array.from(u8, (v) => v / 255);
/** A distribution shift: frames brightened and inverted where empty. */
const shift = (u8: Uint8Array) => { for (let i = 0; i < u8.length; i++) u8[i] = 255 - (u8[i] >> 1); };

test('Frechet frame curve: near zero for real frames, large for shifted, localises a planted shift per bin', () => {
  const net = projectionNet([S, S, 1], 4, 'frame-net');
  const T = 40, N = 4, bin = 8;
  const ref = realFrameStats(data, referenceSeed(1), 256, S, net, toInput);
  assert.is(ref.n, 256);
  const truth = simTruth(1, N, T);
  const real = frechetFrameCurve(truth, T, N, S, net, ref, bin, toInput);
  assert.equal(real.start, [0, 8, 16, 24, 32]);
  assert.is(real.samples, 32);
  const gen = truth.slice();
  shift(gen.subarray(16 * N * P, 24 * N * P)); // frames 16..23: bin 2
  const c = frechetFrameCurve(gen, T, N, S, net, ref, bin, toInput);
  const floor = Math.max(...real.frechet);
  assert.ok(c.frechet[2] > 50 * floor, `shifted bin ${c.frechet[2]} vs real ${floor}`);
  for (const b of [0, 1, 3, 4]) assert.is(c.frechet[b], real.frechet[b]);
  // partial last bin dropped; from
  assert.equal(frechetFrameCurve(truth, 38, N, S, net, ref, bin, toInput, { from: 2 }).start, [2, 10, 18, 26]);
  throwsDriftlab(() => frechetFrameCurve(truth, T, 1, S, net, ref, 1, toInput), /at least 2 frames/);
});

test('FVD at horizons: windows over rollouts, shift localised, horizons that do not fit are skipped', () => {
  const F = 4;
  const net = projectionNet([F, S, S, 1], 4, 'clip-net');
  const T = 30, N = 4;
  const ref = realClipStats(data, referenceSeed(2), 128, S, net, toInput);
  const truth = simTruth(2, N, T);
  const gen = truth.slice();
  shift(gen.subarray(12 * N * P, 20 * N * P)); // frames 12..19
  const rows = fvdAtHorizons(gen, T, N, S, net, ref, [0, 12, 24, 27], 8, 2, toInput);
  assert.equal(rows.map((r) => [r.horizon, r.windows, r.samples, r.skipped]), [[0, 4, 16, false], [12, 4, 16, false], [24, 0, 0, true], [27, 0, 0, true]]);
  assert.is(rows[2].fvd, null);
  const realRows = fvdAtHorizons(truth, T, N, S, net, ref, [0, 12], 8, 2, toInput);
  assert.is(rows[0].fvd, realRows[0].fvd); // windows 0..9 are untouched
  assert.ok(rows[1].fvd! > 20 * Math.max(realRows[0].fvd!, realRows[1].fvd!), `shifted ${rows[1].fvd} vs real ${realRows.map((r) => r.fvd)}`);
});

test('trackingHorizon: first frame whose mean over rollouts exceeds the threshold; null when never; NaN counts as lost', () => {
  // K = 2 context frames (ignored), N = 2 rollouts, H = 4 generated frames; index t*N + n
  const traj = [99, 99, 99, 99, /* k=1 */ 1, 3, /* k=2 */ 7, 9, /* k=3 */ 6, 11, /* k=4 */ 20, 0];
  assert.is(trackingHorizon(traj, 2, 2, 4, 8), 3, 'means 2, 8, 8.5, 10: 8 is not above 8');
  assert.is(trackingHorizon(traj, 2, 2, 4, 7.9), 2);
  assert.is(trackingHorizon(traj, 2, 2, 4, 100), null);
  assert.is(trackingHorizon(traj, 2, 2, 2, 8), null, 'only the first H frames count');
  assert.is(trackingHorizon([0, 0, NaN, 0], 1, 2, 1, 8), 1);
  assert.is(formatHorizon(null, 50), '> 50');
  assert.is(formatHorizon(7, 50), '7');
  throwsDriftlab(() => trackingHorizon(traj, 2, 2, 4, 0), /positive/);
  throwsDriftlab(() => trackingHorizon(traj, 2, 2, 9, 8), /fewer/);
});

test.run();
