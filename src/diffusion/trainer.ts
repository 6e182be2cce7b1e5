/**
 * The training loop shared by image and video models (Ho et al. 2020, Algorithm 1): AdamW,
 * grad clipping, EMA, atomic checkpoints and exact resume. A step runs on a TrainEngine
 * (train-engine.ts: tfjs with data-parallel workers, or onnxruntime); the checkpoint files are the
 * same whichever engine wrote them, so a run resumes on either.
 *
 * What a batch is comes from a BatchStream; all randomness (timesteps, noise, dropout) is drawn
 * from the loop's seeded Rng on the main thread, so a resumed run replays the same stream.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BackendName } from '../backend.js';
import { DriftlabError } from '../util/errors.js';
import { Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { CheckpointConfig, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { modelParamSpecs } from './arch.js';
import { TrainBatch } from './grad.js';
import { flatLayout, joinFlat } from './model.js';
import { DEFAULT_ADAMW } from './optim.js';
import { TrainDevice, TrainEngineChoice, TrainState, createTrainEngine } from './train-engine.js';
import { initParamValues } from './unet.js';

/** Where batches come from; its state (data order) is saved with every checkpoint. */
export interface BatchStream {
  next(rng: Rng): TrainBatch;
  state(): unknown;
  setState(s: any): void;
}

export interface Hyper {
  lr: number;
  lrWarmup: number;
  /** cosine learning-rate decay from this step to 0 at the run's last step (absent = constant after the warm-up) */
  lrDecayFrom?: number;
  weightDecay: number;
  gradClip: number;
  emaDecay: number;
  checkpointEvery: number;
  seed: number;
}

/** Where a training run writes and how it runs: shared by image, video and generic runs. */
export interface RunCommon {
  out: string;
  resume?: boolean;
  /** overwrite an existing checkpoint folder instead of refusing */
  overwrite?: boolean;
  /** data-parallel worker threads (tfjs backends, or onnx gradient sessions; train-engine.ts) */
  workers: number;
  backend: BackendName;
  /** what runs a step (default tfjs); train-engine.ts */
  engine?: TrainEngineChoice;
  /** onnx: intra-op threads per session (default cores / workers) and device */
  threads?: number;
  device?: TrainDevice;
  /** stop (with a checkpoint) after this many minutes of wall time */
  minutes?: number;
  quiet?: boolean;
  /** called after each step (tests) */
  onStep?: (step: number, loss: number) => void;
  /** draw the next batch while the engine runs a step (default true; false is the tests' oracle: the same bytes) */
  prefetch?: boolean;
}

export interface RunOptions extends RunCommon {
  label: string;
  config: CheckpointConfig;
  hyper: Hyper;
  /** total optimizer steps */
  total: number;
  stream: BatchStream;
  /** images (or frames) per step, for the img/s figure */
  itemsPerStep: number;
  /** starting weights by name for a fresh run (the rest keep their initialisation) */
  initFrom?: Map<string, Float32Array>;
  /** cheap measurements of the EMA weights, each every `every` steps, appended to its `file` in the checkpoint folder */
  checks?: TrainCheck[];
  /**
   * data that depends on the weights (the video stream's pool of the model's own rollouts):
   * called with the EMA weights before the first step (or the resumed one) and after every
   * checkpoint at a multiple of `every`, before the next step; returns a line for humans or null
   */
  refresh?: { every: number; run(ema: Float32Array, step: number): Promise<string | null> };
}

/** What a run measures while it trains (the video model's context use): one JSON line per check. */
export interface TrainCheck {
  every: number;
  /** file name inside the checkpoint folder, e.g. context-use.jsonl */
  file: string;
  run(ema: Float32Array, step: number): Promise<{ record: Record<string, unknown>; line: string }>;
}

export interface TrainResult {
  steps: number;
  lastLoss: number;
  losses: number[];
  stoppedEarly: boolean;
  seconds: number;
}

export function checkpointExists(out: string): boolean {
  return fs.existsSync(path.join(out, 'config.json')) || fs.existsSync(path.join(`${out}.prev`, 'config.json'));
}

/**
 * The learning rate of step `step` (0-based) of a `total`-step run: a linear warm-up over lrWarmup
 * steps, then constant; with lrDecayFrom = D, steps D..total-1 are scaled by the cosine
 * 0.5 (1 + cos(pi (step - D) / (total - D))), from 1 at step D towards 0 at the end. Warm-up and
 * decay multiply where they overlap. A pure function of the step, so a resumed run gets the same rates.
 */
export function lrAt(h: Pick<Hyper, 'lr' | 'lrWarmup' | 'lrDecayFrom'>, step: number, total: number): number {
  let lr = h.lrWarmup > 0 ? h.lr * Math.min(1, (step + 1) / h.lrWarmup) : h.lr;
  const d = h.lrDecayFrom;
  if (d !== undefined && step >= d) lr *= 0.5 * (1 + Math.cos((Math.PI * (step - d)) / (total - d)));
  return lr;
}

export async function runTraining(o: RunOptions): Promise<TrainResult> {
  const { out, hyper: h, config } = o;
  if (h.lrDecayFrom !== undefined && !(Number.isInteger(h.lrDecayFrom) && h.lrDecayFrom >= 0 && h.lrDecayFrom < o.total)) {
    throw new DriftlabError(`--lr-decay-from must be a step in 0..${o.total - 1} (the run has ${o.total} steps), got ${h.lrDecayFrom}`);
  }
  const checks = o.checks ?? [];
  const hasCkpt = checkpointExists(out);
  if (hasCkpt && !o.resume && !o.overwrite) {
    throw new DriftlabError(`${out} already holds a checkpoint; pass --resume to continue it or --overwrite to start over`);
  }
  const layout = flatLayout(modelParamSpecs(config.model));
  const named = initParamValues(layout.specs, h.seed);
  if (o.initFrom && !(o.resume && hasCkpt)) {
    for (const [k, v] of o.initFrom) if (named.has(k) && named.get(k)!.length === v.length) named.set(k, v);
  }
  const params = joinFlat(layout, named);
  let init: TrainState = { params, ema: params.slice(), m: new Float32Array(layout.size), v: new Float32Array(layout.size), adamStep: 0 };
  const rng = new Rng(h.seed).fork('train-noise');
  let step = 0;
  const logPath = path.join(out, 'train-log.jsonl');
  if (o.resume && hasCkpt) {
    const ck = await loadCheckpoint(out, { optimizer: true });
    if (JSON.stringify(ck.config.model) !== JSON.stringify(config.model)) {
      throw new DriftlabError(`${out} was trained with another model config; resume it with its own preset or choose another --out`);
    }
    const st = ck.trainState;
    if (!st || !ck.optimizer || !ck.ema) throw new DriftlabError(`${out} has no optimizer/train state (a shipped checkpoint?); it cannot be resumed`);
    init = { params: ck.params, ema: ck.ema, m: ck.optimizer.m, v: ck.optimizer.v, adamStep: st.adamStep };
    step = st.step;
    rng.setState(st.rng);
    o.stream.setState(st.data);
    truncateLog(logPath, step);
    for (const c of checks) truncateLog(path.join(out, c.file), step);
  } else {
    fs.mkdirSync(out, { recursive: true });
    if (fs.existsSync(logPath)) fs.rmSync(logPath);
    for (const c of checks) fs.rmSync(path.join(out, c.file), { force: true });
  }
  const engine = await createTrainEngine(o.engine ?? 'tfjs', {
    config, adam: { ...DEFAULT_ADAMW, lr: h.lr, weightDecay: h.weightDecay }, state: init, rows: o.itemsPerStep,
    workers: o.workers, backend: o.backend, threads: o.threads, device: o.device, say: o.quiet ? null : undefined,
  });
  const progress = o.quiet ? null : new Progress({ total: o.total, label: o.label, unit: 'step', initial: step });
  const started = Date.now();
  const deadline = o.minutes ? started + o.minutes * 60_000 : Infinity;
  const losses: number[] = [];
  let lastSaved = step;
  // the next step's batch, drawn while the engine ran the current step (see the loop), and the
  // state of the stream and the rng before it was drawn: what a checkpoint after this step records
  let ahead: TrainBatch | null = null;
  let held: { rng: ReturnType<Rng['getState']>; data: unknown } | null = null;
  const save = async () => {
    const s = engine.state();
    await saveCheckpoint(out, {
      config, params: s.params, ema: s.ema, optimizer: { m: s.m, v: s.v },
      // with a prefetched batch in hand, the stream's and rng's state from before it was drawn
      trainState: { step, adamStep: s.adamStep, rng: held?.rng ?? rng.getState(), data: held?.data ?? o.stream.state(), savedAt: new Date().toISOString() },
    });
    lastSaved = step;
  };
  let log: number;
  try {
    log = fs.openSync(logPath, 'a');
  } catch (e) {
    await engine.close();
    throw e;
  }
  let stoppedEarly = false;
  const refresh = async () => {
    const line = await o.refresh!.run(engine.state().ema, step);
    if (line && !o.quiet) process.stderr.write(`\n${o.label}: ${line}\n`);
  };
  try {
    if (o.refresh && step < o.total) await refresh();
    while (step < o.total) {
      const t0 = performance.now();
      const batch = ahead ?? o.stream.next(rng);
      ahead = null;
      held = null;
      const lr = lrAt(h, step, o.total);
      const pending = engine.step(batch, { lr, gradClip: h.gradClip, emaDecay: h.emaDecay });
      // Draw the next batch while the engine works (worker threads or onnxruntime's pool leave the
      // main thread idle): the draws come in the same order, so the stream is the same byte for
      // byte. Not before a refresh, whose pool the next batch must come from. (bench/ab-prefetch:
      // no measurable speed-up on the 2-core VM yet, docs/BENCHMARKS.md.)
      if ((o.prefetch ?? true) && step + 1 < o.total && !(o.refresh && (step + 1) % o.refresh.every === 0)) {
        held = { rng: rng.getState(), data: structuredClone(o.stream.state()) };
        try {
          ahead = o.stream.next(rng);
        } catch (e) {
          await pending.catch(() => undefined);
          throw e;
        }
      }
      const { loss, gradNorm: norm } = await pending;
      if (!Number.isFinite(loss)) {
        throw new DriftlabError(`loss became ${loss} at step ${step + 1}; stopped. The last good checkpoint (step ${lastSaved}) is kept in ${out}. Try a lower --lr`);
      }
      step += 1;
      losses.push(loss);
      const dt = (performance.now() - t0) / 1000;
      fs.writeSync(log, JSON.stringify({ step, loss, gradNorm: norm, lr, imgPerSec: o.itemsPerStep / dt, time: new Date().toISOString() }) + '\n');
      progress?.tick(1, { loss: loss.toFixed(4), 'img/s': (o.itemsPerStep / dt).toFixed(1) });
      o.onStep?.(step, loss);
      if (step % h.checkpointEvery === 0 || step === o.total) await save();
      if (o.refresh && step % o.refresh.every === 0 && step < o.total && Date.now() <= deadline) await refresh();
      for (const check of checks) if (step % check.every === 0) {
        const c = await check.run(engine.state().ema, step);
        fs.appendFileSync(path.join(out, check.file), JSON.stringify({ step, ...c.record }) + '\n');
        if (!o.quiet) process.stderr.write(`\n${o.label} step ${step}: ${c.line}\n`);
      }
      if (Date.now() > deadline) {
        stoppedEarly = step < o.total;
        break;
      }
    }
    if (lastSaved !== step) await save();
  } finally {
    fs.closeSync(log);
    progress?.done();
    await engine.close();
  }
  return { steps: step, lastLoss: losses.at(-1) ?? NaN, losses, stoppedEarly, seconds: (Date.now() - started) / 1000 };
}

/** Drop log lines written after the checkpoint we resume from (a kill loses at most one interval). */
function truncateLog(logPath: string, step: number): void {
  if (!fs.existsSync(logPath)) return;
  const keep = fs.readFileSync(logPath, 'utf8').split('\n').filter((l) => {
    if (!l.trim()) return false;
    try { return JSON.parse(l).step <= step; } catch { return false; }
  });
  fs.writeFileSync(logPath, keep.map((l) => l + '\n').join(''));
}
