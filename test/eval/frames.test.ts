/**
 * Per-frame metrics: SSIM against an explicit double-loop implementation written here, against
 * numbers computed once with scikit-image's algorithm, 1 on identical frames; PSNR closed forms;
 * averaging over N; input checks.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frameMetrics, mse, psnrFromMse, ssim } from '../../src/eval/frames.js';
import { framesFromNpy } from '../../src/eval/inputs.js';
import { Rng } from '../../src/util/rng.js';
import { throwsDriftlab } from '../helpers/backend.js';

/**
 * Straightforward SSIM: for every window position fully inside the image, weighted local means,
 * variances and covariance with a 2-D Gaussian (11x11, sigma 1.5, normalised), two-pass.
 */
function ssimReference(x: ArrayLike<number>, y: ArrayLike<number>, H: number, W: number): number {
  const r = 5, sigma = 1.5;
  const w: number[][] = [];
  let tot = 0;
  for (let a = -r; a <= r; a++) {
    const row: number[] = [];
    for (let b = -r; b <= r; b++) { const v = Math.exp(-(a * a + b * b) / (2 * sigma * sigma)); row.push(v); tot += v; }
    w.push(row);
  }
  const C1 = 0.01 ** 2, C2 = 0.03 ** 2;
  let sum = 0, count = 0;
  for (let i = r; i < H - r; i++) {
    for (let j = r; j < W - r; j++) {
      let mx = 0, my = 0;
      for (let a = -r; a <= r; a++) for (let b = -r; b <= r; b++) {
        const k = w[a + r][b + r] / tot, p = (i + a) * W + (j + b);
        mx += k * x[p]; my += k * y[p];
      }
      let vx = 0, vy = 0, cxy = 0;
      for (let a = -r; a <= r; a++) for (let b = -r; b <= r; b++) {
        const k = w[a + r][b + r] / tot, p = (i + a) * W + (j + b);
        vx += k * (x[p] - mx) ** 2; vy += k * (y[p] - my) ** 2; cxy += k * (x[p] - mx) * (y[p] - my);
      }
      sum += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      count++;
    }
  }
  return sum / count;
}

/** The fixed test pattern shared with the scikit-image reference below. */
function pattern(H: number, W: number): { x: Float64Array; y: Float64Array } {
  const x = new Float64Array(H * W), y = new Float64Array(H * W);
  for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
    const v = (Math.sin(0.3 * c + 0.2 * r) * Math.cos(0.0375 * c * r) + 1) / 2;
    x[r * W + c] = v;
    y[r * W + c] = Math.min(1, Math.max(0, v + 0.1 * Math.sin(1.7 * c + 0.9 * r)));
  }
  return { x, y };
}

test('SSIM is 1 on identical frames', () => {
  const rng = new Rng(2);
  const x = Float64Array.from({ length: 28 * 28 }, () => rng.uniform());
  assert.ok(Math.abs(ssim(x, x, 28, 28) - 1) < 1e-12);
  const flat = new Float64Array(20 * 20).fill(0.3);
  assert.ok(Math.abs(ssim(flat, flat, 20, 20) - 1) < 1e-12, 'constant frame');
});

test('SSIM equals an explicit double-loop implementation on fixed small images', () => {
  const rng = new Rng(4);
  for (const [H, W] of [[11, 11], [16, 20], [28, 28], [13, 31]]) {
    const x = Float64Array.from({ length: H * W }, () => rng.uniform());
    const y = x.map((v) => Math.min(1, Math.max(0, v + 0.2 * (rng.uniform() - 0.5))));
    const got = ssim(x, y, H, W), want = ssimReference(x, y, H, W);
    assert.ok(Math.abs(got - want) < 1e-6, `${H}x${W}: ${got} vs ${want}`);
    assert.ok(Math.abs(got - want) < 1e-12, `${H}x${W} (float64 agreement): ${got} vs ${want}`);
    const p = pattern(H, W);
    assert.ok(Math.abs(ssim(p.x, p.y, H, W) - ssimReference(p.x, p.y, H, W)) < 1e-12);
  }
});

test("SSIM equals scikit-image's structural_similarity on fixed images", () => {
  // Computed once (not by this test) with skimage.metrics.structural_similarity's algorithm,
  //   structural_similarity(X, Y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1)
  // i.e. scipy.ndimage.gaussian_filter(., sigma=1.5, truncate=3.5, mode='reflect') of X, Y, XX, YY, XY,
  // the SSIM map, cropped by 5 pixels on every side, mean (scipy 1.17.1, numpy 2.4.6; scikit-image itself
  // was not installed here, so its ~15 lines were run with scipy directly), on X, Y = pattern(H, W).
  const ref: [number, number, number][] = [[16, 20, 0.9110223911169603], [11, 13, 0.8854601139618733], [28, 28, 0.9295575004371506]];
  for (const [H, W, want] of ref) {
    const p = pattern(H, W);
    const got = ssim(p.x, p.y, H, W);
    assert.ok(Math.abs(got - want) < 1e-12, `${H}x${W}: ${got} vs ${want}`);
  }
});

test('PSNR closed forms', () => {
  // constant error d: MSE d^2, PSNR = -20 log10 d (data range 1)
  const t = new Float64Array(64).fill(0.5);
  const p = t.map((v) => v + 0.1);
  assert.ok(Math.abs(mse(p, t) - 0.01) < 1e-15);
  assert.ok(Math.abs(psnrFromMse(mse(p, t)) - 20) < 1e-9);
  assert.is(psnrFromMse(0), Infinity);
  assert.ok(Math.abs(psnrFromMse(1e-4, 1) - 40) < 1e-12);
  assert.ok(Math.abs(psnrFromMse(255 * 255 * 1e-4, 255) - 40) < 1e-9, 'data range 255');
  // uint8 frames one grey level apart: MSE (1/255)^2, PSNR 20 log10(255) = 48.1308...
  const truth = new Uint8Array(1 * 2 * 12 * 12).fill(100);
  const pred = truth.map((v) => v + 1);
  const m = frameMetrics(framesFromNpy({ dtype: 'uint8', shape: [2, 12, 12], data: pred, fortranOrder: false }, 'pred'),
    framesFromNpy({ dtype: 'uint8', shape: [2, 12, 12], data: truth, fortranOrder: false }, 'truth'));
  assert.equal(m.mse.length, 2);
  assert.ok(Math.abs(m.psnr[0] - 20 * Math.log10(255)) < 1e-9, `${m.psnr[0]}`);
  assert.ok(Math.abs(m.mse[1] - 1 / 255 ** 2) < 1e-15);
});

test('frameMetrics: one value per frame, averaged over N; identical frames give +Infinity PSNR', () => {
  const rng = new Rng(9);
  const N = 3, T = 2, H = 12, W = 14, P = H * W;
  const truth = Float64Array.from({ length: N * T * P }, () => rng.uniform());
  const pred = truth.map((v, i) => (Math.floor(i / P) % T === 0 ? v : Math.min(1, v + 0.05 * rng.uniform())));
  const m = frameMetrics({ data: pred, n: N, t: T, h: H, w: W }, { data: truth, n: N, t: T, h: H, w: W });
  assert.is(m.psnr[0], Infinity);
  assert.is(m.mse[0], 0);
  assert.ok(Math.abs(m.ssim[0] - 1) < 1e-12);
  let wantMse = 0, wantSsim = 0, wantPsnr = 0;
  for (let n = 0; n < N; n++) {
    const off = (n * T + 1) * P;
    const e = mse(pred, truth, off, off, P);
    wantMse += e / N; wantPsnr += psnrFromMse(e) / N;
    wantSsim += ssimReference(pred.subarray(off, off + P), truth.subarray(off, off + P), H, W) / N;
  }
  assert.ok(Math.abs(m.mse[1] - wantMse) < 1e-15);
  assert.ok(Math.abs(m.psnr[1] - wantPsnr) < 1e-10);
  assert.ok(Math.abs(m.ssim[1] - wantSsim) < 1e-12);
});

test('input checks', () => {
  const f = (shape: number[], dtype: 'uint8' | 'float32' | 'int32' = 'float32', fill = 0.5) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = dtype === 'uint8' ? new Uint8Array(n) : dtype === 'int32' ? new Int32Array(n) : new Float32Array(n).fill(fill);
    return framesFromNpy({ dtype, shape, data, fortranOrder: false }, 'x.npy');
  };
  throwsDriftlab(() => f([12, 12]), /frames must be \[T,H,W\] or \[N,T,H,W\]/, 'rank 2');
  throwsDriftlab(() => f([1, 2, 12, 12, 1]), /frames must be/, 'rank 5');
  throwsDriftlab(() => f([2, 12, 12], 'int32'), /dtype int32/, 'int32');
  throwsDriftlab(() => f([2, 12, 12], 'float32', 1.5), /must lie in \[0,1\]/, 'range');
  throwsDriftlab(() => f([2, 12, 12], 'float32', NaN), /must lie in \[0,1\]/, 'NaN');
  throwsDriftlab(() => frameMetrics(f([2, 12, 12]), f([3, 12, 12])), /same shape/, 'shapes');
  throwsDriftlab(() => frameMetrics(f([2, 8, 8]), f([2, 8, 8])), /at least 11x11/, 'small');
});

test.run();
