/**
 * Shared by the video experiments: train one video model of a preset with a fixed step budget
 * (equal compute = same preset, batch and steps), then measure its drift with `driftlab drift`.
 */
import * as path from 'node:path';
import type { BackendName } from '../src/backend.js';
import type { EngineChoice } from '../src/engine/select.js';
import { runDriftStudy, type DriftStudyResult } from '../src/drift/study.js';
import { statsAt } from '../src/drift/study-outputs.js';
import type { Series } from '../src/plot/chart.js';
import { getVideoPreset } from '../src/video/presets.js';
import { trainVideo } from '../src/video/train-video.js';

export interface VideoArm {
  /** label of the arm in tables and plots */
  name: string;
  maxContextT?: number;
  initImage?: string;
}

export interface ArmBudget {
  preset: string;
  trainSteps: number;
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
}

export interface ArmResult {
  arm: VideoArm;
  ckpt: string;
  trainSeconds: number;
  finalLoss: number;
  study: DriftStudyResult;
}

export async function trainArm(dir: string, arm: VideoArm, b: ArmBudget, correctors: string[]): Promise<ArmResult> {
  const preset = getVideoPreset(b.preset);
  preset.train.steps = b.trainSteps;
  preset.train.seed = b.seed;
  if (b.batchSize) preset.train.batchSize = b.batchSize;
  if (arm.maxContextT !== undefined) preset.train.maxContextT = arm.maxContextT;
  preset.train.checkpointEvery = Math.max(1, Math.min(preset.train.checkpointEvery, b.trainSteps));
  const ckpt = path.join(dir, 'models', arm.name);
  b.log?.(`${arm.name}: training ${b.preset} for ${b.trainSteps} steps of ${preset.train.batchSize} clips (context noise ${preset.train.maxContextT}${arm.initImage ? `, spatial layers from ${arm.initImage}` : ', from scratch'})`);
  const t = await trainVideo({ preset, initImage: arm.initImage, out: ckpt, workers: b.workers, backend: b.backend, quiet: b.quiet, resume: true });
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
