/**
 * drift-vs-horizon: every corrector rolled out from the same real frames with the same sampler
 * noise, drift curves over the horizon, and a table of the metrics at frames 10, 100, 1,000 (and
 * 10,000 when the horizon reaches it). The study itself is `driftlab drift` (src/drift/study.ts);
 * this wraps it in results/drift-vs-horizon/<run-id>/ with meta.json (config, seed, versions).
 */
import * as path from 'node:path';
import type { EngineChoice } from '../src/engine/select.js';
import { DEFAULT_CORRECTORS, runDriftStudy } from '../src/drift/study.js';
import { VIDEO_ETA, checkEta } from '../src/video/sample-clip.js';
import { makeRunDir } from './common.js';

export interface DriftVsHorizonOptions {
  ckpt: string;
  correctors?: string[];
  correctorConfig?: Record<string, Record<string, unknown>>;
  horizon: number;
  rollouts: number;
  steps: number;
  /** DDIM eta (default VIDEO_ETA, 1) */
  eta?: number;
  /** frames kept per model call (1..F-K) */
  chunk?: number;
  seed: number;
  engine: EngineChoice;
  root: string;
  fvdHorizons?: number[];
  refFrames?: number;
  refClips?: number;
  fitClips?: number;
  videoFrames?: number;
  log?: (line: string) => void;
  quiet?: boolean;
}

export const HORIZON_FRAMES = [10, 100, 1000, 10000];

export async function driftVsHorizon(o: DriftVsHorizonOptions): Promise<{ dir: string; table: string; summary: Record<string, any> }> {
  checkEta(o.eta ?? VIDEO_ETA); // before the run folder is made
  const run = await makeRunDir(o.root, 'drift-vs-horizon', o.seed, o);
  const correctors = o.correctors ?? DEFAULT_CORRECTORS;
  const r = await runDriftStudy({
    ckpt: o.ckpt, correctors, correctorConfig: o.correctorConfig, horizon: o.horizon, rollouts: o.rollouts, steps: o.steps, eta: o.eta, chunk: o.chunk ?? 1, seed: o.seed,
    engine: o.engine, out: path.join(run.dir, 'study'), reportFrames: HORIZON_FRAMES, fvdHorizons: o.fvdHorizons,
    refFrames: o.refFrames, refClips: o.refClips, fitClips: o.fitClips, videoFrames: o.videoFrames, title: 'drift vs horizon',
    command: `driftlab ${process.argv.slice(2).join(' ')}`, log: o.log, quiet: o.quiet,
  });
  const frames = [...new Set([...HORIZON_FRAMES.filter((k) => k <= o.horizon), o.horizon])];
  const head = `Drift of ${o.rollouts} rollouts x ${o.horizon} frames per corrector (DDIM ${o.steps} steps per model call, eta ${o.eta ?? VIDEO_ETA}, ${o.chunk ?? 1} frame(s) kept per call, seed ${o.seed}); frames ${frames.join(', ')}; mean over rollouts.\n\n`;
  await run.write('table.md', head + r.table);
  await run.write('results.json', JSON.stringify(r.summary, null, 2) + '\n');
  return { dir: run.dir, table: r.table, summary: r.summary };
}
