/**
 * Frechet distance: zero for identical sets, symmetric, the diagonal closed form, rank-deficient
 * covariances against closed forms in their subspace, random full-rank covariances against a
 * Denman-Beavers float64 reference written here, and one number from pytorch-fid's recipe.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { frechetDistance, frechetFromFeatures, gaussianStats, symmetricEig } from '../../src/eval/frechet.js';
import { Rng } from '../../src/util/rng.js';

const close = (got: number, want: number, rel: number, msg = '') =>
  assert.ok(Math.abs(got - want) <= rel * Math.max(1, Math.abs(want)), `${msg} got ${got}, want ${want} (rel ${rel})`);

function randomFeatures(rng: Rng, n: number, d: number, mix: number[][], offset: number[]): Float64Array {
  const x = new Float64Array(n * d);
  const k = mix[0].length;
  for (let i = 0; i < n; i++) {
    const z = Array.from({ length: k }, () => rng.normal());
    for (let j = 0; j < d; j++) {
      let s = offset[j];
      for (let c = 0; c < k; c++) s += mix[j][c] * z[c];
      x[i * d + j] = s;
    }
  }
  return x;
}

// ---- small dense float64 linear algebra for the reference ----
type M = number[][];
const eye = (d: number): M => Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => (i === j ? 1 : 0)));
const mul = (a: M, b: M): M => a.map((r) => b[0].map((_, j) => r.reduce((s, v, k) => s + v * b[k][j], 0)));
const add = (a: M, b: M, cb = 1): M => a.map((r, i) => r.map((v, j) => v + cb * b[i][j]));
const scale = (a: M, c: number): M => a.map((r) => r.map((v) => v * c));
const trace = (a: M) => a.reduce((s, r, i) => s + r[i], 0);
function inv(a: M): M {
  const d = a.length;
  const m = a.map((r, i) => [...r, ...eye(d)[i]]);
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    [m[c], m[p]] = [m[p], m[c]];
    const pv = m[c][c];
    for (let j = 0; j < 2 * d; j++) m[c][j] /= pv;
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = m[r][c];
      for (let j = 0; j < 2 * d; j++) m[r][j] -= f * m[c][j];
    }
  }
  return m.map((r) => r.slice(d));
}
/** Denman-Beavers iteration: Y -> A^{1/2}, Z -> A^{-1/2} (A symmetric positive definite). */
function sqrtmDB(a: M): M {
  let y = a, z = eye(a.length);
  for (let k = 0; k < 60; k++) {
    const yn = scale(add(y, inv(z)), 0.5);
    const zn = scale(add(z, inv(y)), 0.5);
    y = yn; z = zn;
  }
  return y;
}
const toM = (flat: Float64Array, d: number): M => Array.from({ length: d }, (_, i) => Array.from(flat.subarray(i * d, (i + 1) * d)));

test('zero for identical sets (also with a large offset), and symmetric', () => {
  const rng = new Rng(1);
  const mix = Array.from({ length: 8 }, () => Array.from({ length: 8 }, () => rng.normal()));
  const a = randomFeatures(rng, 300, 8, mix, new Array(8).fill(0));
  const b = randomFeatures(rng, 200, 8, mix.map((r) => r.map((v) => 1.3 * v)), new Array(8).fill(0.5));
  const same = frechetFromFeatures(a, 300, a, 300, 8).frechet;
  assert.ok(same < 1e-10, `identical sets: ${same}`);
  const shifted = a.map((v) => v + 1e4);
  assert.ok(frechetFromFeatures(shifted, 300, shifted, 300, 8).frechet < 1e-8, 'offset 1e4');
  const ab = frechetFromFeatures(a, 300, b, 200, 8).frechet;
  const ba = frechetFromFeatures(b, 200, a, 300, 8).frechet;
  assert.ok(ab > 0.1);
  close(ab, ba, 1e-10, 'symmetry');
  // translation of both sets changes nothing (two-pass covariance)
  close(frechetFromFeatures(shifted, 300, b.map((v) => v + 1e4), 200, 8).frechet, ab, 1e-7, 'common offset');
});

test('unbiased covariance (N-1), as numpy.cov', () => {
  const x = Float64Array.from([1, 2, 3, 5, 2, 0]); // rows (1,2) (3,5) (2,0)
  const s = gaussianStats(x, 3, 2);
  close(s.mu[0], 2, 1e-15); close(s.mu[1], 7 / 3, 1e-15);
  close(s.sigma[0], 1, 1e-14); // ((-1)^2 + 1^2 + 0) / 2
  close(s.sigma[3], (1 / 9 + 64 / 9 + 49 / 9) / 2, 1e-14);
  close(s.sigma[1], ((-1) * (-1 / 3) + 1 * (8 / 3) + 0) / 2, 1e-14);
  assert.is(s.sigma[1], s.sigma[2]);
});

test('diagonal Gaussians: sum (mu1-mu2)^2 + sum (s1 + s2 - 2 sqrt(s1 s2))', () => {
  // Columns of a Sylvester-Hadamard matrix are orthogonal and centred (except the first), so
  // the sample covariance is exactly diagonal.
  const N = 16, D = 6;
  const had = (i: number, j: number) => (bitCount(i & j) % 2 === 0 ? 1 : -1);
  const make = (sd: number[], mu: number[]) => {
    const x = new Float64Array(N * D);
    for (let i = 0; i < N; i++) for (let j = 0; j < D; j++) x[i * D + j] = mu[j] + sd[j] * had(i, j + 1);
    return x;
  };
  const a = gaussianStats(make([1, 2, 0.5, 3, 0.1, 1], [0, 1, 2, 3, 4, 5]), N, D);
  const b = gaussianStats(make([2, 2, 1, 0.2, 0.1, 4], [1, 1, 0, 3, 4, -1]), N, D);
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) if (i !== j) assert.is(Math.abs(a.sigma[i * D + j]) < 1e-15, true);
  let want = 0;
  for (let j = 0; j < D; j++) {
    const s1 = a.sigma[j * D + j], s2 = b.sigma[j * D + j];
    want += (a.mu[j] - b.mu[j]) ** 2 + s1 + s2 - 2 * Math.sqrt(s1 * s2);
  }
  close(frechetDistance(a, b).frechet, want, 1e-11, 'diagonal');
});

function bitCount(v: number): number {
  let c = 0;
  for (; v; v &= v - 1) c++;
  return c;
}

/** tr sqrtm of the 2x2 PSD product's eigenvalues: sqrt(tr(C1 C2) + 2 sqrt(det C1 det C2)). */
function trSqrt2(c1: M, c2: M): number {
  const det = (m: M) => m[0][0] * m[1][1] - m[0][1] * m[1][0];
  return Math.sqrt(trace(mul(c1, c2)) + 2 * Math.sqrt(Math.max(0, det(c1) * det(c2))));
}

test('rank-deficient: both sets in a 2-D subspace of R^5 equal the 2-D closed form', () => {
  const rng = new Rng(7);
  // orthonormal Q [5,2] (Gram-Schmidt of two fixed vectors)
  const u = [1, 2, 0, -1, 1], v0 = [0, 1, 1, 1, -2];
  const nu = Math.hypot(...u);
  const q1 = u.map((x) => x / nu);
  const dot = v0.reduce((s, x, i) => s + x * q1[i], 0);
  const v = v0.map((x, i) => x - dot * q1[i]);
  const nv = Math.hypot(...v);
  const q2 = v.map((x) => x / nv);
  const embed = (z: Float64Array, n: number, off: number[]) => {
    const x = new Float64Array(n * 5);
    for (let i = 0; i < n; i++) for (let j = 0; j < 5; j++) x[i * 5 + j] = off[j] + q1[j] * z[2 * i] + q2[j] * z[2 * i + 1];
    return x;
  };
  const za = randomFeatures(rng, 100, 2, [[1, 0.3], [0.2, 0.5]], [0, 0]);
  const zb = randomFeatures(rng, 80, 2, [[2, 0], [0.7, 0.1]], [1, -1]);
  const sa = gaussianStats(za, 100, 2), sb = gaussianStats(zb, 80, 2);
  const want = (sa.mu[0] - sb.mu[0]) ** 2 + (sa.mu[1] - sb.mu[1]) ** 2
    + sa.sigma[0] + sa.sigma[3] + sb.sigma[0] + sb.sigma[3] - 2 * trSqrt2(toM(sa.sigma, 2), toM(sb.sigma, 2));
  const r = frechetFromFeatures(embed(za, 100, [0, 0, 0, 0, 0]), 100, embed(zb, 80, [0, 0, 0, 0, 0]), 80, 5);
  assert.is(r.rank1, 2);
  close(r.frechet, want, 1e-9, 'subspace');
  // the set in the subspace against a full-rank set: only S1's range matters; closed form with B = Q^T S2 Q
  const full = randomFeatures(rng, 60, 5, Array.from({ length: 5 }, () => Array.from({ length: 5 }, () => rng.normal())), [0.1, 0, 0, 0, 0.2]);
  const sf = gaussianStats(full, 60, 5);
  const Q = [q1, q2];
  const S2 = toM(sf.sigma, 5);
  const Bq: M = Q.map((qa) => Q.map((qb) => qa.reduce((s, x, i) => s + x * S2[i].reduce((t, y, k) => t + y * qb[k], 0), 0)));
  const xa = embed(za, 100, [0, 0, 0, 0, 0]);
  const s1 = gaussianStats(xa, 100, 5);
  let meanTerm = 0, tr = 0;
  for (let j = 0; j < 5; j++) { meanTerm += (s1.mu[j] - sf.mu[j]) ** 2; tr += s1.sigma[j * 6] + sf.sigma[j * 6]; }
  const want2 = meanTerm + tr - 2 * trSqrt2(toM(sa.sigma, 2), Bq);
  close(frechetFromFeatures(xa, 100, full, 60, 5).frechet, want2, 1e-9, 'subspace vs full rank');
  close(frechetFromFeatures(full, 60, xa, 100, 5).frechet, want2, 1e-9, 'full rank vs subspace');
  // N <= D: 4 samples in R^6 (rank 3) against itself is 0, against a shifted copy the mean term
  const tiny = randomFeatures(rng, 4, 6, Array.from({ length: 6 }, () => [rng.normal(), rng.normal(), rng.normal(), rng.normal()]), new Array(6).fill(0));
  assert.ok(frechetFromFeatures(tiny, 4, tiny, 4, 6).frechet < 1e-10);
  close(frechetFromFeatures(tiny, 4, tiny.map((x, i) => x + (i % 6 === 0 ? 2 : 0)), 4, 6).frechet, 4, 1e-9, 'shifted rank-3 set');
});

test('random full-rank covariances: equal to a Denman-Beavers float64 reference', () => {
  const rng = new Rng(3);
  for (const D of [3, 6, 10]) {
    const mixA = Array.from({ length: D }, () => Array.from({ length: D }, () => rng.normal()));
    const mixB = Array.from({ length: D }, () => Array.from({ length: D }, () => rng.normal()));
    const a = randomFeatures(rng, 5 * D, D, mixA, Array.from({ length: D }, () => rng.normal()));
    const b = randomFeatures(rng, 4 * D, D, mixB, Array.from({ length: D }, () => rng.normal()));
    const sa = gaussianStats(a, 5 * D, D), sb = gaussianStats(b, 4 * D, D);
    const S1 = toM(sa.sigma, D), S2 = toM(sb.sigma, D);
    const h = sqrtmDB(S1);
    const mid = mul(mul(h, S2), h);
    const want = sa.mu.reduce((s, m, j) => s + (m - sb.mu[j]) ** 2, 0) + trace(S1) + trace(S2) - 2 * trace(sqrtmDB(mid));
    close(frechetDistance(sa, sb).frechet, want, 1e-9, `D=${D}`);
  }
});

test("pytorch-fid's recipe (numpy.cov, scipy.linalg.sqrtm of S1 S2) on fixed data", () => {
  // Reference computed once with numpy 2.4.6 / scipy 1.17.1 (not run by the test):
  //   a[i,j] = sin(0.37 (i+1)(j+1)) + 0.05 j^2, i < 40;  b[i,j] = cos(0.23 (i+2)(j+1) + 0.5 j) + 0.1 sin(i) + 0.3, i < 37;  j < 5
  //   mu, sigma = x.mean(0), np.cov(x, rowvar=False); covmean = scipy.linalg.sqrtm(s1.dot(s2)).real
  //   d.dot(d) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)  ->  0.3559466212692639
  const D = 5;
  const a = new Float64Array(40 * D), b = new Float64Array(37 * D);
  for (let i = 0; i < 40; i++) for (let j = 0; j < D; j++) a[i * D + j] = Math.sin(0.37 * (i + 1) * (j + 1)) + 0.05 * j * j;
  for (let i = 0; i < 37; i++) for (let j = 0; j < D; j++) b[i * D + j] = Math.cos(0.23 * (i + 2) * (j + 1) + 0.5 * j) + 0.1 * Math.sin(i) + 0.3;
  close(frechetFromFeatures(a, 40, b, 37, D).frechet, 0.3559466212692639, 1e-10);
});

test('symmetricEig: eigenpairs reconstruct the matrix', () => {
  const rng = new Rng(11);
  const D = 7;
  const x = randomFeatures(rng, 30, D, Array.from({ length: D }, () => Array.from({ length: D }, () => rng.normal() * 100)), new Array(D).fill(0));
  const s = gaussianStats(x, 30, D).sigma;
  const { values, vectors } = symmetricEig(s, D, true);
  for (let k = 1; k < D; k++) assert.ok(values[k] >= values[k - 1]);
  let err = 0, norm = 0;
  for (let i = 0; i < D; i++) for (let j = 0; j < D; j++) {
    let r = 0;
    for (let k = 0; k < D; k++) r += vectors![i * D + k] * values[k] * vectors![j * D + k];
    err = Math.max(err, Math.abs(r - s[i * D + j]));
    norm = Math.max(norm, Math.abs(s[i * D + j]));
  }
  assert.ok(err / norm < 1e-12, `reconstruction error ${err / norm}`);
});

test('D = 128, N = 2000 runs in seconds', () => {
  const rng = new Rng(5);
  const D = 128;
  const mix = Array.from({ length: D }, () => Array.from({ length: 16 }, () => rng.normal()));
  const a = randomFeatures(rng, 2000, D, mix, new Array(D).fill(0));
  const b = randomFeatures(rng, 2000, D, mix.map((r) => r.map((v) => v * 1.1)), new Array(D).fill(0.1));
  const t0 = performance.now();
  const r = frechetFromFeatures(a, 2000, b, 2000, D);
  const secs = (performance.now() - t0) / 1000;
  assert.ok(Number.isFinite(r.frechet) && r.frechet > 0);
  assert.ok(r.rank1 <= 17, `rank ${r.rank1}`); // 16 latent factors
  assert.ok(secs < 20, `${secs.toFixed(1)} s`);
});

test.run();
