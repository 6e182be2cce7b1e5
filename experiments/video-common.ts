/**
 * Shared by the video experiments: train one video model of a preset with a fixed step budget
 * (equal compute = same preset, batch and steps), then measure its drift with `driftlab drift`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { backendInfo, type BackendName } from '../src/backend.js';
import type { EngineChoice } from '../src/engine/select.js';
import type { TrainEngineChoice } from '../src/diffusion/train-engine.js';
import { runDriftStudy, type DriftStudyResult } from '../src/drift/study.js';
import { statsAt } from '../src/drift/study-outputs.js';
import type { Series } from '../src/plot/chart.js';
import { getVideoPreset, type VideoPreset } from '../src/video/presets.js';
import { trainVideo } from '../src/video/train-video.js';

export interface VideoArm {
  /** label of the arm in tables and plots */
  name: string;
  maxContextT?: number;
  initImage?: string;
  /** change the preset before training (a recipe arm: conditioning, objective, dropout...) */
  apply?: (p: VideoPreset) => void;
}

export interface ArmBudget {
  preset: string;
  /** what trains each arm (train-engine.ts; default auto: onnx where onnxruntime-node loads) */
  trainEngine?: TrainEngineChoice;
  /** onnx training engine: intra-op threads (default: all cores) */
  trainThreads?: number;
  trainSteps: number;
  /** wall-time budget per arm in minutes (equal wall time); trainSteps is then only a cap */
  minutes?: number;
  batchSize?: number;
  workers: number;
  backend: BackendName;
  seed: number;
  /** drift measurement */
  horizon: number;
  rollouts: number;
  steps: number;
  engine: EngineChoice;
  refFrames?: number;
  refClips?: number;
  videoFrames?: number;
  quiet?: boolean;
  log?: (l: string) => void;
  /** an earlier run folder of the same experiment: trained models and finished rollouts are reused, metrics recomputed */
  resume?: string;
  /** results root: finished arms of earlier runs of any video experiment under it are reused when their recipe matches */
  root?: string;
}

export interface ArmResult {
  arm: VideoArm;
  ckpt: string;
  trainSeconds: number;
  finalLoss: number;
  study: DriftStudyResult;
}

/**
 * Everything that decides an arm's trained bytes: the full preset after the arm's changes, the
 * initialising image weights (by content), and the workers and backend with its version
 * (data-parallel float sums and kernels differ in the last bits between them).
 */
function armRecipe(preset: unknown, initImage: string | undefined, b: ArmBudget): string {
  const init = initImage ? createHash('sha256').update(fs.readFileSync(path.join(initImage, 'ema.safetensors'))).digest('hex') : null;
  const engine = b.trainEngine ?? 'auto';
  // tfjs arms keep their old recipe string, so arms trained before the engine choice are still found
  const how = engine === 'tfjs' ? {} : { trainEngine: engine, trainThreads: b.trainThreads ?? null };
  return JSON.stringify({ preset, initImage: init, workers: b.workers, backend: b.backend, running: backendInfo()?.line ?? null, ...how, ...(b.minutes ? { minutes: b.minutes } : {}) });
}

/** Written when an arm's training budget is spent: a time-budgeted arm must not train again on --resume. */
const DONE = 'budget-done.json';
function armDone(d: string, steps: number, minutes?: number): boolean {
  try {
    if (minutes) return fs.existsSync(path.join(d, DONE));
    return JSON.parse(fs.readFileSync(path.join(d, 'train-state.json'), 'utf8')).step >= steps;
  } catch { return false; }
}

/** A finished arm elsewhere under root (any video experiment, any run) trained from the same recipe. */
function findTrainedArm(root: string, recipe: string, steps: number, exclude: string, minutes?: number): string | null {
  if (!fs.existsSync(root)) return null;
  for (const exp of fs.readdirSync(root)) {
    const expDir = path.join(root, exp);
    if (!fs.statSync(expDir).isDirectory()) continue;
    for (const run of fs.readdirSync(expDir)) {
      const models = path.join(expDir, run, 'models');
      if (!fs.existsSync(models)) continue;
      for (const arm of fs.readdirSync(models)) {
        const d = path.join(models, arm);
        if (path.resolve(d) === path.resolve(exclude)) continue;
        try {
          if (fs.readFileSync(path.join(d, 'recipe.json'), 'utf8') !== recipe) continue;
          if (armDone(d, steps, minutes)) return d;
        } catch { /* unfinished or foreign folder */ }
      }
    }
  }
  return null;
}

export async function trainArm(dir: string, arm: VideoArm, b: ArmBudget, correctors: string[]): Promise<ArmResult> {
  const preset = getVideoPreset(b.preset);
  preset.train.steps = b.trainSteps;
  preset.train.seed = b.seed;
  if (b.batchSize) preset.train.batchSize = b.batchSize;
  if (arm.maxContextT !== undefined) preset.train.maxContextT = arm.maxContextT;
  arm.apply?.(preset);
  preset.train.checkpointEvery = Math.max(1, Math.min(preset.train.checkpointEvery, b.trainSteps));
  const ckpt = path.join(dir, 'models', arm.name);
  const recipe = armRecipe(preset, arm.initImage, b);
  const earlier = b.root && !fs.existsSync(path.join(ckpt, 'train-state.json')) ? findTrainedArm(b.root, recipe, b.trainSteps, ckpt, b.minutes) : null;
  let t: { seconds: number; lastLoss: number };
  if (b.minutes && armDone(ckpt, b.trainSteps, b.minutes)) {
    const done = JSON.parse(fs.readFileSync(path.join(ckpt, DONE), 'utf8'));
    b.log?.(`${arm.name}: its ${b.minutes}-minute budget was spent earlier (step ${done.steps}); not trained again`);
    t = { seconds: done.seconds, lastLoss: done.lastLoss };
  } else if (earlier) {
    // the same recipe trained before: copy it (run folders stay self-contained) instead of retraining
    b.log?.(`${arm.name}: same recipe as ${earlier}, reused (not retrained)`);
    // copied under a temporary name and renamed, so a kill never leaves a half-copied arm
    const tmp = `${ckpt}.partial`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.cpSync(earlier, tmp, { recursive: true });
    fs.writeFileSync(path.join(tmp, 'reused-from.txt'), `${path.resolve(earlier)}\n`);
    fs.rmSync(ckpt, { recursive: true, force: true });
    fs.renameSync(tmp, ckpt);
    const log = fs.readFileSync(path.join(ckpt, 'train-log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    // its training time, from the log's first and last step (the first step's own time not included)
    const span = log.length > 1 ? (Date.parse(log.at(-1).time) - Date.parse(log[0].time)) / 1000 : 0;
    t = { seconds: Number.isFinite(span) ? span : NaN, lastLoss: log.at(-1)?.loss ?? NaN };
  } else {
    b.log?.(`${arm.name}: training ${b.preset} for ${b.trainSteps} steps of ${preset.train.batchSize} clips (context noise ${preset.train.maxContextT}${arm.initImage ? `, spatial layers from ${arm.initImage}` : ', from scratch'})`);
    fs.mkdirSync(ckpt, { recursive: true });
    fs.writeFileSync(path.join(ckpt, 'recipe.json'), recipe);
    const r = await trainVideo({
      preset, initImage: arm.initImage, out: ckpt, workers: b.workers, backend: b.backend, quiet: b.quiet, resume: true, minutes: b.minutes,
      engine: b.trainEngine ?? 'auto', threads: b.trainThreads,
    });
    t = r;
    if (b.minutes) {
      // a kill mid-budget resumes with a fresh budget; the folder records what was spent in the end
      const steps = JSON.parse(fs.readFileSync(path.join(ckpt, 'train-state.json'), 'utf8')).step;
      fs.writeFileSync(path.join(ckpt, DONE), JSON.stringify({ minutes: b.minutes, seconds: r.seconds, steps, lastLoss: r.lastLoss }) + '\n');
    }
  }
  const study = await runDriftStudy({
    ckpt, correctors, horizon: b.horizon, rollouts: b.rollouts, steps: b.steps, seed: b.seed, engine: b.engine,
    out: path.join(dir, 'drift', arm.name), resume: true, refFrames: b.refFrames, refClips: b.refClips, videoFrames: b.videoFrames,
    title: `${arm.name}: drift`, quiet: b.quiet, log: b.log,
  });
  return { arm, ckpt, trainSeconds: t.seconds, finalLoss: t.lastLoss, study };
}

/** Mean-over-rollouts curve of one per-frame metric of one corrector of a study, as a chart series. */
export function curve(r: DriftStudyResult, corrector: string, key: 'mse' | 'ssim' | 'traj' | 'psnr', name: string, horizon: number, rollouts: number): Series {
  const pf = r.metrics.perFrame.get(corrector)!;
  const x = Array.from({ length: horizon }, (_, i) => i + 1);
  const s = x.map((k) => statsAt(pf[key], r.K, rollouts, k));
  return { name, x, y: s.map((v) => v.mean), band: rollouts > 1 ? { lo: s.map((v) => v.min), hi: s.map((v) => v.max) } : undefined };
}

/** Mean over rollouts and over generated frames [a, b] (1-based, inclusive). */
export function meanOver(r: DriftStudyResult, corrector: string, key: 'mse' | 'ssim' | 'traj', a: number, b: number, rollouts: number): number {
  const pf = r.metrics.perFrame.get(corrector)!;
  let s = 0, n = 0;
  for (let k = a; k <= b; k++) {
    const v = statsAt(pf[key], r.K, rollouts, k).mean;
    if (Number.isFinite(v)) { s += v; n++; }
  }
  return n ? s / n : NaN;
}

/** The correctors of a study, without the trivial baselines it also scored. */
export function correctorsOf(r: DriftStudyResult): string[] {
  return [...r.metrics.perFrame.keys()].filter((c) => !r.summary.correctors[c]?.baseline);
}

/**
 * Rows for the trivial baselines (copy-last, blank) of a study, in the table layout of the video
 * experiments: `lead` gives the leading columns, then MSE/SSIM/traj at each frame, mean MSE over
 * 1..H and `tail(name)`. Every arm shares the seed and data, so one study's baselines stand for all.
 */
export function baselineRows(
  r: DriftStudyResult, frames: number[], N: number, lead: (name: string) => Record<string, string | number>, tail: (baseline: string) => Record<string, string | number> = () => ({}),
): Record<string, string | number>[] {
  const H = r.summary.horizon as number;
  return [...r.metrics.perFrame.keys()].filter((c) => r.summary.correctors[c]?.baseline).map((c) => {
    const pf = r.metrics.perFrame.get(c)!;
    const row: Record<string, string | number> = lead(`${c} (baseline)`);
    for (const k of frames) {
      row[`MSE@${k}`] = statsAt(pf.mse, r.K, N, k).mean;
      row[`SSIM@${k}`] = statsAt(pf.ssim, r.K, N, k).mean;
      row[`traj@${k}`] = statsAt(pf.traj, r.K, N, k).mean;
    }
    row[`mean MSE 1..${H}`] = meanOver(r, c, 'mse', 1, H, N);
    return { ...row, ...tail(c) };
  });
}
