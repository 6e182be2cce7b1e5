/**
 * Training on the model's own rollouts (`train-video --self-context P`).
 *
 * A rollout feeds the model its own frames as context, while training shows it only the
 * simulator's frames: the contexts it meets after a few frames (blurred strokes, a digit a pixel
 * off, two digits rendered wrongly as they separate after a crossing) are outside what it was
 * trained on, and its errors compound. This is exposure bias; the remedy is the one of scheduled
 * sampling (Bengio et al. 2015) and DAgger (Ross et al. 2011), here with the simulator as the
 * oracle: train on contexts the model itself produced, with the true continuation as the target.
 *
 * The pool. Every `every` steps the EMA weights roll out `clips` fresh training clips for
 * `frames` frames (DDIM `steps` per frame, x0 clipped, frames stored 8-bit as rollouts store
 * them), starting from each clip's K true frames. The window at offset j (1..frames) of a clip is
 *
 *   context = the last K frames of [true frames 0..K-1, generated frames 1..j]
 *   targets = frames K+j .. K+j+N-1 of the clip: with target 'truth' the simulator's frames; with
 *             'shifted' (the default) the simulator's frames with every digit d drawn displaced by
 *             e_d = (where generated frame j shows digit d) - (where digit d is at that frame),
 *             positions recovered by trajectory.ts
 *
 * so its context ends with min(j, K) generated frames. 'truth' asks the model to jump back onto
 * the true trajectory, which its context does not show: measured, that teaches a hedge between
 * the places the digits might be (docs/EXPERIMENTS.md, self-context). 'shifted' is the expert
 * move from the state the context shows (the simulator's motion, bounces included, continued
 * from where the model put the digits): it teaches the model to repair its own frames (blur,
 * strokes merged after a crossing) and to keep the motion, never to guess. A window is kept only
 * while the model still tracks: every generated frame in its context has a trajectory error of
 * at most `maxError` canvas px; past that the positions recovered from it mean little.
 * A training window comes from the pool with probability p (uniformly among the kept windows),
 * otherwise it is a fresh clip as without the option.
 *
 * Exact resume: the pool is saved in the checkpoint folder (self-context.bin, atomic) with the
 * step it was made at. A resumed run loads it when it is the pool the uninterrupted run would hold
 * (made at the last multiple of `every`), and otherwise makes it again from the checkpoint's EMA
 * weights, which are then the same weights (every is a multiple of checkpointEvery).
 * Pool clips are clip 1e9 + (step / every) * clips + i of the run's Moving-MNIST generator,
 * beyond any clip the main stream reaches.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MovingMnist, MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import { loadBundledMnist } from '../../datasets/mnist/index.js';
import { UNetConfig, anchorFramesOf } from '../diffusion/config.js';
import { UNetModel } from '../diffusion/model.js';
import { Prediction } from '../diffusion/objective.js';
import { denoiserOf } from '../diffusion/pipeline.js';
import { Schedule } from '../diffusion/schedule.js';
import { clipTruth, templateGroups, trajectoryError } from '../drift/trajectory-truth.js';
import { TrajectoryMatcher } from '../drift/trajectory.js';
import { createEngine } from '../engine/select.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { poolFrame } from './clips.js';
import { fromU8, toU8 } from './frames8.js';
import { continueClips } from './sample-clip.js';
import { withAnchors } from './rollout.js';

export interface SelfContextConfig {
  /** probability that a training window comes from the pool */
  p: number;
  /** make a new pool every `every` steps (a multiple of checkpointEvery) */
  every: number;
  /** clips rolled out per pool */
  clips: number;
  /** frames generated per clip: window offsets 1..frames */
  frames: number;
  /** keep a window while every generated frame of its context is within this many canvas px of the truth */
  maxError: number;
  /** DDIM steps per generated frame */
  steps: number;
  /**
   * the targets: 'truth', the simulator's own continuation; or 'shifted', that continuation with
   * every digit displaced by the position error of the context's last generated frame (where that
   * frame shows it minus where it is), i.e. what the simulator would draw next from the state the
   * context shows (default)
   */
  target: 'truth' | 'shifted';
}

export const SELF_CONTEXT_DEFAULTS: Omit<SelfContextConfig, 'p'> = { every: 400, clips: 256, frames: 12, maxError: 6, steps: 10, target: 'shifted' };
export const SELF_CONTEXT_TARGETS = ['truth', 'shifted'] as const;

export const SELF_CONTEXT_FILE = 'self-context.bin';
const MAGIC = 'driftlab-self-context-2';
/** clip indices of the pools start here, beyond the main stream */
export const POOL_CLIP_BASE = 1_000_000_000;
/** clips rolled out together */
const CHUNK = 32;

export function validateSelfContext(c: SelfContextConfig, checkpointEvery: number): void {
  if (!(c.p >= 0 && c.p <= 1)) throw new DriftlabError(`--self-context must be in [0, 1], got ${c.p}`);
  if (!(Number.isInteger(c.every) && c.every >= 1 && c.every % checkpointEvery === 0)) {
    throw new DriftlabError(`--self-context-every must be a positive multiple of the checkpoint interval (${checkpointEvery} steps), so that a resumed run can remake its pool; got ${c.every}`);
  }
  if (!(Number.isInteger(c.clips) && c.clips >= 1 && c.clips <= 65536)) throw new DriftlabError(`--self-context-clips must be an integer in 1..65536, got ${c.clips}`);
  if (!(Number.isInteger(c.frames) && c.frames >= 1 && c.frames <= 1000)) throw new DriftlabError(`--self-context-frames must be an integer in 1..1000, got ${c.frames}`);
  if (!(c.maxError >= 0)) throw new DriftlabError(`--self-context-max-error must be >= 0 canvas px, got ${c.maxError}`);
  if (!(Number.isInteger(c.steps) && c.steps >= 1 && c.steps <= 1000)) throw new DriftlabError(`--self-context-steps must be an integer in 1..1000, got ${c.steps}`);
  if (!SELF_CONTEXT_TARGETS.includes(c.target)) throw new DriftlabError(`--self-context-target must be one of ${SELF_CONTEXT_TARGETS.join(', ')}, got ${c.target}`);
}

/** The first n true frames of pool clips c0..c0+B-1 as [B, n, S, S] floats (8-bit, as a rollout holds them). */
function firstFrames(truth: Uint8Array, c0: number, B: number, n: number, T: number, fr: number): Float32Array {
  const out = new Float32Array(B * n * fr);
  for (let b = 0; b < B; b++) out.set(fromU8(truth.subarray((c0 + b) * T * fr, ((c0 + b) * T + n) * fr)), b * n * fr);
  return out;
}

const bytesOf = (a: Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** What the pool needs to know of the run. */
export interface PoolModel {
  model: UNetConfig;
  schedule: Schedule;
  prediction: Prediction;
  data: MovingMnistConfig & { pool: number };
  seed: number;
}

export interface PoolStats {
  step: number;
  clips: number;
  frames: number;
  /** mean trajectory error (canvas px) of the generated frames, per offset 1..frames */
  meanError: number[];
  /** kept windows, of clips x frames */
  kept: number;
  seconds: number;
}

/** One pool: per clip, the true frames 0..K+L+N-1 and the generated frames 1..L (uint8). */
export class SelfContextPool {
  /** [clip, offset] of every kept window */
  private windows: Int32Array = new Int32Array(0);
  private truth: Uint8Array = new Uint8Array(0);
  private gen: Uint8Array = new Uint8Array(0);
  /** 'shifted' targets: [clip, offset 1..L, target n] frames */
  private tgt: Uint8Array = new Uint8Array(0);
  stats: PoolStats | null = null;
  /** set when the pool's rollouts could not run on onnx (the fallback warning) */
  engineLine: string | null = null;
  private readonly K: number;
  private readonly A: number;
  private readonly N: number;
  private readonly fr: number;
  private readonly T: number;

  constructor(readonly cfg: SelfContextConfig, readonly m: PoolModel) {
    const v = m.model.video!;
    this.A = anchorFramesOf(v);
    this.K = v.contextFrames - this.A; // the given real frames (an anchored model's anchors are their first A)
    this.N = v.frames - v.contextFrames;
    this.fr = m.model.sampleSize * m.model.sampleSize;
    this.T = this.K + cfg.frames + this.N;
  }

  get size(): number { return this.windows.length / 2; }

  /** The kept windows as [clip, offset] pairs. */
  kept(): [number, number][] {
    return Array.from({ length: this.size }, (_, i) => [this.windows[2 * i], this.windows[2 * i + 1]] as [number, number]);
  }

  /** Trajectory error (canvas px) of generated frame i (0-based: frame K+i of the clip) of pool clip c. */
  error(c: number, i: number): number { return this.errors[c * this.cfg.frames + i]; }

  /** The window [F*S*S] (float, [-1,1]) of a uniformly drawn kept window, or null when none is kept (no draw then). */
  draw(rng: Rng): Float32Array | null {
    if (this.size === 0) return null;
    const i = rng.int(this.size);
    return this.window(this.windows[2 * i], this.windows[2 * i + 1]);
  }

  /** Window j (1..frames) of clip c: see the file comment. */
  window(c: number, j: number): Float32Array {
    const { K, N, fr, T } = this, L = this.cfg.frames;
    const out = new Float32Array((K + N) * fr);
    for (let f = 0; f < K + N; f++) {
      const pos = j + f;
      const src = f < K && pos >= K ? this.gen.subarray((c * L + pos - K) * fr, (c * L + pos - K + 1) * fr)
        : f >= K && this.cfg.target === 'shifted' ? this.tgt.subarray(((c * L + j - 1) * N + f - K) * fr, ((c * L + j - 1) * N + f - K + 1) * fr)
          : this.truth.subarray((c * T + pos) * fr, (c * T + pos + 1) * fr);
      out.set(fromU8(src), f * fr);
    }
    return out;
  }

  /**
   * Make sure the pool is the one an uninterrupted run holds at `step`: loaded from `dir` when the
   * saved one is, else made from `ema` (and saved). Returns a line for humans when it made one.
   */
  async ensure(ema: Float32Array, step: number, dir: string, threads?: number): Promise<string | null> {
    const expected = Math.floor(step / this.cfg.every) * this.cfg.every;
    if (this.stats?.step === expected) return null;
    const file = path.join(dir, SELF_CONTEXT_FILE);
    if (fs.existsSync(file) && this.load(file, expected)) return null;
    // a run that gains --self-context (or another --self-context-every) on resume starts its pool here
    await this.make(ema, step, threads);
    await writeFileAtomic(file, this.serialize());
    const s = this.stats!;
    const err = (i: number) => s.meanError[Math.min(i, s.frames) - 1].toFixed(2);
    return `self-context pool at step ${step}: ${s.clips} clips x ${s.frames} own frames in ${s.seconds.toFixed(1)} s; mean trajectory error ${err(1)} px at frame 1, ${err(Math.ceil(s.frames / 2))} at ${Math.ceil(s.frames / 2)}, ${err(s.frames)} at ${s.frames}; ${s.kept} of ${s.clips * s.frames} windows kept (<= ${this.cfg.maxError} px)${this.engineLine ? ` (${this.engineLine.replace(/^driftlab: warning: /, '')})` : ''}`;
  }

  /** Roll out the pool's clips with these (EMA) weights. */
  async make(ema: Float32Array, step: number, threads?: number, at?: { firstClip: number; rng: Rng }): Promise<void> {
    const t0 = performance.now();
    this.engineLine = null;
    const { K, A, N, fr, T } = this, { clips: M, frames: L } = this.cfg;
    const { model: mc, data } = this.m;
    const S = mc.sampleSize, F = A + K + N, S0 = data.size;
    const src = loadBundledMnist();
    const mm = new MovingMnist(data, this.m.seed, src);
    const first = at ? at.firstClip : POOL_CLIP_BASE + Math.floor(step / this.cfg.every) * M;
    const truth = new Uint8Array(M * T * fr), gen = new Uint8Array(M * L * fr);
    const positions: [number, number][][][] = [], templates: Uint8Array[][] = [];
    const raw = new Uint8Array(S0 * S0), pooled = new Float32Array(fr);
    for (let c = 0; c < M; c++) {
      const clip = mm.clip(first + c, true);
      for (let t = 0; t < T; t++) {
        clip.next(raw);
        poolFrame(raw, S0, data.pool, pooled);
        truth.set(toU8(pooled), (c * T + t) * fr);
      }
      const truthOf = clipTruth(clip, src, T);
      positions.push(truthOf.positions);
      templates.push(truthOf.templates);
    }
    const model = new UNetModel(mc, 0);
    const rng = at ? at.rng : new Rng(`self-context/${this.m.seed}/${step}`);
    try {
      model.setFlat(ema);
      const engine = await createEngine('auto', model, denoiserOf(model), { threads, warn: (l) => { this.engineLine = l; } });
      try {
        for (let c0 = 0; c0 < M; c0 += CHUNK) {
          const B = Math.min(CHUNK, M - c0);
          // the last K frames of every clip, as a rollout holds them (8-bit)
          const ctx = firstFrames(truth, c0, B, K, T, fr);
          // an anchored model also sees the given context's first A frames, as a rollout shows them
          const anchors = A ? firstFrames(truth, c0, B, A, T, fr) : null;
          for (let i = 0; i < L; i++) {
            const seen = anchors ? withAnchors(anchors, ctx, B, A, K, fr) : ctx;
            const out = await continueClips(engine.net, this.m.schedule, this.m.prediction, seen, B, A + K, F, S, { sampler: 'ddim', steps: this.cfg.steps, eta: 0, clipX0: true, rng, anchors: A });
            for (let b = 0; b < B; b++) {
              const u = toU8(out.subarray(b * N * fr, (b * N + 1) * fr)); // the first target, as a rollout with chunk 1 keeps it
              gen.set(u, ((c0 + b) * L + i) * fr);
              ctx.copyWithin(b * K * fr, b * K * fr + fr, (b + 1) * K * fr);
              ctx.set(fromU8(u), ((b + 1) * K - 1) * fr);
            }
          }
        }
      } finally {
        await engine.dispose();
      }
    } finally {
      model.dispose();
    }
    // which windows still track, and where the generated frames put the digits
    const errors = new Float64Array(M * L);
    const D = data.digits;
    const rec = new Float64Array(M * L * D * 2);
    for (let c = 0; c < M; c++) {
      const matcher = new TrajectoryMatcher(S, S0, data.pool, templates[c]);
      const groups = templateGroups(templates[c]);
      for (let i = 0; i < L; i++) {
        const r = matcher.recover(gen.subarray((c * L + i) * fr, (c * L + i + 1) * fr));
        errors[c * L + i] = trajectoryError(r, positions[c][K + i], groups);
        r.forEach(([x, y], d) => { rec[((c * L + i) * D + d) * 2] = x; rec[((c * L + i) * D + d) * 2 + 1] = y; });
      }
    }
    this.truth = truth;
    this.gen = gen;
    this.rec = rec;
    if (this.cfg.target === 'shifted') {
      // replay each clip, drawing the targets of window j with the digits displaced by generated frame j's error
      const tgt = new Uint8Array(M * L * N * fr);
      const offsets = new Float64Array(2 * D);
      for (let c = 0; c < M; c++) for (let j = 1; j <= L; j++) {
        for (let d = 0; d < D; d++) for (let a = 0; a < 2; a++) offsets[2 * d + a] = rec[((c * L + j - 1) * D + d) * 2 + a] - positions[c][K + j - 1][d][a];
        const clip = mm.clip(first + c, false);
        for (let t = 0; t < K + j + N; t++) {
          clip.next(raw, t >= K + j ? offsets : undefined);
          if (t >= K + j) { poolFrame(raw, S0, data.pool, pooled); tgt.set(toU8(pooled), ((c * L + j - 1) * N + t - K - j) * fr); }
        }
      }
      this.tgt = tgt;
    }
    this.setWindows(errors, step, (performance.now() - t0) / 1000);
  }

  private setWindows(errors: Float64Array, step: number, seconds: number): void {
    const { clips: M, frames: L, maxError } = this.cfg, K = this.K;
    const kept: number[] = [];
    for (let c = 0; c < M; c++) for (let j = 1; j <= L; j++) {
      let ok = true;
      for (let i = Math.max(0, j - K); i < j; i++) if (!(errors[c * L + i] <= maxError)) { ok = false; break; }
      if (ok) kept.push(c, j);
    }
    this.windows = Int32Array.from(kept);
    const meanError = Array.from({ length: L }, (_, i) => { let s = 0; for (let c = 0; c < M; c++) s += errors[c * L + i]; return s / M; });
    this.stats = { step, clips: M, frames: L, meanError, kept: kept.length / 2, seconds };
    this.errors = errors;
  }

  private errors: Float64Array = new Float64Array(0);
  /** [clip, generated frame, digit, x|y]: the positions recovered from the generated frames (canvas px) */
  private rec: Float64Array = new Float64Array(0);

  /** Where generated frame i (0-based) of pool clip c shows each digit (recovered top-left corners, canvas px). */
  recovered(c: number, i: number): [number, number][] {
    const D = this.m.data.digits, L = this.cfg.frames;
    return Array.from({ length: D }, (_, d) => [this.rec[((c * L + i) * D + d) * 2], this.rec[((c * L + i) * D + d) * 2 + 1]] as [number, number]);
  }

  /** header JSON (its length as 4 bytes LE first), then truth, generated frames and errors */
  serialize(): Uint8Array {
    const s = this.stats!;
    const head = Buffer.from(JSON.stringify({ format: MAGIC, step: s.step, seconds: s.seconds, cfg: this.cfg, K: this.K, N: this.N, fr: this.fr }), 'utf8');
    const parts = [head, this.truth, this.gen, bytesOf(this.errors), bytesOf(this.rec), this.tgt];
    const out = new Uint8Array(4 + parts.reduce((a, p) => a + p.length, 0));
    new DataView(out.buffer).setUint32(0, head.length, true);
    let at = 4;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }

  /** Load the saved pool if it is the one made at `step` with this configuration. */
  private load(file: string, step: number): boolean {
    const buf = fs.readFileSync(file);
    let head: any;
    let n: number;
    try {
      n = buf.readUInt32LE(0);
      head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8'));
    } catch {
      return false;
    }
    const { clips: M, frames: L } = this.cfg, D = this.m.data.digits;
    const sizes = [M * this.T * this.fr, M * L * this.fr, 8 * M * L, 8 * M * L * D * 2, this.cfg.target === 'shifted' ? M * L * this.N * this.fr : 0];
    const sameCfg = head.format === MAGIC && JSON.stringify(head.cfg) === JSON.stringify(this.cfg) && head.K === this.K && head.N === this.N && head.fr === this.fr;
    if (!sameCfg || head.step !== step || buf.length !== 4 + n + sizes.reduce((a, b) => a + b, 0)) return false;
    let at = 4 + n;
    const take = (len: number) => { const u = new Uint8Array(buf.subarray(at, at + len)); at += len; return u; };
    this.truth = take(sizes[0]);
    this.gen = take(sizes[1]);
    const errors = new Float64Array(take(sizes[2]).buffer);
    this.rec = new Float64Array(take(sizes[3]).buffer);
    this.tgt = take(sizes[4]);
    this.setWindows(errors, step, head.seconds);
    return true;
  }
}

/**
 * The in-training rollout check: held-out clips (test digits, always the same ones), EMA weights,
 * DDIM 10 per frame: the rollouts of `driftlab drift --correctors none --rollouts 16 --horizon 20
 * --steps 10 --seed 12345` (the same clips and sampler noise; tested).
 */
export const ROLLOUT_CHECK = { clips: 16, frames: 20, steps: 10, seed: 12345, threshold: 8 };

export interface RolloutCheckResult {
  clips: number;
  /** mean trajectory error (canvas px) at generated frames 1..frames */
  meanError: number[];
  /** first frame whose mean error passes the threshold (null: none within the frames) */
  horizon: number | null;
  seconds: number;
}

/**
 * How far a run's weights track while it trains: ROLLOUT_CHECK.clips held-out clips (the test
 * digits; the same clips at every check, so the values compare across steps) rolled out for
 * `frames` frames from their K true frames exactly as `driftlab drift` rolls out with that seed
 * (clips 0..clips-1, its sampler stream, chunk 1, DDIM, x0 clipped, 8-bit context), scored by
 * trajectory error against the simulator. At most 32 clips (one batch, as the rollout's).
 */
export async function rolloutCheck(ema: Float32Array, m: Omit<PoolModel, 'seed'>, o: Partial<typeof ROLLOUT_CHECK> = {}, threads?: number): Promise<RolloutCheckResult> {
  const c = { ...ROLLOUT_CHECK, ...o };
  const pool = new SelfContextPool({ p: 0, every: 1, clips: c.clips, frames: c.frames, maxError: Infinity, steps: c.steps, target: 'truth' },
    { ...m, data: { ...m.data, split: 'test' }, seed: c.seed });
  if (!(Number.isInteger(c.clips) && c.clips >= 1 && c.clips <= CHUNK)) throw new DriftlabError(`the rollout check takes 1..${CHUNK} clips, got ${c.clips}`);
  await pool.make(ema, 0, threads, { firstClip: 0, rng: new Rng(c.seed).fork('rollout-sampler') });
  const s = pool.stats!;
  const h = s.meanError.findIndex((e) => e > c.threshold);
  return { clips: c.clips, meanError: s.meanError, horizon: h < 0 ? null : h + 1, seconds: s.seconds };
}
