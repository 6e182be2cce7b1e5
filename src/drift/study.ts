/**
 * A drift study (`driftlab drift`): one rollout per corrector from the same K real frames with the
 * same sampler noise (common random numbers: only the corrector differs), then every drift
 * metric computed from the stored frames, written as metrics.jsonl, summary.json/.csv, curves,
 * side-by-side videos and a self-contained report.html (study-outputs.ts).
 *
 *   OUT/study.json              what ran (options, checkpoint, model id, engine, versions)
 *   OUT/rollouts/<corrector>/   the rollout folders (video/rollout.ts): frames.npy, truth.npy, ...
 *   OUT/correctors/<name>/      correctors fitted for this study (when none was given or shipped)
 *   OUT/baselines/<name>/       the trivial baselines copy-last and blank (baselines.ts), scored like rollouts
 *
 * Fitted correctors (kalman, controller) come from, in order: {"NAME": {"dir": ...}} in the
 * corrector config, CKPT/correctors/NAME/ (shipped beside a checkpoint), or a fit made here on
 * real training clips and saved under OUT/correctors/NAME/.
 *
 * Frame numbering: frame k (k = 1..H) is the k-th generated frame; the K context frames are
 * real and are not scored.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { anchorFramesOf } from '../diffusion/config.js';
import { loadPipeline, Pipeline } from '../diffusion/pipeline.js';
import type { SamplerName } from '../diffusion/samplers.js';
import type { EngineChoice } from '../engine/select.js';
import { writeFileAtomic } from '../io/atomic.js';
import { DriftlabError } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { modelId, rollout } from '../video/rollout.js';
import { VIDEO_ETA, checkEta } from '../video/sample-clip.js';
import { BASELINES, writeBaselineRun } from './baselines.js';
import { correctorContext } from './context.js';
import type { DriftCorrector } from './corrector.js';
import { fitAndSave, fittedDir, hasFit, loadFitted, realClips } from './fitted.js';
import { chain, listCorrectors, makeCorrector } from './correctors/index.js';
import { StudyData, StudyMetrics, computeStudyMetrics, writeStudyOutputs } from './study-outputs.js';

export interface DriftStudyOptions {
  ckpt: string;
  /** corrector names; 'a+b' chains correctors in order */
  correctors: string[];
  /** per-corrector settings {"kalman": {...}} */
  correctorConfig?: Record<string, Record<string, unknown>>;
  horizon: number;
  rollouts: number;
  chunk?: number;
  context?: number;
  sampler?: SamplerName;
  steps?: number;
  /** DDIM eta (default VIDEO_ETA, 1) */
  eta?: number;
  seed: number;
  engine?: EngineChoice;
  threads?: number;
  out: string;
  resume?: boolean;
  /** generated-frame indices where FVD windows start (those that do not fit are reported as skipped) */
  fvdHorizons?: number[];
  /** frames per bin of the Frechet frame distance curve (default: about 25 bins over the horizon) */
  frechetBin?: number;
  /** real frames / clips behind the reference statistics */
  refFrames?: number;
  refClips?: number;
  /** real clips x frames a corrector is fitted on when it has no fitted folder */
  fitClips?: number;
  fitFrames?: number;
  /** frames in the side-by-side video (one in k when the horizon is longer), fps, MP4 too */
  videoFrames?: number;
  fps?: number;
  mp4?: boolean;
  /** generated-frame indices of the summary table */
  reportFrames?: number[];
  /** score the trivial baselines copy-last and blank beside the correctors (default true) */
  baselines?: boolean;
  /** trajectory error (canvas px) whose first crossing by the mean is the tracking horizon (default 8) */
  trackThreshold?: number;
  title?: string;
  /** figures placed first in the report (e.g. the demo's digit grid) */
  extraFigures?: { id: string; title: string; caption?: string; png: string }[];
  /** the command line, recorded in study.json and the report */
  command?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

export interface DriftStudyResult {
  out: string;
  summary: Record<string, any>;
  table: string;
  files: string[];
  /** per-frame metrics ([T*N], index t*N+n with t counting the K context frames) and curves */
  metrics: StudyMetrics;
  K: number;
}

export const DEFAULT_CORRECTORS = ['none', 'renoise', 'kalman', 'controller'];

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.+-]/g, '_');
}

/** Build a (possibly chained) corrector, loading or fitting what it needs. */
async function prepareCorrector(
  spec: string, p: Pipeline, rng: Rng, o: DriftStudyOptions, K: number, log: (l: string) => void,
): Promise<DriftCorrector> {
  const names = spec.split('+').map((s) => s.trim()).filter(Boolean);
  const cs: DriftCorrector[] = [];
  for (const n of names) {
    const cfg: Record<string, unknown> = { ...(o.correctorConfig?.[n] ?? {}) };
    const ctx = correctorContext(p, rng, K);
    let c = makeCorrector(n, ctx, cfg);
    if (c.fit && c.save && cfg.dir === undefined) {
      const shipped = path.join(o.ckpt, 'correctors', n);
      const here = path.join(o.out, 'correctors', n);
      if (hasFit(here, n)) cfg.dir = here;
      else if (hasFit(shipped, n)) cfg.dir = shipped;
      else {
        const fitClips = o.fitClips ?? 200, fitFrames = o.fitFrames ?? 20;
        log(`fitting ${n} on ${fitClips} real clips x ${fitFrames} frames (no fitted folder in the config or at ${shipped})`);
        const fitter = makeCorrector(n, correctorContext(p, new Rng(o.seed).fork(`fit-${n}`)), { ...cfg });
        await fitAndSave(fitter, n, here, p, realClips(p, fitClips, fitFrames, o.seed, o.ckpt), o.seed);
        cfg.dir = here;
      }
      c = makeCorrector(n, ctx, cfg);
    }
    const dir = fittedDir(c, cfg);
    if (dir) await loadFitted(c, n, dir, ctx);
    cs.push(c);
  }
  return cs.length === 1 ? cs[0] : chain(cs);
}

/** run.json of a rollout folder whose state says all `total` frames are written (else null). */
function finishedRun(dir: string, total: number): { corrector: Record<string, unknown> } | null {
  try {
    const run = JSON.parse(fs.readFileSync(path.join(dir, 'run.json'), 'utf8'));
    const st = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8'));
    return st.written === total && run.horizon + run.context === total ? run : null;
  } catch {
    return null;
  }
}

export async function runDriftStudy(o: DriftStudyOptions): Promise<DriftStudyResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!o.correctors.length) throw new DriftlabError('--correctors must name at least one corrector');
  const known = new Set(listCorrectors().map((c) => c.name));
  for (const b of BASELINES) if (o.correctors.includes(b)) throw new DriftlabError(`'${b}' is a baseline, scored in every study; it is not a corrector (pass --no-baselines to leave the baselines out)`);
  for (const spec of o.correctors) for (const n of spec.split('+').map((s) => s.trim())) {
    if (!known.has(n)) throw new DriftlabError(`unknown corrector '${n}'; choose from ${[...known].join(', ')} (a+b chains two)`);
  }
  if (new Set(o.correctors).size !== o.correctors.length) throw new DriftlabError(`--correctors lists a corrector twice: ${o.correctors.join(',')}`);
  const used = new Set(o.correctors.flatMap((spec) => spec.split('+').map((s) => s.trim())));
  for (const k of Object.keys(o.correctorConfig ?? {})) {
    // settings for a corrector that does not run (a typo, or a module's file path instead of its name) would be dropped silently
    if (!used.has(k)) throw new DriftlabError(`--corrector-config has settings for '${k}', which is not among the correctors (${[...used].join(', ')}); key settings by corrector name${/[\\/]|\.[cm]?js$/.test(k) ? " (a module's settings go under its exported name, not its file path)" : ''}`);
  }
  checkEta(o.eta ?? VIDEO_ETA);
  const studyPath = path.join(o.out, 'study.json');
  if (fs.existsSync(studyPath) && !o.resume) throw new DriftlabError(`${o.out} already holds a drift study; pass --resume to continue it, or choose a new --out`);
  if (!fs.existsSync(studyPath) && ['rollouts', 'metrics.jsonl', 'report.html'].some((f) => fs.existsSync(path.join(o.out, f)))) {
    throw new DriftlabError(`${o.out} holds drift outputs but no study.json; choose a new --out`);
  }
  const p = await loadPipeline(o.ckpt, 'ema', { engine: o.engine ?? 'auto', threads: o.threads });
  try {
    const v = p.config.model.video;
    if (!v) throw new DriftlabError(`${o.ckpt} is an image checkpoint; drift studies need a video checkpoint from 'driftlab train-video'`);
    if (!(p.config.training as any)?.data) throw new DriftlabError(`${o.ckpt} does not record its Moving-MNIST settings; it cannot be compared with ground truth`);
    if (!o.quiet) log(`driftlab: ${p.engine.line}`);
    const K = o.context ?? v.contextFrames - anchorFramesOf(v); // the given real frames (anchored models take their anchors from them)
    // every corrector made once with its settings before anything rolls out: bad settings, or a
    // corrector that cannot work on this model, fail in one line instead of after the first rollouts
    const checkCtx = correctorContext(p, new Rng(o.seed).fork('check'), K);
    for (const n of used) makeCorrector(n, checkCtx, { ...(o.correctorConfig?.[n] ?? {}) });
    const settings = {
      rollouts: o.rollouts, horizon: o.horizon, context: K, chunk: o.chunk ?? 1, sampler: o.sampler ?? 'ddim' as SamplerName,
      steps: o.steps ?? 20, eta: o.eta ?? VIDEO_ETA, seed: o.seed,
    };
    fs.mkdirSync(o.out, { recursive: true });
    const study = {
      format: 'driftlab-drift-study-1', checkpoint: path.resolve(o.ckpt), modelId: modelId(p), engine: p.engine.line,
      correctors: o.correctors, correctorConfig: o.correctorConfig ?? {}, ...settings, command: o.command ?? null,
      started: new Date().toISOString(),
    };
    await writeFileAtomic(studyPath, JSON.stringify(study, null, 2) + '\n');
    const runs: StudyData['runs'] = [];
    for (const name of o.correctors) {
      const dir = path.join(o.out, 'rollouts', safeName(name));
      const timingPath = path.join(dir, 'timing.json');
      const done = finishedRun(dir, K + o.horizon);
      if (done && fs.existsSync(timingPath)) { // finished earlier: nothing to roll out again
        const t = JSON.parse(fs.readFileSync(timingPath, 'utf8'));
        runs.push({ name, dir, seconds: t.seconds, describe: done.corrector });
        if (!o.quiet) log(`${name}: finished earlier (${dir})`);
        continue;
      }
      const rng = new Rng(o.seed).fork('corrector');
      const corrector = await prepareCorrector(name, p, rng, o, K, log);
      const resume = fs.existsSync(path.join(dir, 'run.json'));
      const r = await rollout({ pipeline: p, corrector, out: dir, resume, checkpoint: o.ckpt, correctorRng: rng, quiet: o.quiet, ...settings });
      await writeFileAtomic(timingPath, JSON.stringify({ seconds: r.seconds, frames: o.horizon, rollouts: o.rollouts }) + '\n');
      runs.push({ name, dir, seconds: r.seconds, describe: { name: corrector.name, ...corrector.describe() } });
      if (!o.quiet) log(`${name}: ${o.rollouts} rollouts x ${o.horizon} frames in ${r.seconds.toFixed(1)} s`);
    }
    if (o.baselines !== false) {
      for (const b of BASELINES) {
        const dir = path.join(o.out, 'baselines', b);
        const w = await writeBaselineRun(b, runs[0].dir, dir);
        runs.push({ name: b, dir, seconds: 0, describe: w.describe, baseline: true });
      }
    }
    const data: StudyData = { study, runs, K, horizon: o.horizon, N: o.rollouts, S: p.config.model.sampleSize, mmnist: (p.config.training as any).data };
    const metrics = await computeStudyMetrics(data, {
      fvdHorizons: o.fvdHorizons, frechetBin: o.frechetBin, refFrames: o.refFrames, refClips: o.refClips, seed: o.seed, log: o.quiet ? undefined : log,
    });
    const w = await writeStudyOutputs(o.out, data, metrics, {
      title: o.title, trackThreshold: o.trackThreshold, extraFigures: o.extraFigures, reportFrames: o.reportFrames, videoFrames: o.videoFrames, fps: o.fps, mp4: o.mp4, log: o.quiet ? undefined : log,
    });
    await writeFileAtomic(studyPath, JSON.stringify({ ...study, finished: new Date().toISOString() }, null, 2) + '\n');
    return { out: o.out, summary: w.summary, table: w.table, files: w.files, metrics, K };
  } finally {
    await p.dispose();
  }
}
