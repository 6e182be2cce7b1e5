/**
 * Moving-MNIST (Srivastava et al. 2015): digits bouncing in a canvas, combined by pixel-wise max.
 *
 * Defaults follow the paper's generator: 64x64 canvas, 2 digits of 28x28, constant speed
 * 0.1 of the free range per frame (36 * 0.1 = 3.6 px), a uniformly random direction, and
 * reflection off the walls. Two deliberate differences from the original script, both
 * documented in the README: the reflection is exact (the overshoot is mirrored, not clamped
 * to the wall), and positions are kept as floats and rounded to integer pixels only to draw.
 * With `stochastic` (SMMNIST, Denton & Fergus 2018) each bounce draws a new random direction
 * pointing away from the wall.
 *
 * Clips are generated lazily, one frame at a time, in constant memory, so a sequence can be
 * any length (10,000+ frames); each clip carries its ground truth: digit labels, per-frame
 * top-left positions and velocities.
 */
import { DriftlabError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';
import { MnistData, loadBundledMnist } from '../mnist/index.js';

export interface MovingMnistConfig {
  /** canvas side in pixels */
  size: number;
  digits: number;
  /** speed range in pixels per frame; each digit draws its speed uniformly from it */
  speedMin: number;
  speedMax: number;
  stochastic: boolean;
  /** which digit images to draw from: a seeded 80/20 split of the source digits */
  split: 'train' | 'test' | 'all';
}

export const DEFAULT_MMNIST: MovingMnistConfig = { size: 64, digits: 2, speedMin: 3.6, speedMax: 3.6, stochastic: false, split: 'train' };

export interface DigitTruth {
  label: number;
  /** index of the digit image in the source set */
  index: number;
  /** top-left [x, y] (float pixels) per frame generated so far */
  positions: [number, number][];
  /** [vx, vy] pixels/frame per frame (the velocity leaving that frame) */
  velocities: [number, number][];
}

const DIGIT = 28;
const SPLIT_SEED = 'moving-mnist/digit-split/v1';

/** Deterministic 80/20 split of source digit indices (the same for every clip seed). */
export function digitSplit(n: number, split: MovingMnistConfig['split']): Int32Array {
  const perm = Int32Array.from({ length: n }, (_, i) => i);
  if (split === 'all') return perm;
  new Rng(SPLIT_SEED).shuffle(perm);
  const cut = Math.floor(n * 0.8);
  return split === 'train' ? perm.slice(0, cut) : perm.slice(cut);
}

export function validateMmnistConfig(c: MovingMnistConfig): void {
  if (!Number.isInteger(c.size) || c.size < DIGIT) throw new DriftlabError(`--size must be an integer >= ${DIGIT} (the digit size), got ${c.size}`);
  if (!Number.isInteger(c.digits) || c.digits < 1 || c.digits > 10) throw new DriftlabError(`--digits must be an integer in 1..10, got ${c.digits}`);
  if (!(c.speedMin >= 0 && c.speedMax >= c.speedMin)) throw new DriftlabError(`speed range must satisfy 0 <= min <= max, got ${c.speedMin}..${c.speedMax}`);
  if (!['train', 'test', 'all'].includes(c.split)) throw new DriftlabError(`--split must be train, test or all, got ${c.split}`);
}

/** One clip: call next() for each frame. Memory is constant except for the recorded truth. */
export class MovingMnistClip {
  readonly truth: DigitTruth[] = [];
  private pos: Float64Array;
  private vel: Float64Array;
  private t = 0;
  private readonly free: number;

  constructor(
    private readonly src: MnistData, private readonly cfg: MovingMnistConfig,
    private readonly rng: Rng, pool: Int32Array, readonly recordTruth = true,
  ) {
    this.free = cfg.size - DIGIT;
    this.pos = new Float64Array(2 * cfg.digits);
    this.vel = new Float64Array(2 * cfg.digits);
    for (let d = 0; d < cfg.digits; d++) {
      const index = pool[rng.int(pool.length)];
      this.truth.push({ label: src.labels[index], index, positions: [], velocities: [] });
      this.pos[2 * d] = rng.uniform() * this.free;
      this.pos[2 * d + 1] = rng.uniform() * this.free;
      const theta = rng.uniform() * 2 * Math.PI;
      const speed = cfg.speedMin + rng.uniform() * (cfg.speedMax - cfg.speedMin);
      this.vel[2 * d] = speed * Math.cos(theta);
      this.vel[2 * d + 1] = speed * Math.sin(theta);
    }
  }

  get frameIndex(): number {
    return this.t;
  }

  /**
   * Render the current frame into out (uint8 [size*size]) and advance the dynamics. `offsets`
   * ([dx0, dy0, dx1, dy1, ...], canvas px) draws each digit displaced from its true position
   * (clamped to the canvas; training-time context jitter): the dynamics and the recorded truth
   * are unchanged.
   */
  next(out = new Uint8Array(this.cfg.size * this.cfg.size), offsets?: ArrayLike<number>): Uint8Array {
    const S = this.cfg.size;
    out.fill(0);
    const at = (i: number) => (offsets ? Math.min(this.free, Math.max(0, this.pos[i] + offsets[i])) : this.pos[i]);
    for (let d = 0; d < this.cfg.digits; d++) {
      const x = Math.round(at(2 * d)), y = Math.round(at(2 * d + 1));
      const img = this.truth[d].index * DIGIT * DIGIT;
      for (let r = 0; r < DIGIT; r++) {
        const row = (y + r) * S + x;
        for (let c = 0; c < DIGIT; c++) {
          const v = this.src.images[img + r * DIGIT + c];
          if (v > out[row + c]) out[row + c] = v;
        }
      }
      if (this.recordTruth) {
        this.truth[d].positions.push([this.pos[2 * d], this.pos[2 * d + 1]]);
        this.truth[d].velocities.push([this.vel[2 * d], this.vel[2 * d + 1]]);
      }
    }
    this.step();
    this.t += 1;
    return out;
  }

  /** Constant-velocity motion with exact reflection off the walls (SMMNIST: new direction). */
  private step(): void {
    const L = this.free;
    for (let d = 0; d < this.cfg.digits; d++) {
      const bounced = [false, false];
      for (let k = 0; k < 2; k++) {
        const i = 2 * d + k;
        let p = this.pos[i] + this.vel[i];
        // reflect until inside [0, L] (a fast digit may cross the canvas; L = 0 pins it)
        while (L > 0 && (p < 0 || p > L)) {
          p = p < 0 ? -p : 2 * L - p;
          this.vel[i] = -this.vel[i];
          bounced[k] = true;
        }
        this.pos[i] = L > 0 ? p : 0;
      }
      if ((bounced[0] || bounced[1]) && this.cfg.stochastic) {
        // SMMNIST: a new uniformly random direction at the same speed, turned to point away
        // from the wall(s) just hit
        const speed = Math.hypot(this.vel[2 * d], this.vel[2 * d + 1]);
        const theta = this.rng.uniform() * 2 * Math.PI;
        let vx = speed * Math.cos(theta), vy = speed * Math.sin(theta);
        if (bounced[0] && Math.sign(vx) !== Math.sign(this.vel[2 * d])) vx = -vx;
        if (bounced[1] && Math.sign(vy) !== Math.sign(this.vel[2 * d + 1])) vy = -vy;
        this.vel[2 * d] = vx;
        this.vel[2 * d + 1] = vy;
      }
    }
  }
}

/** A seeded source of clips: clip k of seed s is always the same. */
export class MovingMnist {
  readonly config: MovingMnistConfig;
  private readonly pool: Int32Array;

  constructor(config: Partial<MovingMnistConfig> = {}, readonly seed = 0, private readonly src: MnistData = loadBundledMnist()) {
    this.config = { ...DEFAULT_MMNIST, ...config };
    validateMmnistConfig(this.config);
    this.pool = digitSplit(src.n, this.config.split);
  }

  clip(k: number, recordTruth = true): MovingMnistClip {
    return new MovingMnistClip(this.src, this.config, new Rng(`moving-mnist/${this.seed}/${k}`), this.pool, recordTruth);
  }

  /** count clips of T frames as uint8 [count, T, size, size] plus their ground truth. */
  generate(count: number, T: number, first = 0): { frames: Uint8Array; truth: DigitTruth[][] } {
    const S = this.config.size;
    const frames = new Uint8Array(count * T * S * S);
    const truth: DigitTruth[][] = [];
    for (let n = 0; n < count; n++) {
      const c = this.clip(first + n);
      for (let t = 0; t < T; t++) c.next(frames.subarray((n * T + t) * S * S, (n * T + t + 1) * S * S));
      truth.push(c.truth);
    }
    return { frames, truth };
  }
}
