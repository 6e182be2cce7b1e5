/**
 * Principal components of frames (D = S*S pixels, D <= ~1024), the latent of the `kalman`
 * corrector:
 *
 *   mean = (1/N) sum x_i                 C = (1/N) sum (x_i - mean)(x_i - mean)'   [D,D]
 *   U    = top-d eigenvectors of C        [D,d], orthonormal columns
 *   z    = U' (x - mean)                  the latent of a frame
 *
 * A dense eigensolver on C (mathjs eigs, Jacobi) is far too slow for D = 1024, so:
 *
 *   1. C accumulates one frame at a time over the frame's non-zero pixels after a per-pixel
 *      shift (Moving-MNIST frames are mostly background, so x - min(x) is ~90% zeros):
 *      C = (1/N) sum (x - c)(x - c)' - (mean - c)(mean - c)'    with c = per-pixel minimum.
 *   2. Block subspace iteration with q = d + oversample vectors (Golub & Van Loan 8.2.4):
 *      V <- orth(C V) with modified Gram-Schmidt; every few sweeps a Rayleigh-Ritz step
 *      (the q x q eigenproblem of V' C V, mathjs eigs) rotates V onto Ritz vectors, and the
 *      iteration stops when every wanted Ritz pair has residual |C v - theta v| <= tol * theta_1.
 *      The start block is seeded (Rng normals), so the fit is deterministic under a seed.
 *
 * Signs are fixed like scikit-learn's svd_flip: the largest-magnitude entry of every column is
 * positive.
 */
import { symmetricEig } from '../eval/frechet.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

export interface Pca {
  /** input dimension D and latent dimension d */
  D: number;
  d: number;
  /** [D] */
  mean: Float64Array;
  /** [D,d] row-major; column j is the j-th principal direction */
  U: Float64Array;
  /** [d] variances along U's columns (eigenvalues of C), descending */
  variances: Float64Array;
  /** tr C: total variance, for the explained fraction */
  totalVariance: number;
}

export interface PcaOptions {
  seed?: number;
  /** extra vectors in the block (faster convergence of the wanted ones); default 8 */
  oversample?: number;
  /** stop when every wanted Ritz residual <= tol * largest eigenvalue; default 1e-6 */
  tol?: number;
  /** at most this many sweeps; default 500 */
  maxIter?: number;
  /** Rayleigh-Ritz every this many sweeps; default 5 */
  ritzEvery?: number;
}

export interface PcaFit extends Pca {
  iterations: number;
  converged: boolean;
  /** largest wanted residual / theta_1 at the end */
  residual: number;
}

/** Mean [D] and covariance [D,D] (1/N normaliser) of N rows of x: [N,D], sparse-aware. */
export function meanAndCovariance(x: ArrayLike<number>, N: number, D: number): { mean: Float64Array; C: Float64Array } {
  const shift = new Float64Array(D).fill(Infinity);
  const mean = new Float64Array(D);
  for (let i = 0; i < N; i++) {
    for (let j = 0; j < D; j++) {
      const v = x[i * D + j];
      if (!Number.isFinite(v)) throw new DriftlabError(`kalman: frame ${i} holds a NaN or infinite value; check the clips`);
      mean[j] += v;
      if (v < shift[j]) shift[j] = v;
    }
  }
  for (let j = 0; j < D; j++) mean[j] /= N;
  const C = new Float64Array(D * D);
  const idx = new Int32Array(D), val = new Float64Array(D);
  for (let i = 0; i < N; i++) {
    let nz = 0;
    for (let j = 0; j < D; j++) {
      const v = x[i * D + j] - shift[j];
      if (v !== 0) { idx[nz] = j; val[nz] = v; nz++; }
    }
    for (let a = 0; a < nz; a++) { // upper triangle over the non-zero pixels
      const va = val[a], row = idx[a] * D;
      for (let b = a; b < nz; b++) C[row + idx[b]] += va * val[b];
    }
  }
  for (let a = 0; a < D; a++) {
    const ma = mean[a] - shift[a];
    for (let b = a; b < D; b++) {
      const v = C[a * D + b] / N - ma * (mean[b] - shift[b]);
      C[a * D + b] = v;
      C[b * D + a] = v;
    }
  }
  return { mean, C };
}

/**
 * Modified Gram-Schmidt on the q columns of V: [D,q] row-major, in place. A column that
 * vanishes against the earlier ones (rank deficiency) is replaced by a seeded random one.
 */
export function orthonormalise(V: Float64Array, D: number, q: number, rng: Rng): void {
  for (let j = 0; j < q; j++) {
    for (let attempt = 0; ; attempt++) {
      let before = 0;
      for (let i = 0; i < D; i++) before += V[i * q + j] ** 2;
      for (let k = 0; k < j; k++) {
        let dot = 0;
        for (let i = 0; i < D; i++) dot += V[i * q + k] * V[i * q + j];
        for (let i = 0; i < D; i++) V[i * q + j] -= dot * V[i * q + k];
      }
      let norm = 0;
      for (let i = 0; i < D; i++) norm += V[i * q + j] ** 2;
      norm = Math.sqrt(norm);
      if (norm > 1e-10 * Math.sqrt(before) && norm > 0) {
        for (let i = 0; i < D; i++) V[i * q + j] /= norm;
        break;
      }
      if (attempt > 5) throw new DriftlabError(`kalman: cannot find ${q} independent directions in ${D} dimensions; lower "d"`);
      for (let i = 0; i < D; i++) V[i * q + j] = rng.normal();
    }
  }
}

/** W = C V for symmetric C: [D,D], V: [D,q]. */
function mulCV(C: Float64Array, V: Float64Array, D: number, q: number, W: Float64Array): void {
  W.fill(0);
  for (let i = 0; i < D; i++) {
    const wo = i * q, co = i * D;
    for (let k = 0; k < D; k++) {
      const c = C[co + k];
      if (c === 0) continue;
      const vo = k * q;
      for (let j = 0; j < q; j++) W[wo + j] += c * V[vo + j];
    }
  }
}

/** Top-d eigenpairs of a symmetric PSD C: [D,D] by block subspace iteration (see the top of the file). */
export function topEigenvectors(C: Float64Array, D: number, d: number, opts: PcaOptions = {}): { U: Float64Array; values: Float64Array; iterations: number; converged: boolean; residual: number } {
  const q = Math.min(D, d + (opts.oversample ?? 8));
  const tol = opts.tol ?? 1e-6, maxIter = opts.maxIter ?? 500, every = Math.max(1, opts.ritzEvery ?? 5);
  const rng = new Rng(opts.seed ?? 0).fork('pca-start');
  let V: Float64Array = new Float64Array(D * q);
  for (let i = 0; i < V.length; i++) V[i] = rng.normal();
  orthonormalise(V, D, q, rng);
  let W: Float64Array = new Float64Array(D * q);
  let theta: Float64Array = new Float64Array(q);
  let residual = Infinity, it = 0;
  for (it = 1; it <= maxIter; it++) {
    mulCV(C, V, D, q, W);
    if (it % every === 0 || it === maxIter) {
      // Rayleigh-Ritz: B = V' C V = V' W (q x q), B = Y diag(theta) Y'; V <- V Y, W <- W Y
      const B = new Float64Array(q * q);
      for (let i = 0; i < D; i++) for (let a = 0; a < q; a++) {
        const va = V[i * q + a];
        for (let b = 0; b < q; b++) B[a * q + b] += va * W[i * q + b];
      }
      const e = symmetricEig(B, q, true); // ascending
      const order = Array.from({ length: q }, (_, k) => q - 1 - k);
      const Y = new Float64Array(q * q);
      order.forEach((src, col) => { for (let r = 0; r < q; r++) Y[r * q + col] = e.vectors![r * q + src]; });
      theta = Float64Array.from(order, (k) => e.values[k]);
      V = rotate(V, Y, D, q);
      W = rotate(W, Y, D, q);
      residual = 0;
      const scale = Math.max(theta[0], 1e-300);
      for (let j = 0; j < d; j++) {
        let r2 = 0;
        for (let i = 0; i < D; i++) r2 += (W[i * q + j] - theta[j] * V[i * q + j]) ** 2;
        residual = Math.max(residual, Math.sqrt(r2) / scale);
      }
      if (residual <= tol || it === maxIter) break;
    }
    // next sweep: V <- orth(C V)
    V.set(W);
    orthonormalise(V, D, q, rng);
  }
  const U = new Float64Array(D * d);
  for (let j = 0; j < d; j++) {
    let big = 0;
    for (let i = 0; i < D; i++) if (Math.abs(V[i * q + j]) > Math.abs(big)) big = V[i * q + j];
    const sign = big < 0 ? -1 : 1;
    for (let i = 0; i < D; i++) U[i * d + j] = sign * V[i * q + j];
  }
  const values = Float64Array.from(theta.subarray(0, d), (v) => Math.max(0, v));
  return { U, values, iterations: Math.min(it, maxIter), converged: residual <= tol, residual };
}

function rotate(V: Float64Array, Y: Float64Array, D: number, q: number): Float64Array {
  const out = new Float64Array(D * q);
  for (let i = 0; i < D; i++) for (let a = 0; a < q; a++) {
    const v = V[i * q + a];
    if (v === 0) continue;
    for (let b = 0; b < q; b++) out[i * q + b] += v * Y[a * q + b];
  }
  return out;
}

/** PCA of N frames x: [N,D] (float32 or float64) down to d dimensions. */
export function fitPca(x: ArrayLike<number>, N: number, D: number, d: number, opts: PcaOptions = {}): PcaFit {
  if (!Number.isInteger(d) || d < 1 || d >= D) throw new DriftlabError(`kalman: "d" must be an integer in 1..${D - 1} for ${D}-pixel frames, got ${d}`);
  if (N < 2 || N <= d) throw new DriftlabError(`kalman: PCA to ${d} dimensions needs more than ${d} frames, got ${N}; fit on more clips`);
  if (x.length !== N * D) throw new DriftlabError(`kalman: ${x.length} values are not ${N} frames of ${D} pixels`);
  const { mean, C } = meanAndCovariance(x, N, D);
  let totalVariance = 0;
  for (let i = 0; i < D; i++) totalVariance += C[i * D + i];
  const e = topEigenvectors(C, D, d, opts);
  return { D, d, mean, U: e.U, variances: e.values, totalVariance, iterations: e.iterations, converged: e.converged, residual: e.residual };
}

/** z = U' (x - mean) for the frame at x[xo .. xo+D) into z[zo .. zo+d). */
export function project(p: Pca, x: ArrayLike<number>, xo: number, z: Float64Array, zo = 0): void {
  const { D, d, U, mean } = p;
  for (let j = 0; j < d; j++) z[zo + j] = 0;
  for (let i = 0; i < D; i++) {
    const v = x[xo + i] - mean[i];
    if (v === 0) continue;
    const uo = i * d;
    for (let j = 0; j < d; j++) z[zo + j] += U[uo + j] * v;
  }
}
