/**
 * Trivial baselines of a drift study, scored exactly like a corrector's rollout (#12): a model or
 * corrector that does not beat them on trajectory error is visibly failing.
 *
 *   copy-last  every generated frame repeats the last of the K real context frames (a model that
 *              predicts "nothing moves"; its trajectory error grows with the digits' speed)
 *   blank      every generated frame is black (digit recovery finds nothing where the digits are)
 *
 * Each becomes a rollout folder (run.json, frames.npy, truth.npy) built from a finished rollout's
 * ground truth, so every metric, curve, table and video treats it like any other run. The real
 * continuation itself is the study's `real (truth)` row.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { writeNpy } from '../io/npy.js';
import { DriftlabError } from '../util/errors.js';
import { readRunArrays } from './metrics.js';

export const BASELINES = ['copy-last', 'blank'] as const;
export type BaselineName = (typeof BASELINES)[number];

export const BASELINE_NOTE: Record<BaselineName, string> = {
  'copy-last': 'repeats the last real context frame (nothing moves)',
  blank: 'black frames',
};

/** uint8 [T, N, S, S] frames of a baseline from the truth of a rollout with K context frames. */
export function baselineFrames(name: BaselineName, truth: Uint8Array, T: number, N: number, S: number, K: number): Uint8Array {
  const P = S * S, NP = N * P;
  if (!Number.isInteger(K) || K < 1 || K > T) throw new DriftlabError(`a baseline needs 1..${T} context frames, got ${K}`);
  if (truth.length < T * NP) throw new DriftlabError(`truth holds ${truth.length} values, fewer than [${T},${N},${S},${S}]`);
  const out = new Uint8Array(T * NP);
  out.set(truth.subarray(0, K * NP)); // the real context, as in every rollout
  if (name === 'copy-last') {
    const last = truth.subarray((K - 1) * NP, K * NP);
    for (let t = K; t < T; t++) out.set(last, t * NP);
  } else if (name !== 'blank') {
    throw new DriftlabError(`unknown baseline '${name}'; choose from ${BASELINES.join(', ')}`);
  }
  return out;
}

/**
 * Write baseline `name` as a rollout folder `dir` beside the finished rollout `fromDir` (same
 * truth, data, seed, context and horizon). Deterministic: rewriting gives the same bytes.
 */
export async function writeBaselineRun(name: BaselineName, fromDir: string, dir: string): Promise<{ describe: Record<string, unknown> }> {
  const src = await readRunArrays(fromDir);
  const T = Math.min(src.Tf, src.Tt), K = src.run.context;
  const frames = baselineFrames(name, src.truth, T, src.N, src.S, K);
  fs.mkdirSync(dir, { recursive: true });
  const describe = { name, baseline: true, note: BASELINE_NOTE[name] };
  const run = { ...src.run, corrector: describe, baseline: name, derivedFrom: path.basename(fromDir) };
  await writeNpy(path.join(dir, 'frames.npy'), { dtype: 'uint8', shape: [T, src.N, src.S, src.S], data: frames, fortranOrder: false }, { overwrite: true });
  await writeNpy(path.join(dir, 'truth.npy'), { dtype: 'uint8', shape: [T, src.N, src.S, src.S], data: src.truth.subarray(0, T * src.N * src.S * src.S), fortranOrder: false }, { overwrite: true });
  await writeFileAtomic(path.join(dir, 'run.json'), JSON.stringify(run, null, 2) + '\n');
  return { describe };
}
