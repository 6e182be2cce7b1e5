/**
 * Frechet distance between two Gaussians fitted to feature sets (Dowson & Landau 1982; the FID
 * of Heusel et al. 2017 when the features come from Inception, here from driftlab's own nets):
 *
 *   d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^{1/2} S2 S1^{1/2})^{1/2})
 *
 * Everything is float64. The matrix square roots go through *symmetric* eigendecompositions
 * only (mathjs `eigs`, Jacobi), never sqrtm(S1 S2) of a non-symmetric product:
 *
 *   S1 = U diag(l) U^T                       l clamped at 0 (PSD up to rounding)
 *   M  = diag(sqrt l_r) (U_r^T S2 U_r) diag(sqrt l_r)   on the range of S1 (r = rank S1)
 *   tr (S1^{1/2} S2 S1^{1/2})^{1/2} = sum_k sqrt(eig_k(M))
 *
 * M has the same non-zero eigenvalues as S1^{1/2} S2 S1^{1/2} (U_r spans S1's range), so
 * rank-deficient covariances (dead ReLU units, N <= D) need no epsilon added to the diagonal,
 * and the second eigenproblem shrinks from D to r. Eigenvalues below max(l) * D * 2^-52
 * (numpy's matrix_rank tolerance) count as 0: their square roots would only add rounding noise.
 *
 * The value returned is d^2, the number FID papers report (pytorch-fid's calculate_frechet_distance).
 */
import { eigs } from 'mathjs';
import { DriftlabError } from '../util/errors.js';

/** Mean and covariance of N feature vectors of dimension D. */
export interface GaussianStats {
  n: number;
  dim: number;
  /** [D] */
  mu: Float64Array;
  /** [D,D] row-major, unbiased (N-1) normaliser as numpy.cov / pytorch-fid */
  sigma: Float64Array;
}

export interface FrechetResult {
  /** d^2 = meanTerm + traceTerm (clamped at 0 against rounding) */
  frechet: number;
  /** |mu1 - mu2|^2 */
  meanTerm: number;
  /** tr S1 + tr S2 - 2 tr sqrtm(...) */
  traceTerm: number;
  /** numerical rank of S1 used for the square root */
  rank1: number;
}

const EPS = 2 ** -52;

/**
 * Fit a Gaussian to features x: [N,D] row-major (any numeric array). Two-pass (mean first,
 * then products of centred rows) so large offsets do not cancel catastrophically.
 */
export function gaussianStats(x: ArrayLike<number>, n: number, dim: number): GaussianStats {
  if (!Number.isInteger(n) || !Number.isInteger(dim) || dim < 1) throw new DriftlabError(`features must be [N,D] with D >= 1, got N=${n}, D=${dim}`);
  if (n < 2) throw new DriftlabError(`a covariance needs at least 2 feature vectors, got N=${n}`);
  if (x.length !== n * dim) throw new DriftlabError(`features hold ${x.length} values, but [${n},${dim}] needs ${n * dim}`);
  const D = dim;
  const mu = new Float64Array(D);
  for (let i = 0; i < n; i++) {
    const o = i * D;
    for (let j = 0; j < D; j++) mu[j] += x[o + j];
  }
  for (let j = 0; j < D; j++) mu[j] /= n;
  for (let j = 0; j < D; j++) if (!Number.isFinite(mu[j])) throw new DriftlabError(`features contain NaN or infinite values (column ${j}); check the feature file`);
  const sigma = new Float64Array(D * D);
  const row = new Float64Array(D);
  for (let i = 0; i < n; i++) {
    const o = i * D;
    for (let j = 0; j < D; j++) row[j] = x[o + j] - mu[j];
    // upper triangle only; mirrored below
    for (let a = 0; a < D; a++) {
      const ra = row[a];
      if (ra === 0) continue;
      const base = a * D;
      for (let b = a; b < D; b++) sigma[base + b] += ra * row[b];
    }
  }
  const c = 1 / (n - 1);
  for (let a = 0; a < D; a++) {
    for (let b = a; b < D; b++) {
      const v = sigma[a * D + b] * c;
      sigma[a * D + b] = v;
      sigma[b * D + a] = v;
    }
  }
  return { n, dim: D, mu, sigma };
}

/**
 * Eigendecomposition of a symmetric [D,D] matrix (row-major) with mathjs' Jacobi solver.
 * The matrix is scaled to unit max |diagonal| first, so eigs' absolute stopping rule
 * (off-diagonals below precision / D) acts as a relative one, then rescaled.
 * Returns values (ascending) and, if asked, vectors as columns of a [D,D] row-major matrix.
 */
export function symmetricEig(a: Float64Array, D: number, wantVectors: boolean): { values: Float64Array; vectors?: Float64Array } {
  let scale = 0;
  for (let i = 0; i < D; i++) scale = Math.max(scale, Math.abs(a[i * D + i]));
  for (let i = 0; i < D * D; i++) if (!Number.isFinite(a[i])) throw new DriftlabError('covariance has NaN or infinite entries; check the features');
  if (scale === 0) {
    // a PSD matrix with a zero diagonal is zero
    const vectors = wantVectors ? new Float64Array(D * D) : undefined;
    if (vectors) for (let i = 0; i < D; i++) vectors[i * D + i] = 1;
    return { values: new Float64Array(D), vectors };
  }
  // nested arrays, *exactly* symmetric (eigs takes its symmetric path only if a_ij == a_ji within precision)
  const rows: number[][] = [];
  for (let i = 0; i < D; i++) rows.push(new Array<number>(D));
  for (let i = 0; i < D; i++) {
    for (let j = i; j < D; j++) {
      const v = (0.5 * (a[i * D + j] + a[j * D + i])) / scale;
      rows[i][j] = v;
      rows[j][i] = v;
    }
  }
  const order = (vals: number[]) => vals.map((v, k) => [v, k] as const).sort((p, q) => p[0] - q[0]);
  if (!wantVectors) {
    const r = eigs(rows, { eigenvectors: false, precision: 1e-12 });
    const vals = r.values as number[];
    return { values: Float64Array.from(order(vals), ([v]) => v * scale) };
  }
  const r = eigs(rows, { eigenvectors: true, precision: 1e-12 });
  const pairs = r.eigenvectors.map((e) => ({ value: e.value as number, vector: e.vector as number[] }));
  const sorted = order(pairs.map((p) => p.value));
  const values = new Float64Array(D);
  const vectors = new Float64Array(D * D);
  sorted.forEach(([v, k], col) => {
    values[col] = v * scale;
    const vec = pairs[k].vector;
    for (let i = 0; i < D; i++) vectors[i * D + col] = vec[i];
  });
  return { values, vectors };
}

/** Frechet distance d^2 between N(mu1, S1) and N(mu2, S2). */
export function frechetDistance(s1: GaussianStats, s2: GaussianStats): FrechetResult {
  if (s1.dim !== s2.dim) throw new DriftlabError(`feature dimensions differ: ${s1.dim} vs ${s2.dim}; both sets must come from the same feature network`);
  const D = s1.dim;
  let meanTerm = 0;
  for (let j = 0; j < D; j++) meanTerm += (s1.mu[j] - s2.mu[j]) ** 2;
  let tr1 = 0, tr2 = 0;
  for (let j = 0; j < D; j++) { tr1 += s1.sigma[j * D + j]; tr2 += s2.sigma[j * D + j]; }

  // S1 = U diag(l) U^T; keep the numerically non-zero part of the spectrum
  const e1 = symmetricEig(s1.sigma, D, true);
  const U = e1.vectors!;
  const lmax = Math.max(0, ...e1.values);
  const tol1 = lmax * D * EPS;
  const keep: number[] = [];
  for (let k = 0; k < D; k++) if (e1.values[k] > tol1) keep.push(k);
  const r = keep.length;
  let trSqrt = 0;
  if (r > 0) {
    // W = S2 U_r : [D,r]
    const W = new Float64Array(D * r);
    for (let i = 0; i < D; i++) {
      for (let m = 0; m < D; m++) {
        const s = s2.sigma[i * D + m];
        if (s === 0) continue;
        const uo = m * D;
        for (let c = 0; c < r; c++) W[i * r + c] += s * U[uo + keep[c]];
      }
    }
    // M = diag(sqrt l) U_r^T W diag(sqrt l) : [r,r], symmetric PSD
    const sq = keep.map((k) => Math.sqrt(e1.values[k]));
    const M = new Float64Array(r * r);
    for (let i = 0; i < D; i++) {
      const wo = i * r;
      const uo = i * D;
      for (let a = 0; a < r; a++) {
        const ua = U[uo + keep[a]];
        if (ua === 0) continue;
        const mo = a * r;
        for (let b = a; b < r; b++) M[mo + b] += ua * W[wo + b];
      }
    }
    for (let a = 0; a < r; a++) {
      for (let b = a; b < r; b++) {
        // B = U_r^T S2 U_r is symmetric: the upper half was computed, mirror it (exact symmetry)
        const v = M[a * r + b] * sq[a] * sq[b];
        M[a * r + b] = v;
        M[b * r + a] = v;
      }
    }
    const e2 = symmetricEig(M, r, false).values;
    const mmax = Math.max(0, ...e2);
    const tol2 = mmax * r * EPS;
    for (const v of e2) if (v > tol2) trSqrt += Math.sqrt(v);
  }
  const traceTerm = tr1 + tr2 - 2 * trSqrt;
  const d2 = meanTerm + traceTerm;
  return { frechet: Math.max(0, d2), meanTerm, traceTerm, rank1: r };
}

/** Frechet distance between two feature sets a: [Na,D], b: [Nb,D]. */
export function frechetFromFeatures(a: ArrayLike<number>, na: number, b: ArrayLike<number>, nb: number, dim: number): FrechetResult {
  return frechetDistance(gaussianStats(a, na, dim), gaussianStats(b, nb, dim));
}
