/**
 * Moving-MNIST windows for the video model: frames pooled to the model's size and scaled to
 * [-1, 1], as float32 [B*F, S, S, 1] (clip-major, frame index fastest).
 *
 * Training stream: clip k of the seeded generator for every k in turn (a fresh clip each time,
 * so the model never sees the same clip twice); the first K frames are context (t = 0, or a
 * context-noise level drawn up to maxContextT), the rest targets sharing one t ~ U{0..T-1};
 * the loss covers target frames only.
 */
import { MovingMnist, MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import { TrainBatch, normaliseWeights } from '../diffusion/grad.js';
import { BatchStream } from '../diffusion/trainer.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';

/** Average-pool a uint8 S0xS0 frame by p into out (float32 in [-1,1]). */
export function poolFrame(src: Uint8Array, S0: number, p: number, out: Float32Array, offset = 0): void {
  const S = S0 / p;
  const scale = 1 / (p * p * 127.5);
  for (let y = 0; y < S; y++) for (let x = 0; x < S; x++) {
    let s = 0;
    for (let dy = 0; dy < p; dy++) for (let dx = 0; dx < p; dx++) s += src[(y * p + dy) * S0 + x * p + dx];
    out[offset + y * S + x] = s * scale - 1;
  }
}

export function modelFrameSize(data: MovingMnistConfig & { pool: number }): number {
  if (data.size % data.pool !== 0) throw new DriftlabError(`canvas ${data.size} is not divisible by pool ${data.pool}`);
  return data.size / data.pool;
}

/** Frames [start, start+F) of clip k as float32 [F*S*S] in [-1,1]. */
export function clipWindow(mm: MovingMnist, pool: number, k: number, F: number, start = 0, jitter?: WindowJitter): Float32Array {
  const perturb = jitter && ((t: number) => (t >= start && t - start < jitter.frames ? Float64Array.from(jitter.rng.normals(2 * mm.config.digits), (v) => v * jitter.sigma) : undefined));
  return renderFrames(mm, pool, k, Array.from({ length: F }, (_, f) => start + f), perturb);
}

/**
 * Frames frames[j] of clip k into slot j, as float32 [frames.length*S*S] in [-1,1]: the clip is
 * rendered once, up to the last frame asked for. perturb(t) may displace frame t's digits
 * (MovingMnist clip.next), called once per rendered frame, in order.
 */
function renderFrames(mm: MovingMnist, pool: number, k: number, frames: number[], perturb?: (t: number) => Float64Array | undefined): Float32Array {
  const S0 = mm.config.size, S = S0 / pool, fr = S * S;
  const clip = mm.clip(k, false);
  const buf = new Uint8Array(S0 * S0);
  const out = new Float32Array(frames.length * fr);
  const end = frames.reduce((m, f) => Math.max(m, f + 1), 0);
  for (let t = 0; t < end; t++) {
    clip.next(buf, perturb?.(t));
    frames.forEach((f, j) => { if (f === t) poolFrame(buf, S0, pool, out, j * fr); });
  }
  return out;
}

/**
 * An anchored window (ClipStreamOptions.anchorFrames) of clip k: frames 0..A-1, then frames
 * s..s+F-A-1, as float32 [F*S*S] in [-1,1].
 */
export function anchoredWindow(mm: MovingMnist, pool: number, k: number, F: number, A: number, s: number): Float32Array {
  if (!(Number.isInteger(A) && A >= 1 && A < F && Number.isInteger(s) && s >= 0)) throw new DriftlabError(`anchored window: need 1 <= A < F and s >= 0, got A ${A}, F ${F}, s ${s}`);
  return renderFrames(mm, pool, k, Array.from({ length: F }, (_, j) => (j < A ? j : s + j - A)));
}

/**
 * The smallest distance between two digits' true top-left corners (canvas px) at frame `frame`
 * of clip k (Infinity with one digit). Digits are 28 px wide: under ~10 px they overlap heavily.
 */
export function digitsDistanceAt(mm: MovingMnist, k: number, frame: number): number {
  return digitsMinDistance(mm, k, frame, frame);
}

/**
 * The smallest distance between two digits' true top-left corners (canvas px) over frames
 * from..to (inclusive) of clip k: how close the digits come in that stretch (Infinity with one digit).
 */
export function digitsMinDistance(mm: MovingMnist, k: number, from: number, to: number): number {
  const clip = mm.clip(k, true);
  const buf = new Uint8Array(mm.config.size * mm.config.size);
  for (let t = 0; t <= to; t++) clip.next(buf);
  let best = Infinity;
  for (let f = Math.max(0, from); f <= to; f++) {
    for (let a = 0; a < clip.truth.length; a++) for (let b = a + 1; b < clip.truth.length; b++) {
      const [xa, ya] = clip.truth[a].positions[f], [xb, yb] = clip.truth[b].positions[f];
      best = Math.min(best, Math.hypot(xa - xb, ya - yb));
    }
  }
  return best;
}

/** How many clips the overlap oversampling tries before it gives up on a data config. */
export const OVERLAP_SEARCH_LIMIT = 10_000;

/** Draw the first `frames` frames of a window with every digit displaced by N(0, sigma^2) canvas px per axis. */
export interface WindowJitter { sigma: number; frames: number; rng: Rng }

export interface ClipStreamOptions {
  data: MovingMnistConfig & { pool: number };
  seed: number;
  batchSize: number;
  frames: number;
  contextFrames: number;
  maxContextT: number;
  T: number;
  /** probability that a window's context is replaced by blank frames (-1): trains p(x | no context) for history guidance */
  contextDropout?: number;
  /** Diffusion Forcing (Chen et al. 2024): every target frame draws its own t (default: one t per window) */
  independentT?: boolean;
  /**
   * context jitter (canvas px): each context frame draws every digit displaced from its true
   * position by N(0, sigma^2) per axis, independently per frame, while the targets stay on the
   * true trajectory; the model learns to predict the true continuation from a trajectory observed
   * with position errors, the kind its own frames make in a rollout (0 = off)
   */
  contextJitter?: number;
  /**
   * probability that a window is trained jointly (attention models): its context frames are
   * noised at the targets' t and count in the loss like the targets, so the model also learns to
   * denoise whole windows, i.e. to reconstruct its context from the targets (what
   * reconstruction guidance differentiates; Ho et al. 2022 train an unconditional video model);
   * the other windows keep a clean (or context-noised) context outside the loss (0 = never)
   */
  joint?: number;
  /**
   * probability that a window is a hard one: the stream skips ahead to the next clip whose digits
   * overlap at the last context frame (closest pair of true top-left corners under overlapNear
   * canvas px), the contexts where a model must tell the digits apart from the earlier frames
   * (0 = every clip in turn)
   */
  overlapOversample?: number;
  /** canvas px under which two digits count as overlapping (default 10; digits are 28 px wide) */
  overlapNear?: number;
  /**
   * a window is hard when its digits overlap at any of its last overlapFrames context frames
   * (default 1: the last one only; K: anywhere in the context, which takes in the frames after a
   * crossing, where the model has to tell the strokes apart again)
   */
  overlapFrames?: number;
  /**
   * training on the model's own rollouts (self-context.ts): with probability p a window comes
   * from the pool (its context ends with the model's own frames, its targets are the truth)
   * instead of a fresh clip; an empty pool gives fresh clips
   */
  selfContext?: { p: number; pool: { draw(rng: Rng): Float32Array | null } };
  /**
   * identity conditioning (VideoConfig.anchorFrames): the first `anchorFrames` context slots of a
   * window hold the clip's frames 0..A-1, the rest of the window the clip's frames s..s+F-A-1
   * with s ~ U{0..anchorGap} (s = 0: a rollout's first window, whose newest frames are its given
   * context; s = j: the window after j generated frames). 0 = plain windows of frames 0..F-1.
   */
  anchorFrames?: number;
  anchorGap?: number;
}

export class ClipStream implements BatchStream {
  private readonly mm: MovingMnist;
  private nextClip = 0;
  constructor(private readonly o: ClipStreamOptions) {
    this.mm = new MovingMnist(o.data, o.seed);
    modelFrameSize(o.data);
  }

  next(rng: Rng): TrainBatch {
    const { batchSize: B, frames: F, contextFrames: K, T, maxContextT } = this.o;
    const S = this.o.data.size / this.o.data.pool;
    const x0 = new Float32Array(B * F * S * S);
    const t = new Int32Array(B * F);
    const w = new Float32Array(B * F);
    const drop = this.o.contextDropout ?? 0;
    const A = this.o.anchorFrames ?? 0;
    const jointP = this.o.joint ?? 0;
    const selfP = this.o.selfContext?.p ?? 0;
    for (let b = 0; b < B; b++) {
      // draws only when the option is on, so older recipes replay the very same stream
      const own = selfP > 0 && rng.uniform() < selfP ? this.o.selfContext!.pool.draw(rng) : null;
      if (own) x0.set(own, b * F * S * S);
      else this.freshWindow(x0, b, rng);
      const tTarget = rng.int(T);
      const tContext = maxContextT > 0 ? rng.int(maxContextT + 1) : 0;
      // draws only when the option is on, so older recipes replay the very same stream
      const dropped = drop > 0 && rng.uniform() < drop;
      if (dropped) x0.fill(-1, b * F * S * S, (b * F + K) * S * S);
      // draws only when the option is on; a blanked context is never a joint window
      const joint = jointP > 0 && rng.uniform() < jointP && !dropped;
      for (let f = 0; f < F; f++) {
        // anchors are real frames in every rollout: never noised
        t[b * F + f] = f < A ? 0 : f < K ? (joint ? tTarget : tContext) : this.o.independentT && f > K ? rng.int(T) : tTarget;
        w[b * F + f] = f < K && !joint ? 0 : 1;
      }
    }
    const eps = rng.normals(B * F * S * S);
    return { x0, eps, t, weights: normaliseWeights(w), frames: F };
  }

  /** Window b of the batch from the next clip (or the next hard one), as without self-context. */
  private freshWindow(x0: Float32Array, b: number, rng: Rng): void {
    const { frames: F, contextFrames: K } = this.o;
    const S = this.o.data.size / this.o.data.pool;
    const sigma = this.o.contextJitter ?? 0;
    const hardP = this.o.overlapOversample ?? 0, near = this.o.overlapNear ?? 10, span = this.o.overlapFrames ?? 1;
    const A = this.o.anchorFrames ?? 0;
    // draws only when the option is on, so older recipes replay the very same stream
    const s = A > 0 ? rng.int((this.o.anchorGap ?? 0) + 1) : 0;
    // the clip frame in the last context slot
    const last = A > 0 ? s + K - A - 1 : K - 1;
    let k = this.nextClip++;
    // draws only when the option is on, so older recipes replay the very same stream
    if (hardP > 0 && rng.uniform() < hardP) {
      for (let tries = 1; digitsMinDistance(this.mm, k, last - span + 1, last) >= near; tries++, k = this.nextClip++) {
        if (tries >= OVERLAP_SEARCH_LIMIT) throw new DriftlabError(`--overlap-oversample: no clip among ${OVERLAP_SEARCH_LIMIT} in a row has its digits under ${near} px apart at ${span === 1 ? 'the last context frame' : `any of the last ${span} context frames`}; raise --overlap-near or change the data`);
      }
    }
    if (A > 0) { x0.set(anchoredWindow(this.mm, this.o.data.pool, k, F, A, s), b * F * S * S); return; }
    // the jitter draws from the training rng only when on, so older recipes replay the very same stream
    x0.set(clipWindow(this.mm, this.o.data.pool, k, F, 0, sigma > 0 ? { sigma, frames: K, rng } : undefined), b * F * S * S);
  }

  state() { return { kind: 'moving-mnist-clips', nextClip: this.nextClip }; }
  setState(s: any) {
    if (!s || s.kind !== 'moving-mnist-clips' || !Number.isInteger(s.nextClip)) throw new DriftlabError('train state does not belong to a video run');
    this.nextClip = s.nextClip;
  }
}
