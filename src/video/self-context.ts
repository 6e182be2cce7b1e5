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
 *   targets = the simulator's frames K+j .. K+j+N-1
 *
 * so its context ends with min(j, K) generated frames. A window is kept only while the model
 * still tracks: every generated frame in its context has a trajectory error (digit positions
 * recovered by trajectory.ts against the simulator's) of at most `maxError` canvas px. Past that
 * the true continuation cannot be read from the context and the target would teach a blur.
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
import type { UNetConfig } from '../diffusion/config.js';
import { UNetModel } from '../diffusion/model.js';
import { Prediction } from '../diffusion/objective.js';
import { denoiserOf } from '../diffusion/pipeline.js';
import { Schedule } from '../diffusion/schedule.js';
import { DIGIT_SIDE, templateGroups, trajectoryError } from '../drift/trajectory-truth.js';
import { TrajectoryMatcher } from '../drift/trajectory.js';
import { createEngine } from '../engine/select.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { poolFrame } from './clips.js';
import { fromU8, toU8 } from './frames8.js';
import { continueClips } from './sample-clip.js';

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
}

export const SELF_CONTEXT_DEFAULTS: Omit<SelfContextConfig, 'p'> = { every: 400, clips: 256, frames: 12, maxError: 6, steps: 10 };

export const SELF_CONTEXT_FILE = 'self-context.bin';
const MAGIC = 'driftlab-self-context-1';
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
}

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
  stats: PoolStats | null = null;
  /** set when the pool's rollouts could not run on onnx (the fallback warning) */
  engineLine: string | null = null;
  private readonly K: number;
  private readonly N: number;
  private readonly fr: number;
  private readonly T: number;

  constructor(readonly cfg: SelfContextConfig, readonly m: PoolModel) {
    const v = m.model.video!;
    this.K = v.contextFrames;
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
      const src = f < K && pos >= K ? this.gen.subarray((c * L + pos - K) * fr, (c * L + pos - K + 1) * fr) : this.truth.subarray((c * T + pos) * fr, (c * T + pos + 1) * fr);
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
  async make(ema: Float32Array, step: number, threads?: number): Promise<void> {
    const t0 = performance.now();
    const { K, N, fr, T } = this, { clips: M, frames: L } = this.cfg;
    const { model: mc, data } = this.m;
    const S = mc.sampleSize, F = K + N, S0 = data.size;
    const src = loadBundledMnist();
    const mm = new MovingMnist(data, this.m.seed, src);
    const first = POOL_CLIP_BASE + Math.floor(step / this.cfg.every) * M;
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
      positions.push(Array.from({ length: T }, (_, t) => clip.truth.map((d) => [d.positions[t][0], d.positions[t][1]] as [number, number])));
      templates.push(clip.truth.map((d) => src.images.slice(d.index * DIGIT_SIDE * DIGIT_SIDE, (d.index + 1) * DIGIT_SIDE * DIGIT_SIDE)));
    }
    const model = new UNetModel(mc, 0);
    const rng = new Rng(`self-context/${this.m.seed}/${step}`);
    try {
      model.setFlat(ema);
      const engine = await createEngine('auto', model, denoiserOf(model), { threads, warn: (l) => { this.engineLine = l; } });
      try {
        for (let c0 = 0; c0 < M; c0 += CHUNK) {
          const B = Math.min(CHUNK, M - c0);
          // the last K frames of every clip, as a rollout holds them (8-bit)
          const ctx = new Float32Array(B * K * fr);
          for (let b = 0; b < B; b++) ctx.set(fromU8(truth.subarray((c0 + b) * T * fr, ((c0 + b) * T + K) * fr)), b * K * fr);
          for (let i = 0; i < L; i++) {
            const out = await continueClips(engine.net, this.m.schedule, this.m.prediction, ctx, B, K, F, S, { sampler: 'ddim', steps: this.cfg.steps, eta: 0, clipX0: true, rng });
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
    // which windows still track
    const errors = new Float64Array(M * L);
    for (let c = 0; c < M; c++) {
      const matcher = new TrajectoryMatcher(S, S0, data.pool, templates[c]);
      const groups = templateGroups(templates[c]);
      for (let i = 0; i < L; i++) errors[c * L + i] = trajectoryError(matcher.recover(gen.subarray((c * L + i) * fr, (c * L + i + 1) * fr)), positions[c][K + i], groups);
    }
    this.truth = truth;
    this.gen = gen;
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

  /** header JSON (its length as 4 bytes LE first), then truth, generated frames and errors */
  serialize(): Uint8Array {
    const s = this.stats!;
    const head = Buffer.from(JSON.stringify({ format: MAGIC, step: s.step, seconds: s.seconds, cfg: this.cfg, K: this.K, N: this.N, fr: this.fr }), 'utf8');
    const err = new Uint8Array(this.errors.buffer, this.errors.byteOffset, this.errors.byteLength);
    const out = new Uint8Array(4 + head.length + this.truth.length + this.gen.length + err.length);
    new DataView(out.buffer).setUint32(0, head.length, true);
    out.set(head, 4);
    out.set(this.truth, 4 + head.length);
    out.set(this.gen, 4 + head.length + this.truth.length);
    out.set(err, 4 + head.length + this.truth.length + this.gen.length);
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
    const { clips: M, frames: L } = this.cfg;
    const tl = M * this.T * this.fr, gl = M * L * this.fr;
    const sameCfg = head.format === MAGIC && JSON.stringify(head.cfg) === JSON.stringify(this.cfg) && head.K === this.K && head.N === this.N && head.fr === this.fr;
    if (!sameCfg || head.step !== step || buf.length !== 4 + n + tl + gl + 8 * M * L) return false;
    this.truth = new Uint8Array(buf.subarray(4 + n, 4 + n + tl));
    this.gen = new Uint8Array(buf.subarray(4 + n + tl, 4 + n + tl + gl));
    const errors = new Float64Array(M * L);
    new Uint8Array(errors.buffer).set(buf.subarray(4 + n + tl + gl));
    this.setWindows(errors, step, head.seconds);
    return true;
  }
}
