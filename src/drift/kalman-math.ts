/**
 * Float64 linear algebra for the `kalman` corrector: small dense row-major matrices (a state of
 * 2d <= ~100), the Kalman recursion, its steady state, and the least-squares fit of a linear
 * autoregression. Plain loops over Float64Array: at these sizes they beat a general library, and
 * every number is reproducible bit for bit. Names follow the textbook (Kalman 1960; Sarkka,
 * "Bayesian Filtering and Smoothing", ch. 4):
 *
 *   predict   x- = A x                 P- = A P A' + Q
 *   update    S  = H P- H' + R         K  = P- H' S^-1
 *             x  = x- + K (y - H x-)   P  = (I - K H) P- (I - K H)' + K R K'   (Joseph form)
 *
 * The Joseph form equals (I - K H) P- for the optimal K but stays symmetric positive
 * semi-definite under rounding; we also symmetrise after every step.
 */
import { DriftlabError } from '../util/errors.js';

/** A linear-Gaussian state-space model: s' = A s + w, w ~ N(0, Q); y = H s + v, v ~ N(0, R). */
export interface StateSpace {
  /** state dimension */
  n: number;
  /** measurement dimension */
  m: number;
  /** [n,n] */ A: Float64Array;
  /** [n,n] */ Q: Float64Array;
  /** [m,n] */ H: Float64Array;
  /** [m,m] */ R: Float64Array;
}

// ---- small dense matrices, row-major ----

export function eye(n: number): Float64Array {
  const I = new Float64Array(n * n);
  for (let i = 0; i < n; i++) I[i * n + i] = 1;
  return I;
}

/** a: [m,k] times b: [k,n] -> [m,n] */
export function matMul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    const co = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      if (aip === 0) continue;
      const bo = p * n;
      for (let j = 0; j < n; j++) c[co + j] += aip * b[bo + j];
    }
  }
  return c;
}

/** a: [m,k] times b': b is [n,k] -> [m,n] */
export function matMulBt(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
      c[i * n + j] = s;
    }
  }
  return c;
}

/** a: [m,n] times x: [n] -> [m] */
export function matVec(a: Float64Array, x: ArrayLike<number>, m: number, n: number): Float64Array {
  const y = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) s += a[i * n + j] * x[j];
    y[i] = s;
  }
  return y;
}

export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/** In place: a = (a + a') / 2. */
export function symmetrise(a: Float64Array, n: number): Float64Array {
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = 0.5 * (a[i * n + j] + a[j * n + i]);
      a[i * n + j] = v;
      a[j * n + i] = v;
    }
  }
  return a;
}

/** Lower-triangular L with L L' = a for a symmetric positive definite [n,n] a; null if it is not. */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  const L = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let k = 0; k < j; k++) d -= L[j * n + k] * L[j * n + k];
    if (!(d > 0)) return null;
    const ljj = Math.sqrt(d);
    L[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let k = 0; k < j; k++) s -= L[i * n + k] * L[j * n + k];
      L[i * n + j] = s / ljj;
    }
  }
  return L;
}

/** X = a^-1 b for symmetric positive definite a: [n,n], b: [n,c] (Cholesky, two triangular solves). */
export function solveSpd(a: Float64Array, b: Float64Array, n: number, c: number, what = 'matrix'): Float64Array {
  const L = cholesky(a, n);
  if (!L) throw new DriftlabError(`kalman: the ${what} is not positive definite; raise "ridge" or "rMeasure", or fit on more clips`);
  const x = Float64Array.from(b);
  for (let col = 0; col < c; col++) {
    for (let i = 0; i < n; i++) { // L z = b
      let s = x[i * c + col];
      for (let k = 0; k < i; k++) s -= L[i * n + k] * x[k * c + col];
      x[i * c + col] = s / L[i * n + i];
    }
    for (let i = n - 1; i >= 0; i--) { // L' x = z
      let s = x[i * c + col];
      for (let k = i + 1; k < n; k++) s -= L[k * n + i] * x[k * c + col];
      x[i * c + col] = s / L[i * n + i];
    }
  }
  return x;
}

// ---- the Kalman recursion ----

/** Covariance half of the predict step: P- = A P A' + Q (symmetrised). */
export function predictCovariance(A: Float64Array, Q: Float64Array, P: Float64Array, n: number): Float64Array {
  const Pp = matMulBt(matMul(A, P, n, n, n), A, n, n, n);
  for (let i = 0; i < n * n; i++) Pp[i] += Q[i];
  return symmetrise(Pp, n);
}

/**
 * Covariance half of the update step, shared by every rollout (it never sees the measurement):
 * the gain K: [n,m] and the Joseph-form posterior P: [n,n].
 */
export function gainAndPosterior(H: Float64Array, R: Float64Array, Pp: Float64Array, n: number, m: number): { K: Float64Array; P: Float64Array } {
  const HP = matMul(H, Pp, m, n, n); // [m,n] = H P-
  const S = matMulBt(HP, H, m, n, m); // [m,m] = H P- H'
  for (let i = 0; i < m * m; i++) S[i] += R[i];
  symmetrise(S, m);
  // K' = S^-1 H P-  (S and P- are symmetric), so K = (S^-1 H P-)'
  const K = transpose(solveSpd(S, HP, m, n, 'innovation covariance H P- H\' + R'), m, n); // [n,m]
  const IKH = matMul(K, H, n, m, n); // [n,n]
  for (let i = 0; i < n * n; i++) IKH[i] = -IKH[i];
  for (let i = 0; i < n; i++) IKH[i * n + i] += 1;
  const P = matMulBt(matMul(IKH, Pp, n, n, n), IKH, n, n, n);
  const KRKt = matMulBt(matMul(K, R, n, m, m), K, n, m, n);
  for (let i = 0; i < n * n; i++) P[i] += KRKt[i];
  return { K, P: symmetrise(P, n) };
}

/** Mean half of the update: x = x- + K (y - H x-). */
export function updateMean(xPred: Float64Array, K: Float64Array, H: Float64Array, y: ArrayLike<number>, n: number, m: number): Float64Array {
  const innov = new Float64Array(m);
  const Hx = matVec(H, xPred, m, n);
  for (let i = 0; i < m; i++) innov[i] = y[i] - Hx[i];
  const x = Float64Array.from(xPred);
  const Ki = matVec(K, innov, n, m);
  for (let i = 0; i < n; i++) x[i] += Ki[i];
  return x;
}

/** predict: x- = A x, P- = A P A' + Q */
export function predict(ss: StateSpace, x: Float64Array, P: Float64Array): { x: Float64Array; P: Float64Array } {
  return { x: matVec(ss.A, x, ss.n, ss.n), P: predictCovariance(ss.A, ss.Q, P, ss.n) };
}

/** update with measurement y: K = P- H' (H P- H' + R)^-1, x = x- + K (y - H x-), Joseph-form P. */
export function update(ss: StateSpace, xPred: Float64Array, PPred: Float64Array, y: ArrayLike<number>): { x: Float64Array; P: Float64Array; K: Float64Array } {
  const { K, P } = gainAndPosterior(ss.H, ss.R, PPred, ss.n, ss.m);
  return { x: updateMean(xPred, K, ss.H, y, ss.n, ss.m), P, K };
}

/**
 * The steady-state filtered covariance P_inf: the fixed point of P -> update(predict(P)), found
 * by iterating the Riccati recursion from Q (the recursion does not depend on the measurements).
 * Stops when max |dP| <= tol * max |P|.
 */
export function steadyStateCovariance(ss: StateSpace, tol = 1e-12, maxIter = 10_000): { P: Float64Array; iterations: number; converged: boolean } {
  const { n, m } = ss;
  let P: Float64Array = Float64Array.from(ss.Q);
  for (let it = 1; it <= maxIter; it++) {
    const next = gainAndPosterior(ss.H, ss.R, predictCovariance(ss.A, ss.Q, P, n), n, m).P;
    let diff = 0, scale = 0;
    for (let i = 0; i < n * n; i++) { diff = Math.max(diff, Math.abs(next[i] - P[i])); scale = Math.max(scale, Math.abs(next[i])); }
    P = next;
    if (diff <= tol * scale) return { P, iterations: it, converged: true };
  }
  return { P, iterations: maxIter, converged: false };
}

// ---- fitting the dynamics ----

export interface Autoregression {
  /** latent dimension d and order p; the state is [z_t, z_{t-1}, ..., z_{t-p+1}] of size n = p d */
  d: number;
  order: number;
  /** [d, p d]: z_{t+1} ~ W [z_t; ...; z_{t-p+1}] */
  W: Float64Array;
  /** [d,d] residual covariance (1/N normaliser) */
  Qz: Float64Array;
  /** companion-form transition [n,n] and process noise blockdiag(Qz, 0) [n,n] */
  A: Float64Array;
  Q: Float64Array;
  /** number of (state, next latent) pairs used */
  pairs: number;
  /** the absolute ridge added to the diagonal of X'X: ridge * tr(X'X) / (p d) */
  lambda: number;
}

/**
 * Ridge least squares for z_{t+1} = W x_t + w_t, x_t = [z_t; ...; z_{t-p+1}], over m sequences
 * of t latents each (z: [m, t, d]):
 *
 *   W = (sum y x') (sum x x' + lambda I)^-1,   lambda = ridge * tr(sum x x') / (p d)
 *   Qz = (1/N) sum (y - W x)(y - W x)'         (N pairs; the maximum-likelihood normaliser)
 *
 * The ridge is relative (a fraction of the mean eigenvalue of X'X), so it does not depend on
 * the scale of the latents. Returned with the companion matrices of the p d state.
 */
export function fitAutoregression(z: ArrayLike<number>, m: number, t: number, d: number, order: number, ridge: number): Autoregression {
  const p = order, n = p * d;
  if (!Number.isInteger(p) || p < 1) throw new DriftlabError(`kalman: autoregression order must be a positive integer, got ${order}`);
  if (t < p + 1) throw new DriftlabError(`kalman: an order-${p} model needs clips of at least ${p + 1} frames, got ${t}`);
  if (!(ridge >= 0)) throw new DriftlabError(`kalman: "ridge" must be >= 0, got ${ridge}`);
  const N = m * (t - p);
  const XtX = new Float64Array(n * n), YXt = new Float64Array(d * n);
  const x = new Float64Array(n);
  const at = (c: number, s: number, j: number) => z[(c * t + s) * d + j];
  const fillX = (c: number, s: number) => { // x = [z_s; z_{s-1}; ...]
    for (let l = 0; l < p; l++) for (let j = 0; j < d; j++) x[l * d + j] = at(c, s - l, j);
  };
  for (let c = 0; c < m; c++) {
    for (let s = p - 1; s < t - 1; s++) {
      fillX(c, s);
      for (let a = 0; a < n; a++) {
        const xa = x[a];
        for (let b = a; b < n; b++) XtX[a * n + b] += xa * x[b];
      }
      for (let i = 0; i < d; i++) {
        const yi = at(c, s + 1, i);
        for (let b = 0; b < n; b++) YXt[i * n + b] += yi * x[b];
      }
    }
  }
  for (let a = 0; a < n; a++) for (let b = 0; b < a; b++) XtX[a * n + b] = XtX[b * n + a];
  let tr = 0;
  for (let a = 0; a < n; a++) tr += XtX[a * n + a];
  const lambda = ridge * (tr / n);
  const G = Float64Array.from(XtX);
  for (let a = 0; a < n; a++) G[a * n + a] += lambda;
  // W' = G^-1 (YX')'  (G symmetric)
  const W = transpose(solveSpd(G, transpose(YXt, d, n), n, d, 'regressor Gram matrix X\'X + ridge'), n, d);
  const Qz = new Float64Array(d * d), r = new Float64Array(d);
  for (let c = 0; c < m; c++) {
    for (let s = p - 1; s < t - 1; s++) {
      fillX(c, s);
      for (let i = 0; i < d; i++) {
        let v = at(c, s + 1, i);
        for (let b = 0; b < n; b++) v -= W[i * n + b] * x[b];
        r[i] = v;
      }
      for (let i = 0; i < d; i++) for (let j = i; j < d; j++) Qz[i * d + j] += r[i] * r[j];
    }
  }
  for (let i = 0; i < d; i++) for (let j = i; j < d; j++) { Qz[i * d + j] /= N; Qz[j * d + i] = Qz[i * d + j]; }
  const { A, Q } = companion(W, Qz, d, p);
  return { d, order: p, W, Qz, A, Q, pairs: N, lambda };
}

/** Companion form of an order-p autoregression: A = [[W], [I 0]], Q = blockdiag(Qz, 0). */
export function companion(W: Float64Array, Qz: Float64Array, d: number, p: number): { A: Float64Array; Q: Float64Array } {
  const n = p * d;
  const A = new Float64Array(n * n), Q = new Float64Array(n * n);
  for (let i = 0; i < d; i++) for (let j = 0; j < n; j++) A[i * n + j] = W[i * n + j];
  for (let i = d; i < n; i++) A[i * n + (i - d)] = 1; // shift: the older lags move down
  for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) Q[i * n + j] = Qz[i * d + j];
  return { A, Q };
}

/** H = [I_d 0 ... 0]: the measurement is the newest latent. [d, n] */
export function newestLatentH(d: number, n: number): Float64Array {
  const H = new Float64Array(d * n);
  for (let i = 0; i < d; i++) H[i * n + i] = 1;
  return H;
}
