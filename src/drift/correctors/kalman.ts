/**
 * `kalman`: a linear-Gaussian state-space model in a PCA latent of frames, fitted on real clips,
 * filtering every generated frame online (the math, with the reasons for each choice, is in
 * docs/DRIFT.md):
 *
 *   latent       z = U' (x - mean)                      U: [D,d] top principal directions
 *   state        s_t = [z_t; z_{t-1}]                   second order, so velocity is representable
 *   dynamics     s_{t+1} = A s_t + w,  w ~ N(0, Q)      A = [[W1 W2], [I 0]], Q = blockdiag(Qz, 0)
 *   measurement  y_t = H s_t + v,      v ~ N(0, R)      H = [I 0], y_t = latent of the generated frame
 *   write-back   x' = clip(x + U (H s_t|t - y_t), -1, 1)  only the PCA part changes; detail is kept
 *
 * W1, W2, Qz: ridge least squares on consecutive latents of real clips (kalman-math.ts);
 * R = rMeasure * I, or with rMeasure "model" the diagonal of the model's own errors in the
 * latent, E[(U'(xhat - x))^2], over frames it generates from real context windows at fit time
 * (rClips windows, DDIM rSteps steps at eta rEta: the rollouts' sampler); P0 = the steady-state filtered covariance (the filter is
 * time-invariant from the first generated frame). One filter per rollout; the covariance
 * recursion never sees the measurements, so one P serves all N rollouts.
 *
 * Config: {"d": 24, "rMeasure": "model" | a number, "rClips": 32, "rSteps": 10, "rEta": 1, "ridge": 1e-3,
 * "dir": fitted folder}. With "dir", an explicit numeric rMeasure replaces the fitted R (and P0
 * is recomputed); d must match the folder.
 * Saved as kalman.json (config, sizes, model id, fit info) + kalman.safetensors (F64 mean, U,
 * A, Q, R, P0, variances).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../../io/atomic.js';
import { NamedTensor, readSafetensors, writeSafetensors } from '../../io/safetensors.js';
import { DriftlabError } from '../../util/errors.js';
import type { ClipSet, CorrectorContext, DriftCorrector, FrameBatch } from '../corrector.js';
import {
  StateSpace, fitAutoregression, gainAndPosterior, matVec, newestLatentH, predictCovariance, steadyStateCovariance, updateMean,
} from '../kalman-math.js';
import { Pca, fitPca, project } from '../pca.js';
import { registerCorrector } from '../registry.js';
import { VIDEO_ETA, continueClips, isEta } from '../../video/sample-clip.js';
import { Rng } from '../../util/rng.js';

export interface KalmanConfig {
  /** PCA latent dimension */
  d: number;
  /**
   * measurement noise R = rMeasure * I, in latent units = per-pixel variance units ([-1,1]
   * frames); "model": R = diag of the model's own latent errors, estimated at fit time
   */
  rMeasure: number | 'model';
  /** with rMeasure "model": real windows the model continues, and its DDIM steps per window */
  rClips: number;
  rSteps: number;
  /**
   * and its DDIM eta (default VIDEO_ETA, the rollouts' default): R is the error of the frames the
   * filter will see, so it is measured with the sampler they come from. Fits made before this
   * setting existed ran at eta 0 and are read as such.
   */
  rEta: number;
  /** relative ridge of the least-squares fit of the dynamics (fraction of the mean eigenvalue of X'X) */
  ridge: number;
}

/**
 * rMeasure defaults to "model": a fixed R = 0.05 I left the filter a no-op on the shipped model,
 * whose measured latent errors are ~76x larger (docs/EXPERIMENTS.md, the demo table)
 */
export const KALMAN_DEFAULTS: KalmanConfig = { d: 24, rMeasure: 'model', rClips: 32, rSteps: 10, rEta: VIDEO_ETA, ridge: 1e-3 };
/** order of the latent autoregression: the state is [z_t, z_{t-1}] */
export const ORDER = 2;
const FORMAT = 'driftlab-kalman-1';

/** Everything a fitted (or loaded) filter needs. */
export interface KalmanModel {
  /** frame side; D = S*S */
  S: number;
  pca: Pca;
  /** the state-space model in the 2d state */
  ss: StateSpace;
  /** [2d,2d] covariance the filter starts from at reset() */
  P0: Float64Array;
}

export interface KalmanFitInfo {
  clips: number;
  frames: number;
  seed: number;
  seconds: number;
  pca: { iterations: number; converged: boolean; residual: number; explainedVariance: number };
  dynamics: { pairs: number; lambda: number; oneStepLatentMse: number; persistenceLatentMse: number };
  steadyState: { iterations: number; converged: boolean };
  /** with rMeasure "model": how R was measured */
  measurement?: MeasurementNoise;
}

/** R estimated from the model's own errors (rMeasure "model"). */
export interface MeasurementNoise {
  windows: number;
  frames: number;
  /** diag R [d]: mean squared latent error per component */
  diag: number[];
  /** mean of diag (compare with rMeasure and oneStepLatentMse) */
  mean: number;
  /** mean squared latent error per component at 1, 2, ... frames after the real context */
  byHorizon: number[];
  sampler: string;
}

/** Continues real context windows [n,k,S,S] with the model: returns [n,F-k,S,S] in [-1,1]. */
export type WindowGenerator = (context: Float32Array, n: number, k: number) => Promise<Float32Array>;

/**
 * R from the model's own errors: continue `windows` real windows (K real frames each, windows
 * spread over the clips) and take, per latent component j, the mean of (U'(xhat - x))_j^2 over
 * every generated frame. The second moment (not the variance) so a biased model counts as noisy.
 * Floored at 1e-6 to keep H P H' + R positive definite.
 */
export async function measurementNoiseFromModel(
  pca: Pca, clips: ClipSet, gen: WindowGenerator, o: { windows: number; K: number; F: number; batch?: number; sampler?: string },
): Promise<MeasurementNoise> {
  const { m, t, s: S } = clips, D = S * S, d = pca.d, { K, F } = o, N = F - K;
  if (t < F) throw new DriftlabError(`kalman: rMeasure "model" continues ${F}-frame windows, but the clips have ${t} frames; fit on longer clips (--frames)`);
  const W = Math.min(o.windows, m), batch = o.batch ?? 8;
  const sum = new Float64Array(d), byH = new Float64Array(N);
  const zg = new Float64Array(d), zt = new Float64Array(d);
  for (let w0 = 0; w0 < W; w0 += batch) {
    const n = Math.min(batch, W - w0);
    const starts = Array.from({ length: n }, (_, b) => ((w0 + b) * 3) % (t - F + 1));
    const ctx = new Float32Array(n * K * D);
    for (let b = 0; b < n; b++) ctx.set(clips.data.subarray(((w0 + b) * t + starts[b]) * D, ((w0 + b) * t + starts[b] + K) * D), b * K * D);
    const out = await gen(ctx, n, K);
    if (out.length !== n * N * D) throw new DriftlabError(`kalman: the model returned ${out.length} values for ${n} windows of ${N} frames`);
    for (let b = 0; b < n; b++) for (let h = 0; h < N; h++) {
      project(pca, out, (b * N + h) * D, zg);
      project(pca, clips.data, ((w0 + b) * t + starts[b] + K + h) * D, zt);
      for (let j = 0; j < d; j++) { const e = (zg[j] - zt[j]) ** 2; sum[j] += e; byH[h] += e / d; }
    }
  }
  const diag = Array.from(sum, (v) => Math.max(1e-6, v / (W * N)));
  return {
    windows: W, frames: W * N, diag, mean: diag.reduce((a, v) => a + v, 0) / d,
    byHorizon: Array.from(byH, (v) => v / W), sampler: o.sampler ?? 'custom',
  };
}

const notFitted = () => new DriftlabError(
  `kalman corrector is not fitted: fit one with 'driftlab fit-corrector kalman --ckpt CKPT --out DIR', or pass --corrector-config '{"dir": "DIR"}' to load a fitted folder`,
);

/** R = r I (or diag(r) for a vector) and the steady-state P0 for a given model. */
function withMeasurementNoise(ss: StateSpace, r: number | ArrayLike<number>): { ss: StateSpace; P0: Float64Array; steady: { iterations: number; converged: boolean } } {
  const R = new Float64Array(ss.m * ss.m);
  for (let i = 0; i < ss.m; i++) R[i * ss.m + i] = typeof r === 'number' ? r : r[i];
  const next = { ...ss, R };
  const st = steadyStateCovariance(next);
  return { ss: next, P0: st.P, steady: { iterations: st.iterations, converged: st.converged } };
}

/** Fit the PCA latent and the latent dynamics on real clips [m,t,S,S]. */
export async function fitKalmanModel(
  clips: ClipSet, cfg: KalmanConfig, seed = 0, model?: { gen: WindowGenerator; K: number; F: number; sampler: string },
): Promise<{ model: KalmanModel; info: KalmanFitInfo }> {
  const t0 = performance.now();
  const { m, t, s: S } = clips, D = S * S, d = cfg.d;
  if (clips.data.length !== m * t * D) throw new DriftlabError(`kalman: clip data holds ${clips.data.length} values, not [${m},${t},${S},${S}]`);
  if (t < ORDER + 1) throw new DriftlabError(`kalman: clips of ${t} frames are too short; the second-order model needs at least ${ORDER + 1} (pass --frames)`);
  const pairs = m * (t - ORDER);
  if (pairs < 2 * ORDER * d) throw new DriftlabError(`kalman: ${pairs} frame transitions are too few to fit a ${ORDER * d}-dimensional state; fit on more clips (--clips) or lower "d"`);
  const pca = fitPca(clips.data, m * t, D, d, { seed });
  const z = new Float64Array(m * t * d); // [m,t,d]
  for (let f = 0; f < m * t; f++) project(pca, clips.data, f * D, z, f * d);
  const ar = fitAutoregression(z, m, t, d, ORDER, cfg.ridge);
  let trQ = 0, persist = 0;
  for (let i = 0; i < d; i++) trQ += ar.Qz[i * d + i];
  for (let c = 0; c < m; c++) for (let s = ORDER - 1; s < t - 1; s++) for (let j = 0; j < d; j++) persist += (z[(c * t + s + 1) * d + j] - z[(c * t + s) * d + j]) ** 2;
  const n = ORDER * d;
  const base: StateSpace = { n, m: d, A: ar.A, Q: ar.Q, H: newestLatentH(d, n), R: new Float64Array(d * d) };
  let measurement: MeasurementNoise | undefined;
  if (cfg.rMeasure === 'model') {
    if (!model) throw new DriftlabError('kalman: rMeasure "model" needs the video model at fit time (driftlab fit-corrector kalman --ckpt CKPT ...)');
    measurement = await measurementNoiseFromModel(pca, clips, model.gen, { windows: cfg.rClips, K: model.K, F: model.F, sampler: model.sampler });
  }
  const { ss, P0, steady } = withMeasurementNoise(base, measurement ? measurement.diag : (cfg.rMeasure as number));
  let explained = 0;
  for (const v of pca.variances) explained += v;
  const info: KalmanFitInfo = {
    clips: m, frames: t, seed, seconds: (performance.now() - t0) / 1000,
    pca: { iterations: pca.iterations, converged: pca.converged, residual: pca.residual, explainedVariance: explained / pca.totalVariance },
    dynamics: { pairs: ar.pairs, lambda: ar.lambda, oneStepLatentMse: trQ / d, persistenceLatentMse: persist / (ar.pairs * d) },
    steadyState: steady,
    ...(measurement ? { measurement } : {}),
  };
  return { model: { S, pca, ss, P0 }, info };
}

const isInt = (v: number, min: number) => Number.isInteger(v) && v >= min;

function parseConfig(config: Record<string, unknown>): { cfg: KalmanConfig; dir?: string } {
  const known = ['d', 'rMeasure', 'rClips', 'rSteps', 'rEta', 'ridge', 'dir'];
  for (const key of Object.keys(config)) if (!known.includes(key)) throw new DriftlabError(`kalman: unknown setting "${key}"; known: ${known.join(', ')}`);
  const d = Number(config.d ?? KALMAN_DEFAULTS.d), ridge = Number(config.ridge ?? KALMAN_DEFAULTS.ridge);
  const rRaw = config.rMeasure ?? KALMAN_DEFAULTS.rMeasure;
  const rMeasure = rRaw === 'model' ? 'model' : Number(rRaw);
  const rClips = Number(config.rClips ?? KALMAN_DEFAULTS.rClips), rSteps = Number(config.rSteps ?? KALMAN_DEFAULTS.rSteps);
  const rEta = Number(config.rEta ?? KALMAN_DEFAULTS.rEta);
  if (!isInt(d, 1)) throw new DriftlabError(`kalman: "d" must be a positive integer, got ${config.d}`);
  if (rMeasure !== 'model' && (!(rMeasure > 0) || !Number.isFinite(rMeasure))) throw new DriftlabError(`kalman: "rMeasure" must be a positive number or "model", got ${JSON.stringify(config.rMeasure)}`);
  if (!isInt(rClips, 1)) throw new DriftlabError(`kalman: "rClips" must be a positive integer, got ${config.rClips}`);
  if (!isInt(rSteps, 1)) throw new DriftlabError(`kalman: "rSteps" must be a positive integer, got ${config.rSteps}`);
  if (!isEta(rEta)) throw new DriftlabError(`kalman: "rEta" must be a DDIM eta in [0, 1], got ${JSON.stringify(config.rEta)}`);
  if (!(ridge >= 0) || !Number.isFinite(ridge)) throw new DriftlabError(`kalman: "ridge" must be a number >= 0, got ${config.ridge}`);
  if (config.dir !== undefined && (typeof config.dir !== 'string' || config.dir === '')) throw new DriftlabError(`kalman: "dir" must be a folder path, got ${JSON.stringify(config.dir)}`);
  return { cfg: { d, rMeasure, rClips, rSteps, rEta, ridge }, dir: config.dir as string | undefined };
}

export class KalmanCorrector implements DriftCorrector {
  readonly name = 'kalman';
  cfg: KalmanConfig;
  model: KalmanModel | null = null;
  info: KalmanFitInfo | null = null;
  private dir: string | undefined;
  private readonly explicit: Set<string>;
  // filter state: one mean per rollout [n, 2d], one shared covariance [2d, 2d]
  private x: Float64Array[] = [];
  private P: Float64Array | null = null;

  constructor(private readonly ctx: CorrectorContext, config: Record<string, unknown> = {}) {
    const p = parseConfig(config);
    this.cfg = p.cfg;
    this.dir = p.dir;
    this.explicit = new Set(Object.keys(config));
  }

  describe(): Record<string, unknown> {
    return { ...(this.dir ? { dir: this.dir } : {}), ...this.cfg, order: ORDER, fitted: this.model !== null };
  }

  async fit(clips: ClipSet, opts: Record<string, unknown> = {}): Promise<void> {
    if (clips.s !== this.ctx.size) throw new DriftlabError(`kalman: clips are ${clips.s}x${clips.s}, the model makes ${this.ctx.size}x${this.ctx.size} frames`);
    const seed = Number(opts.seed ?? 0);
    const c = this.ctx;
    // the model continues real windows (rMeasure "model"); tests may pass their own generator
    const rng = new Rng(seed).fork('kalman-r');
    const gen: WindowGenerator = typeof opts.generate === 'function' ? (opts.generate as WindowGenerator)
      : (ctx, n, k) => continueClips(c.net, c.schedule, c.prediction, ctx, n, k, c.frames, c.size, { sampler: 'ddim', steps: this.cfg.rSteps, eta: this.cfg.rEta, clipX0: true, rng });
    const r = await fitKalmanModel(clips, this.cfg, seed, { gen, K: c.contextFrames, F: c.frames, sampler: `ddim ${this.cfg.rSteps} steps, eta ${this.cfg.rEta}` });
    this.model = r.model;
    this.info = r.info;
    const log = typeof opts.log === 'function' ? (opts.log as (s: string) => void) : null;
    if (r.info.measurement) log?.(`kalman: R from the model's own errors on ${r.info.measurement.frames} generated frames: mean ${r.info.measurement.mean.toFixed(4)} per component (by horizon ${r.info.measurement.byHorizon.map((v) => v.toFixed(3)).join(', ')})`);
    log?.(`kalman: d=${this.cfg.d} explains ${(100 * r.info.pca.explainedVariance).toFixed(1)}% of the variance; one-step latent mse ${r.info.dynamics.oneStepLatentMse.toFixed(4)} (copy-last ${r.info.dynamics.persistenceLatentMse.toFixed(4)}); ${r.info.seconds.toFixed(1)} s`);
  }

  /** s_0 = [z_{K-1}; z_{K-2}] from the context (z_{K-1} twice if K = 1), P = P0. */
  reset(context: Float32Array, n: number, k: number): void {
    const M = this.model;
    if (!M) throw notFitted();
    const { S, pca } = M, D = S * S, d = pca.d;
    if (context.length !== n * k * D) throw new DriftlabError(`kalman: context holds ${context.length} values, not [${n},${k},${S},${S}]; this filter was fitted for ${S}x${S} frames`);
    this.x = [];
    for (let b = 0; b < n; b++) {
      const s = new Float64Array(ORDER * d);
      for (let l = 0; l < ORDER; l++) project(pca, context, (b * k + Math.max(0, k - 1 - l)) * D, s, l * d);
      this.x.push(s);
    }
    this.P = Float64Array.from(M.P0);
  }

  correct(frame: FrameBatch): FrameBatch {
    const M = this.model;
    if (!M) throw notFitted();
    if (!this.P || this.x.length !== frame.n) throw new DriftlabError(`kalman: reset() saw ${this.x.length} rollouts but the frame batch has ${frame.n}; call reset() with the context of this batch first`);
    const { S, pca, ss } = M, D = S * S, d = pca.d, n = ss.n;
    if (frame.s !== S) throw new DriftlabError(`kalman: frames are ${frame.s}x${frame.s}, this filter was fitted for ${S}x${S}`);
    // covariance half: shared by every rollout
    const Pp = predictCovariance(ss.A, ss.Q, this.P, n);
    const { K, P } = gainAndPosterior(ss.H, ss.R, Pp, n, d);
    this.P = P;
    const out = new Float32Array(frame.data.length);
    const y = new Float64Array(d), delta = new Float64Array(d);
    for (let b = 0; b < frame.n; b++) {
      const o = b * D;
      project(pca, frame.data, o, y);
      const xPred = matVec(ss.A, this.x[b], n, n);
      const x = updateMean(xPred, K, ss.H, y, n, d);
      this.x[b] = x;
      for (let j = 0; j < d; j++) delta[j] = x[j] - y[j]; // H s_t|t - y_t
      for (let i = 0; i < D; i++) {
        let v = frame.data[o + i];
        const uo = i * d;
        for (let j = 0; j < d; j++) v += pca.U[uo + j] * delta[j];
        out[o + i] = v < -1 ? -1 : v > 1 ? 1 : v;
      }
    }
    return { n: frame.n, s: S, data: out };
  }

  getState(): unknown {
    return this.P ? { x: this.x.map((v) => Array.from(v)), P: Array.from(this.P) } : null;
  }

  setState(s: unknown): void {
    const M = this.model;
    if (!M) throw notFitted();
    if (s === null) return;
    const n = M.ss.n, st = s as { x?: unknown; P?: unknown };
    const ok = Array.isArray(st?.x) && Array.isArray(st.P) && st.P.length === n * n && st.x.every((v) => Array.isArray(v) && v.length === n);
    if (!ok) throw new DriftlabError(`kalman: the saved filter state does not fit this ${n}-dimensional filter; start a new rollout`);
    this.x = (st.x as number[][]).map((v) => Float64Array.from(v));
    this.P = Float64Array.from(st.P as number[]);
  }

  async save(dir: string): Promise<void> {
    const M = this.model;
    if (!M) throw notFitted();
    fs.mkdirSync(dir, { recursive: true });
    const { pca, ss } = M, D = pca.D, d = pca.d, n = ss.n;
    const f64 = (shape: number[], data: Float64Array): NamedTensor => ({ dtype: 'F64', shape, data });
    await writeSafetensors(path.join(dir, 'kalman.safetensors'), {
      mean: f64([D], pca.mean), U: f64([D, d], pca.U), variances: f64([d], pca.variances),
      A: f64([n, n], ss.A), Q: f64([n, n], ss.Q), R: f64([d, d], ss.R), P0: f64([n, n], M.P0),
    }, { format: FORMAT, modelId: this.ctx.modelId });
    const meta = {
      format: FORMAT, corrector: 'kalman', modelId: this.ctx.modelId, size: M.S, d, order: ORDER,
      totalVariance: pca.totalVariance, config: this.cfg, fit: this.info,
      layout: 'kalman.safetensors (F64): mean [D], U [D,d] (columns = principal directions), variances [d], A Q P0 [2d,2d] over s = [z_t; z_{t-1}], R [d,d]',
    };
    await writeFileAtomic(path.join(dir, 'kalman.json'), JSON.stringify(meta, null, 2) + '\n');
  }

  async load(dir: string): Promise<void> {
    const jp = path.join(dir, 'kalman.json');
    if (!fs.existsSync(jp)) throw new DriftlabError(`${dir} holds no fitted kalman corrector (no kalman.json); fit one with 'driftlab fit-corrector kalman --ckpt CKPT --out ${dir}'`);
    let meta: any;
    try { meta = JSON.parse(fs.readFileSync(jp, 'utf8')); } catch { throw new DriftlabError(`${jp} is not valid JSON; fit the kalman corrector again`); }
    if (meta?.format !== FORMAT) throw new DriftlabError(`${jp} is not a ${FORMAT} file; fit the kalman corrector again`);
    if (meta.modelId !== this.ctx.modelId || meta.size !== this.ctx.size) {
      throw new DriftlabError(`${dir}: corrector folder fitted for another model (model ${meta.modelId}, ${meta.size}x${meta.size} frames; this is ${this.ctx.modelId}, ${this.ctx.size}x${this.ctx.size}); fit it again for this checkpoint`);
    }
    const S = meta.size as number, D = S * S, d = meta.d as number, n = ORDER * d;
    if (!isInt(d, 1) || meta.order !== ORDER) throw new DriftlabError(`${jp}: unsupported latent size or order; fit the kalman corrector again`);
    if (this.explicit.has('d') && this.cfg.d !== d) throw new DriftlabError(`kalman: "d" is ${this.cfg.d} but ${dir} was fitted with d=${d}; drop "d" or fit again`);
    const st = await readSafetensors(path.join(dir, 'kalman.safetensors'));
    const get = (name: string, shape: number[]): Float64Array => {
      const t = st.tensors[name];
      if (!t || t.dtype !== 'F64' || JSON.stringify(t.shape) !== JSON.stringify(shape)) throw new DriftlabError(`${dir}/kalman.safetensors: tensor ${name} is missing or not F64 [${shape.join(',')}]; fit the kalman corrector again`);
      return t.data as Float64Array;
    };
    const pca: Pca = { D, d, mean: get('mean', [D]), U: get('U', [D, d]), variances: get('variances', [d]), totalVariance: Number(meta.totalVariance) };
    let ss: StateSpace = { n, m: d, A: get('A', [n, n]), Q: get('Q', [n, n]), H: newestLatentH(d, n), R: get('R', [d, d]) };
    let P0 = get('P0', [n, n]);
    // fits from before rEta existed measured R at eta 0
    const fitted = { ...KALMAN_DEFAULTS, rEta: 0, ...(meta.config ?? {}) } as KalmanConfig;
    if (this.explicit.has('rMeasure') && this.cfg.rMeasure !== fitted.rMeasure) {
      const r = this.cfg.rMeasure;
      if (r === 'model') throw new DriftlabError(`kalman: rMeasure "model" is measured when fitting; ${dir} was fitted with rMeasure ${fitted.rMeasure}: fit again with {"rMeasure": "model"}`);
      ({ ss, P0 } = withMeasurementNoise(ss, r)); // tune R without refitting
    }
    this.cfg = { ...fitted, d, rMeasure: this.explicit.has('rMeasure') ? this.cfg.rMeasure : fitted.rMeasure };
    this.model = { S, pca, ss, P0 };
    this.info = meta.fit ?? null;
    this.dir = dir;
    this.x = [];
    this.P = null;
  }
}

registerCorrector('kalman', 'linear-Gaussian state-space filter in a PCA latent of frames ([z_t, z_t-1] state, dynamics fitted by least squares on real clips)', (ctx, config) => new KalmanCorrector(ctx, config));
