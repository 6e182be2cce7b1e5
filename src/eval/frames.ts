/**
 * Per-frame image metrics against ground truth: MSE, PSNR and SSIM, one value per frame index,
 * averaged over the N sequences. Used for images now (T = number of images, N = 1) and for
 * video rollouts later. Everything is computed in float64 on pixels in [0,1] (data range 1):
 * uint8 inputs are divided by 255 first, which gives the same PSNR and SSIM as data range 255.
 *
 *   MSE_nt  = mean_px (pred - truth)^2
 *   PSNR_nt = 10 log10(1 / MSE_nt)  [dB]; +Infinity when the frames are identical
 *   SSIM_nt = mean over the 'valid' region of the SSIM map (Wang et al. 2004, eq. 13):
 *             ((2 mu_x mu_y + C1)(2 s_xy + C2)) / ((mu_x^2 + mu_y^2 + C1)(s_x^2 + s_y^2 + C2))
 *             local statistics under an 11x11 Gaussian window (sigma 1.5, weights normalised
 *             to sum 1, population covariances), C1 = (0.01 L)^2, C2 = (0.03 L)^2, L = 1.
 *
 * 'Valid' means only window positions fully inside the frame, an (H-10) x (W-10) map. This is
 * exactly what scikit-image computes with structural_similarity(x, y, gaussian_weights=True,
 * sigma=1.5, use_sample_covariance=False, data_range=1): it filters with reflect padding and
 * then crops (win_size-1)/2 = 5 pixels from every border before taking the mean, so the padded
 * values never reach the mean. Frames must therefore be at least 11 x 11.
 *
 * Averages over N: mse[t] and ssim[t] are means of the per-sequence values; psnr[t] is the
 * mean of per-sequence PSNRs in dB (the video-prediction convention), not the PSNR of mse[t].
 */
import { DriftlabError } from '../util/errors.js';

export interface SsimOptions {
  /** window side, odd (default 11) */
  window?: number;
  /** Gaussian sigma (default 1.5) */
  sigma?: number;
  k1?: number;
  k2?: number;
  /** dynamic range L of the pixel values (default 1) */
  dataRange?: number;
}

export const SSIM_DEFAULTS: Required<SsimOptions> = { window: 11, sigma: 1.5, k1: 0.01, k2: 0.03, dataRange: 1 };

/** Frames in [0,1]: data [N,T,H,W] row-major. */
export interface Frames {
  data: Float64Array | Float32Array;
  n: number;
  t: number;
  h: number;
  w: number;
}

export interface FrameMetrics {
  /** [T] */
  mse: number[];
  /** [T] dB; +Infinity where every sequence matches exactly at that frame */
  psnr: number[];
  /** [T] */
  ssim: number[];
  n: number;
  frames: number;
  height: number;
  width: number;
  dataRange: number;
}

/** 1-D Gaussian weights exp(-x^2 / 2 sigma^2), x = -r..r, normalised to sum 1 (scipy's gaussian_filter1d kernel). */
export function gaussianWindow(size = 11, sigma = 1.5): Float64Array {
  if (!Number.isInteger(size) || size < 1 || size % 2 === 0) throw new DriftlabError(`SSIM window must be an odd positive integer, got ${size}`);
  const r = (size - 1) / 2;
  const w = new Float64Array(size);
  let s = 0;
  for (let i = 0; i < size; i++) s += w[i] = Math.exp(-((i - r) ** 2) / (2 * sigma * sigma));
  for (let i = 0; i < size; i++) w[i] /= s;
  return w;
}

export function mse(a: ArrayLike<number>, b: ArrayLike<number>, offA = 0, offB = 0, len = a.length): number {
  let s = 0;
  for (let i = 0; i < len; i++) {
    const d = a[offA + i] - b[offB + i];
    s += d * d;
  }
  return s / len;
}

/** PSNR in dB from an MSE; +Infinity for MSE 0. */
export function psnrFromMse(m: number, dataRange = 1): number {
  return m === 0 ? Infinity : 10 * Math.log10((dataRange * dataRange) / m);
}

/** Valid separable filtering of img [H,W] with the 1-D kernel k: out [(H-K+1),(W-K+1)]. */
function filterValid(img: Float64Array, H: number, W: number, k: Float64Array, tmp: Float64Array, out: Float64Array): void {
  const K = k.length;
  const OW = W - K + 1, OH = H - K + 1;
  // rows: tmp [H, OW]
  for (let y = 0; y < H; y++) {
    const io = y * W, to = y * OW;
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += k[j] * img[io + x + j];
      tmp[to + x] = s;
    }
  }
  // columns: out [OH, OW]
  for (let y = 0; y < OH; y++) {
    const oo = y * OW;
    for (let x = 0; x < OW; x++) {
      let s = 0;
      for (let j = 0; j < K; j++) s += k[j] * tmp[(y + j) * OW + x];
      out[oo + x] = s;
    }
  }
}

/**
 * Mean SSIM of two [H,W] frames (values in units where the data range is opts.dataRange),
 * read from x at offX and y at offY.
 */
export function ssim(x: ArrayLike<number>, y: ArrayLike<number>, H: number, W: number, opts: SsimOptions = {}, offX = 0, offY = 0): number {
  const o = { ...SSIM_DEFAULTS, ...opts };
  const K = o.window;
  if (H < K || W < K) throw new DriftlabError(`SSIM needs frames of at least ${K}x${K} pixels (its Gaussian window), got ${H}x${W}`);
  const k = gaussianWindow(K, o.sigma);
  const P = H * W;
  const X = new Float64Array(P), Y = new Float64Array(P), XX = new Float64Array(P), YY = new Float64Array(P), XY = new Float64Array(P);
  for (let i = 0; i < P; i++) {
    const a = x[offX + i], b = y[offY + i];
    X[i] = a; Y[i] = b; XX[i] = a * a; YY[i] = b * b; XY[i] = a * b;
  }
  const OH = H - K + 1, OW = W - K + 1, Q = OH * OW;
  const tmp = new Float64Array(H * OW);
  const [ux, uy, uxx, uyy, uxy] = [0, 1, 2, 3, 4].map(() => new Float64Array(Q));
  filterValid(X, H, W, k, tmp, ux);
  filterValid(Y, H, W, k, tmp, uy);
  filterValid(XX, H, W, k, tmp, uxx);
  filterValid(YY, H, W, k, tmp, uyy);
  filterValid(XY, H, W, k, tmp, uxy);
  const C1 = (o.k1 * o.dataRange) ** 2, C2 = (o.k2 * o.dataRange) ** 2;
  let sum = 0;
  for (let i = 0; i < Q; i++) {
    const mx = ux[i], my = uy[i];
    const vx = uxx[i] - mx * mx, vy = uyy[i] - my * my, vxy = uxy[i] - mx * my;
    sum += ((2 * mx * my + C1) * (2 * vxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
  }
  return sum / Q;
}

/** Per-frame MSE, PSNR and SSIM of pred against truth (same shape), averaged over N. */
export function frameMetrics(pred: Frames, truth: Frames, opts: SsimOptions = {}): FrameMetrics {
  if (pred.n !== truth.n || pred.t !== truth.t || pred.h !== truth.h || pred.w !== truth.w) {
    throw new DriftlabError(`prediction is [${pred.n},${pred.t},${pred.h},${pred.w}] but truth is [${truth.n},${truth.t},${truth.h},${truth.w}]; pass arrays of the same shape`);
  }
  const { n: N, t: T, h: H, w: W } = pred;
  const P = H * W;
  const dataRange = opts.dataRange ?? 1;
  const out: FrameMetrics = { mse: new Array(T).fill(0), psnr: new Array(T).fill(0), ssim: new Array(T).fill(0), n: N, frames: T, height: H, width: W, dataRange };
  for (let n = 0; n < N; n++) {
    for (let t = 0; t < T; t++) {
      const off = (n * T + t) * P;
      const m = mse(pred.data, truth.data, off, off, P);
      out.mse[t] += m / N;
      out.psnr[t] += psnrFromMse(m, dataRange) / N;
      out.ssim[t] += ssim(pred.data, truth.data, H, W, opts, off, off) / N;
    }
  }
  return out;
}
