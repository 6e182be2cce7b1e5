/**
 * The ground truth a rollout is scored against, and the trajectory error itself.
 *
 * truthTrajectories regenerates a rollout folder's simulator clips (run.json's data and seed,
 * test split) to know each rollout's digit images and their true top-left positions per frame;
 * trajectoryError is the mean over digits of the Euclidean distance, in canvas pixels, between
 * positions recovered from a frame (trajectory.ts, TrajectoryMatcher) and the true ones. Two
 * digits of a clip can be the same source image; their identities are then interchangeable and
 * trajectoryError takes the best assignment within each group of identical templates.
 */
import { MnistData, loadBundledMnist } from '../../datasets/mnist/index.js';
import { MovingMnist, MovingMnistClip, MovingMnistConfig } from '../../datasets/moving-mnist/index.js';
import { DriftlabError } from '../util/errors.js';

export const DIGIT_SIDE = 28;

/** What truthTrajectories needs of a rollout's run.json. */
export interface RunInfo {
  data: Omit<MovingMnistConfig, 'split'> & { pool: number; split?: MovingMnistConfig['split'] };
  seed: number;
  rollouts: number;
}

export interface RolloutTruth {
  /** 28x28 uint8 image of each digit (from the bundled MNIST), in the simulator's digit order */
  templates: Uint8Array[];
  labels: number[];
  /** source image index of each digit */
  indices: number[];
  /** positions[t][d] = true top-left [x, y] (float canvas pixels) of digit d at frame t */
  positions: [number, number][][];
}

/** Regenerate the simulator clips of a rollout folder (test split) for T frames. */
export function truthTrajectories(run: RunInfo, T: number): RolloutTruth[] {
  if (!Number.isInteger(T) || T < 0) throw new DriftlabError(`trajectory length must be a non-negative integer, got ${T}`);
  const src = loadBundledMnist();
  const mm = new MovingMnist({ ...run.data, split: 'test' }, run.seed, src);
  const S0 = mm.config.size;
  const buf = new Uint8Array(S0 * S0);
  const out: RolloutTruth[] = [];
  for (let n = 0; n < run.rollouts; n++) {
    const clip = mm.clip(n, true);
    for (let t = 0; t < T; t++) clip.next(buf);
    out.push(clipTruth(clip, src, T));
  }
  return out;
}

/** The truth a clip has recorded over its first T frames (it must have generated them, with recordTruth). */
export function clipTruth(clip: MovingMnistClip, src: MnistData, T: number): RolloutTruth {
  const px = DIGIT_SIDE * DIGIT_SIDE;
  const positions: [number, number][][] = [];
  for (let t = 0; t < T; t++) positions.push(clip.truth.map((d) => [d.positions[t][0], d.positions[t][1]] as [number, number]));
  return {
    templates: clip.truth.map((d) => src.images.slice(d.index * px, (d.index + 1) * px)),
    labels: clip.truth.map((d) => d.label),
    indices: clip.truth.map((d) => d.index),
    positions,
  };
}

/** Groups of digits with byte-identical templates (interchangeable identities). */
export function templateGroups(templates: Uint8Array[]): number[] {
  const group = templates.map((_, i) => i);
  for (let i = 0; i < templates.length; i++) for (let j = 0; j < i; j++) {
    if (group[j] === j && equalBytes(templates[i], templates[j])) { group[i] = j; break; }
  }
  return group;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Mean over digits of the Euclidean distance (canvas px) between recovered and true top-left
 * positions. `groups` (templateGroups) lets digits with identical images swap identities: the
 * best assignment within each group is used.
 */
export function trajectoryError(rec: ArrayLike<number>[], truth: ArrayLike<number>[], groups?: number[]): number {
  const D = truth.length;
  if (rec.length !== D) throw new DriftlabError(`${rec.length} recovered positions for ${D} digits`);
  if (D === 0) return 0;
  const dist = (a: number, b: number) => Math.hypot(rec[a][0] - truth[b][0], rec[a][1] - truth[b][1]);
  if (!groups || groups.every((g, i) => g === i)) {
    let s = 0;
    for (let d = 0; d < D; d++) s += dist(d, d);
    return s / D;
  }
  // best assignment within groups (brute force; groups are tiny)
  const used = new Uint8Array(D);
  let best = Infinity;
  const go = (d: number, acc: number) => {
    if (acc >= best) return;
    if (d === D) { best = acc; return; }
    for (let e = 0; e < D; e++) if (!used[e] && groups[e] === groups[d]) {
      used[e] = 1; go(d + 1, acc + dist(d, e)); used[e] = 0;
    }
  };
  go(0, 0);
  return best / D;
}
