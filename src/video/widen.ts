/**
 * Function-preserving widening of a trained U-Net (Net2WiderNet, Chen et al. 2016, adapted to
 * GroupNorm and attention): a model with f x the channels per level that computes exactly what the
 * old one did, so a warm start keeps what was learned and training gets the new capacity.
 *
 * Channel c of the wide model is a copy of channel floor(c / f) of the old one (interleaved, so
 * every concatenation of the decoder and every attention head keeps the rule; GroupNorm keeps its
 * group count, so each wide group holds f copies of one old group's channels and has the same
 * mean and variance). With the parameter layouts of unet.ts (conv [k, k, in, out], linear
 * [in, out], 1-D per output channel):
 *   - a widened output axis repeats each old slice f times;
 *   - a widened input axis repeats each old slice f times and splits the weight among the f copies
 *     in random proportions that sum to 1: the copies of an input are equal, so the sum is the old
 *     one, and the unequal shares break the symmetry that would make the copies learn alike;
 *   - attention queries are scaled by 1/sqrt(f): q.k doubles with the copies and the softmax
 *     divides by sqrt of the (f times larger) head width, so the scores stay the old ones.
 * Axes of equal size are copied; any other change of shape is refused.
 */
import { Rng } from '../util/rng.js';
import { DriftlabError } from '../util/errors.js';
import type { ParamSpec } from '../diffusion/unet.js';

/** Which axes of a parameter are its input and output channels (-1: none). */
function axesOf(rank: number): { inAxis: number; outAxis: number } {
  if (rank === 4) return { inAxis: 2, outAxis: 3 };
  if (rank === 2) return { inAxis: 0, outAxis: 1 };
  if (rank === 1) return { inAxis: -1, outAxis: 0 };
  return { inAxis: -1, outAxis: -1 };
}

/** Advance a row-major multi-index over `shape` by one element. */
function next(idx: number[], shape: number[]): void {
  for (let a = shape.length - 1; a >= 0; a--) { if (++idx[a] < shape[a]) return; idx[a] = 0; }
}

/** One tensor widened by f on the axes where newShape = f x oldShape (see the module comment). */
export function widenTensor(name: string, old: Float32Array, oldShape: number[], newShape: number[], f: number, rng: Rng): Float32Array {
  const r = oldShape.length;
  if (newShape.length !== r) throw new DriftlabError(`${name}: rank ${r} cannot widen to rank ${newShape.length}`);
  const { inAxis, outAxis } = axesOf(r);
  const wide = newShape.map((n, a) => {
    if (n === oldShape[a]) return false;
    if (n === f * oldShape[a] && (a === inAxis || a === outAxis)) return true;
    throw new DriftlabError(`${name}: shape [${oldShape}] cannot widen to [${newShape}] by ${f} (only channel axes widen, by the same factor)`);
  });
  const n = newShape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const oldStride = new Array<number>(r), newStride = new Array<number>(r);
  for (let a = r - 1, so = 1, sn = 1; a >= 0; a--) { oldStride[a] = so; newStride[a] = sn; so *= oldShape[a]; sn *= newShape[a]; }
  const idx = new Array<number>(r).fill(0);
  for (let i = 0; i < n; i++) {
    let src = 0;
    for (let a = 0; a < r; a++) src += (wide[a] ? Math.floor(idx[a] / f) : idx[a]) * oldStride[a];
    out[i] = old[src];
    next(idx, newShape);
  }
  if (inAxis >= 0 && wide[inAxis]) {
    // the f copies of one input share its weight: walk the elements whose input index is the first copy
    const share = new Float64Array(f), st = newStride[inAxis];
    idx.fill(0);
    for (let i = 0; i < n; i++) {
      if (idx[inAxis] % f === 0) {
        let s = 0;
        for (let k = 0; k < f; k++) { share[k] = 0.5 + rng.uniform(); s += share[k]; }
        for (let k = 0; k < f; k++) out[i + k * st] *= share[k] / s;
      }
      next(idx, newShape);
    }
  }
  if (/\.to_q\.(weight|bias)$/.test(name) && wide[outAxis]) {
    const q = 1 / Math.sqrt(f);
    for (let i = 0; i < n; i++) out[i] *= q;
  }
  return out;
}

/**
 * The parameters of `newSpecs` (the names of `oldSpecs`, channels f x wider) from the old values;
 * names the old model lacks are left out (the trainer initialises them). Deterministic for a seed.
 */
export function widenParams(oldSpecs: ParamSpec[], from: Map<string, Float32Array>, newSpecs: ParamSpec[], f: number, seed: number): Map<string, Float32Array> {
  if (!(Number.isInteger(f) && f >= 2)) throw new DriftlabError(`widening factor must be an integer >= 2, got ${f}`);
  const oldShape = new Map(oldSpecs.map((s) => [s.name, s.shape]));
  const rng = new Rng(seed).fork('widen');
  const out = new Map<string, Float32Array>();
  for (const s of newSpecs) {
    const shape = oldShape.get(s.name), v = from.get(s.name);
    if (shape && v) out.set(s.name, widenTensor(s.name, v, shape, s.shape, f, rng)); // a parameter the old model lacks keeps its fresh init
  }
  return out;
}

/** f if every level of `wide` has f x the channels of `old` (f an integer >= 2), else 0. */
export function widthFactor(old: number[], wide: number[]): number {
  if (old.length !== wide.length || old.length === 0) return 0;
  const f = wide[0] / old[0];
  return Number.isInteger(f) && f >= 2 && wide.every((c, i) => c === f * old[i]) ? f : 0;
}
